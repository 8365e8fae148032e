// The `--where` filter language of `jslds query` (DESIGN §6), parsed into a tree and
// compiled to SQL whose every user-supplied value is a bound parameter: the text of a filter
// never reaches SQLite as code.
//
// Grammar (keywords case-insensitive; precedence NOT > AND > OR):
//   expr       := and_expr ( OR and_expr )*
//   and_expr   := not_expr ( AND not_expr )*
//   not_expr   := NOT not_expr | '(' expr ')' | comparison
//   comparison := operand ( '=' | '!=' | '<' | '<=' | '>' | '>=' ) operand
//   operand    := field | number | string
//   field      := params.KEY     swept parameter, KEY the dotted run-config key of a key
//                                the campaign's sweep varies (params.model.latent_dim,
//                                params.loss.w_fp); keys that are not swept are not stored
//                                per run in the params table and are unknown names
//               | summary.NAME   final metric or analysis scalar (summary.val_bps)
//               | status | campaign | number | repeat | attempts | steps_done | objective
//   number     := decimal or scientific literal, optionally signed (-1.5e-3)
//   string     := '...' or "..." (a doubled quote or a backslash escapes the quote)
//
// A comparison with a missing value (a run without that summary) is neither true nor false
// (SQL NULL): the run is not selected, and NOT does not select it either.
// The same `field` names are accepted by --sort and --columns.
#pragma once

#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "store/sqlite.h"

namespace jslds::store {

/// A syntax error or an unknown name in a --where/--sort/--columns text. what() is
///   "--where, column 17: expected a value after '>', found end of input\n
///      summary.val_bps >\n
///                       ^"
/// column() is 1-based.
class QueryError : public std::runtime_error {
 public:
  QueryError(std::string_view source, std::string_view text, int column,
             const std::string& message);
  int column() const { return column_; }
  /// The message without position and caret line.
  const std::string& detail() const { return detail_; }

 private:
  int column_;
  std::string detail_;
};

/// A field of a run that a filter, a sort key or an output column can name.
struct Field {
  enum class Kind {
    kParam,      ///< params.KEY (name = KEY)
    kSummary,    ///< summary.NAME (name = NAME)
    kStatus,     ///< runs.status
    kCampaign,   ///< campaigns.name
    kNumber,     ///< runs.number
    kRepeat,     ///< runs.repeat
    kAttempts,   ///< runs.attempts
    kStepsDone,  ///< runs.steps_done
    kObjective,  ///< the run's value of its campaign's objective summary
  };
  Kind kind = Kind::kNumber;
  std::string name;  // the KEY/NAME for params and summaries, empty otherwise
  int column = 0;    // 1-based position in the source text (0 when built in code)

  /// The field as written in the language: "params.model.latent_dim", "summary.val_bps",
  /// "status", ...
  std::string text() const;
  bool operator==(const Field& other) const { return kind == other.kind && name == other.name; }
};

/// A literal in a comparison.
struct Literal {
  std::variant<double, std::string> value;
  int column = 0;
};

enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe };

/// The parse tree. kCompare uses op/lhs/rhs; kAnd and kOr have two or more children; kNot
/// has one.
struct WhereExpr {
  enum class Kind { kCompare, kAnd, kOr, kNot };
  Kind kind = Kind::kCompare;
  CompareOp op = CompareOp::kEq;
  std::variant<Field, Literal> lhs;
  std::variant<Field, Literal> rhs;
  std::vector<WhereExpr> children;

  /// Fully parenthesised rendering, e.g. "((a = 1) OR ((b = 2) AND (NOT (c = 3))))": shows
  /// the precedence the parser applied.
  std::string to_string() const;
};

/// Parses a --where expression. Throws QueryError (source "--where") with the 1-based column
/// of the offending token on any syntax error.
WhereExpr parse_where(std::string_view text);

/// Parses one field name as used by --sort and --columns ("summary.val_bps"). Throws
/// QueryError naming `source` on anything else.
Field parse_field(std::string_view text, std::string_view source = "--sort");

/// Orders names the way people count: "s2" before "s10", "layer9.w" before "layer10.w".
/// Runs of digits compare by value, everything else byte by byte; names equal in that sense
/// ("s01", "s1") fall back to byte order, so this is a strict weak ordering.
struct NaturalLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const;
};

/// A set of param or summary names in natural order (listings, wildcard columns).
using NameSet = std::set<std::string, NaturalLess>;

/// The names a campaign's runs actually have; a filter naming anything else is an error.
struct KnownNames {
  NameSet params;     // dotted keys, e.g. "model.latent_dim"
  NameSet summaries;  // e.g. "val_bps"
  /// Params with at least one numeric / at least one text value. Comparing a param with a
  /// literal of a type it never has is an error (it would match all or nothing). A param in
  /// `params` but in neither set is not type-checked (KnownNames built by hand).
  NameSet numeric_params;
  NameSet text_params;
};

/// Reads the param and summary names present in the given campaigns (all when empty).
KnownNames known_names(Database& db, const std::vector<int64_t>& campaign_ids);

/// Throws QueryError (at the field's column, with the known params and summaries listed and
/// a did-you-mean suggestion) when `field` names a param or summary not in `known`.
void check_field(const Field& field, const KnownNames& known, std::string_view source,
                 std::string_view text);

/// SQL text with `?` placeholders and the values to bind to them, in order.
struct SqlFragment {
  std::string sql;
  std::vector<SqlValue> params;
};

/// SQL for one field's value, in a statement where the current run is `r` (runs) and its
/// campaign `c` (campaigns). Params and summaries become correlated sub-selects on their
/// primary keys. The field's name is bound, never spliced.
SqlFragment field_sql(const Field& field);

/// Compiles a parsed filter to a boolean SQL expression over `r` and `c`. Every param and
/// summary must be in `known` (else QueryError listing them). Type errors are QueryErrors at
/// the literal's column: a summary, number, repeat, attempts, steps_done or objective
/// compared with a string; status or campaign compared with a number; a param compared with
/// a literal of a type none of its values has; status compared with a string that is not a
/// run state (listing the states). `text` is the source for error carets.
SqlFragment compile_where(const WhereExpr& expr, const KnownNames& known, std::string_view text);

}  // namespace jslds::store
