#include "store/query.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <optional>

#include <fmt/format.h>

#include "core/did_you_mean.h"
#include "store/experiment_store.h"

namespace jslds::store {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

constexpr std::string_view kFieldHelp =
    "expected params.KEY, summary.NAME, status, campaign, number, repeat, attempts, steps_done "
    "or objective";

// ---- tokens ------------------------------------------------------------------------------

enum class Tok { kIdent, kNumber, kString, kOp, kLParen, kRParen, kAnd, kOr, kNot, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;  // identifier, operator, string contents, or the number as written
  double number = 0;
  int column = 0;  // 1-based
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::kEnd:
      return "end of input";
    case Tok::kString:
      return fmt::format("string \"{}\"", t.text);
    default:
      return fmt::format("'{}'", t.text);
  }
}

bool ident_start(char ch) {
  return std::isalpha(static_cast<unsigned char>(ch)) || ch == '_';
}
bool ident_char(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.';
}

class Lexer {
 public:
  Lexer(std::string_view source, std::string_view text) : source_(source), text_(text) {}

  std::vector<Token> tokens() {
    std::vector<Token> out;
    while (true) {
      while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      Token t;
      t.column = static_cast<int>(pos_) + 1;
      if (pos_ >= text_.size()) {
        out.push_back(t);
        return out;
      }
      char ch = text_[pos_];
      if (ident_start(ch)) {
        std::size_t start = pos_;
        while (pos_ < text_.size() && ident_char(text_[pos_])) ++pos_;
        t.text = std::string(text_.substr(start, pos_ - start));
        std::string key = lower(t.text);
        t.kind = key == "and" ? Tok::kAnd : key == "or" ? Tok::kOr : key == "not" ? Tok::kNot
                                                                                 : Tok::kIdent;
      } else if (std::isdigit(static_cast<unsigned char>(ch)) || ch == '.' ||
                 ((ch == '-' || ch == '+') && pos_ + 1 < text_.size() &&
                  (std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])) ||
                   text_[pos_ + 1] == '.'))) {
        lex_number(t);
      } else if (ch == '"' || ch == '\'') {
        lex_string(t);
      } else if (ch == '(' || ch == ')') {
        t.kind = ch == '(' ? Tok::kLParen : Tok::kRParen;
        t.text = std::string(1, ch);
        ++pos_;
      } else if (ch == '=' || ch == '!' || ch == '<' || ch == '>') {
        lex_operator(t);
      } else {
        throw QueryError(source_, text_, t.column,
                         fmt::format("unexpected character '{}'", ch));
      }
      out.push_back(std::move(t));
    }
  }

 private:
  void lex_number(Token& t) {
    std::size_t start = pos_;
    if (text_[pos_] == '-' || text_[pos_] == '+') ++pos_;
    while (pos_ < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.')) {
      ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '-' || text_[pos_] == '+')) ++pos_;
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    // A number runs into letters ("3abc") only by mistake.
    while (pos_ < text_.size() && ident_char(text_[pos_])) ++pos_;
    t.text = std::string(text_.substr(start, pos_ - start));
    const char* first = t.text.c_str();
    if (*first == '+') ++first;
    const char* last = t.text.c_str() + t.text.size();
    auto [ptr, ec] = std::from_chars(first, last, t.number);
    if (ec != std::errc() || ptr != last) {
      throw QueryError(source_, text_, t.column,
                       fmt::format("'{}' is not a number (expected e.g. 32, 0.5, -1e-3)", t.text));
    }
    t.kind = Tok::kNumber;
  }

  void lex_string(Token& t) {
    char quote = text_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= text_.size()) {
        throw QueryError(source_, text_, t.column,
                         fmt::format("string started here is not closed with {}", quote));
      }
      char ch = text_[pos_++];
      if (ch == '\\' && pos_ < text_.size()) {
        value += text_[pos_++];
      } else if (ch == quote) {
        if (pos_ < text_.size() && text_[pos_] == quote) {  // doubled quote
          value += quote;
          ++pos_;
        } else {
          break;
        }
      } else {
        value += ch;
      }
    }
    t.kind = Tok::kString;
    t.text = std::move(value);
  }

  void lex_operator(Token& t) {
    char ch = text_[pos_++];
    char next = pos_ < text_.size() ? text_[pos_] : '\0';
    t.kind = Tok::kOp;
    if (ch == '=') {
      t.text = "=";
      if (next == '=') ++pos_;  // "==" reads as "="
    } else if (ch == '!') {
      if (next != '=') {
        throw QueryError(source_, text_, t.column, "'!' must be followed by '=' (not equal)");
      }
      ++pos_;
      t.text = "!=";
    } else if (ch == '<' && next == '>') {
      ++pos_;
      t.text = "!=";
    } else if (next == '=') {
      ++pos_;
      t.text = std::string(1, ch) + "=";
    } else {
      t.text = std::string(1, ch);
    }
  }

  std::string_view source_;
  std::string_view text_;
  std::size_t pos_ = 0;
};

// ---- fields ------------------------------------------------------------------------------

std::optional<Field> field_from_identifier(std::string_view source, std::string_view text,
                                           const std::string& ident, int column) {
  Field f;
  f.column = column;
  std::string low = lower(ident);
  auto with_prefix = [&](std::string_view prefix, Field::Kind kind) -> bool {
    if (low.rfind(prefix, 0) != 0) return false;
    f.kind = kind;
    f.name = ident.substr(prefix.size());
    if (f.name.empty()) {
      throw QueryError(source, text, column,
                       fmt::format("'{}' needs a name after the dot, e.g. {}", ident,
                                   kind == Field::Kind::kParam ? "params.model.latent_dim"
                                                               : "summary.val_bps"));
    }
    return true;
  };
  if (with_prefix("params.", Field::Kind::kParam)) return f;
  if (with_prefix("summary.", Field::Kind::kSummary)) return f;
  static const std::vector<std::pair<std::string_view, Field::Kind>> kPlain = {
      {"status", Field::Kind::kStatus},       {"campaign", Field::Kind::kCampaign},
      {"number", Field::Kind::kNumber},       {"repeat", Field::Kind::kRepeat},
      {"attempts", Field::Kind::kAttempts},   {"steps_done", Field::Kind::kStepsDone},
      {"objective", Field::Kind::kObjective}};
  for (const auto& [name, kind] : kPlain) {
    if (low == name) {
      f.kind = kind;
      return f;
    }
  }
  return std::nullopt;
}

bool is_run_state(std::string_view word) {
  try {
    parse_run_status(lower(word));
    return true;
  } catch (const StoreError&) {
    return false;
  }
}

// `value_side`: the identifier stands where a value is expected (after an operator), as in
// `status = done`: most likely an unquoted string.
[[noreturn]] void unknown_field(std::string_view source, std::string_view text,
                                const std::string& ident, int column, bool value_side = false) {
  std::string hint;
  std::string low = lower(ident);
  if (value_side && (low.find('.') == std::string::npos || is_run_state(ident))) {
    hint = is_run_state(ident)
               ? fmt::format("text values are quoted: \"{}\"", ident)
               : fmt::format("text values are quoted: \"{}\"; a metric is written summary.{}",
                             ident, ident);
    throw QueryError(source, text, column,
                     fmt::format("'{}' is neither a value nor a field ({}). A value is a "
                                 "number or a quoted string; a field is params.KEY, "
                                 "summary.NAME, status, campaign, number, repeat, attempts, "
                                 "steps_done or objective",
                                 ident, hint));
  }
  if (low.rfind("param.", 0) == 0) {
    hint = fmt::format(" (did you mean 'params.{}'?)", ident.substr(6));
  } else if (low.rfind("summaries.", 0) == 0) {
    hint = fmt::format(" (did you mean 'summary.{}'?)", ident.substr(10));
  } else if (low.find('.') != std::string::npos) {
    hint = fmt::format(" (a run-config key is written params.{})", ident);
  } else {
    hint = fmt::format(" (a metric is written summary.{})", ident);
  }
  throw QueryError(source, text, column,
                   fmt::format("unknown field '{}'{}: {}", ident, hint, kFieldHelp));
}

// ---- parser ------------------------------------------------------------------------------

class Parser {
 public:
  Parser(std::string_view text) : text_(text), tokens_(Lexer("--where", text).tokens()) {}

  WhereExpr parse() {
    if (peek().kind == Tok::kEnd) fail(peek(), "the filter is empty: expected a comparison");
    WhereExpr e = parse_or();
    if (peek().kind != Tok::kEnd) {
      fail(peek(), fmt::format("unexpected {} after a complete comparison (missing AND or OR?)",
                               describe(peek())));
    }
    return e;
  }

 private:
  const Token& peek() const { return tokens_[pos_]; }
  const Token& next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }

  [[noreturn]] void fail(const Token& at, const std::string& message) const {
    throw QueryError("--where", text_, at.column, message);
  }

  WhereExpr parse_or() {
    WhereExpr first = parse_and();
    if (peek().kind != Tok::kOr) return first;
    WhereExpr e;
    e.kind = WhereExpr::Kind::kOr;
    e.children.push_back(std::move(first));
    while (peek().kind == Tok::kOr) {
      next();
      e.children.push_back(parse_and());
    }
    return e;
  }

  WhereExpr parse_and() {
    WhereExpr first = parse_not();
    if (peek().kind != Tok::kAnd) return first;
    WhereExpr e;
    e.kind = WhereExpr::Kind::kAnd;
    e.children.push_back(std::move(first));
    while (peek().kind == Tok::kAnd) {
      next();
      e.children.push_back(parse_not());
    }
    return e;
  }

  // Limits that keep the recursion and the SQL SQLite must parse small: deeper nesting
  // overflowed the stack (a crash) or SQLite's parser stack (100 NOTs), more terms SQLite's
  // expression depth of 1000.
  static constexpr int kMaxNesting = 32;
  static constexpr int kMaxComparisons = 200;

  WhereExpr parse_not() {
    const bool nests = peek().kind == Tok::kNot || peek().kind == Tok::kLParen;
    if (nests && ++depth_ > kMaxNesting)
      fail(peek(), fmt::format("the filter nests parentheses and NOT more than {} deep: expected a "
                               "simpler filter",
                               kMaxNesting));
    WhereExpr e = parse_not_or_parenthesis();
    if (nests) --depth_;
    return e;
  }

  WhereExpr parse_not_or_parenthesis() {
    if (peek().kind == Tok::kNot) {
      next();
      WhereExpr e;
      e.kind = WhereExpr::Kind::kNot;
      e.children.push_back(parse_not());
      return e;
    }
    if (peek().kind == Tok::kLParen) {
      Token open = next();
      WhereExpr inner = parse_or();
      if (peek().kind != Tok::kRParen) {
        fail(peek(), fmt::format("expected ')' to close the '(' at column {}, found {}",
                                 open.column, describe(peek())));
      }
      next();
      return inner;
    }
    return parse_comparison();
  }

  std::variant<Field, Literal> parse_operand(const char* where, bool value_side) {
    const Token& t = peek();
    switch (t.kind) {
      case Tok::kNumber:
        next();
        return Literal{t.number, t.column};
      case Tok::kString:
        next();
        return Literal{t.text, t.column};
      case Tok::kIdent: {
        next();
        if (auto f = field_from_identifier("--where", text_, t.text, t.column)) return *f;
        unknown_field("--where", text_, t.text, t.column, value_side);
      }
      default:
        fail(t, fmt::format("expected a field, number or quoted string {}, found {}", where,
                            describe(t)));
    }
  }

  WhereExpr parse_comparison() {
    if (++comparisons_ > kMaxComparisons)
      fail(peek(), fmt::format("the filter has more than {} comparisons: expected a shorter filter",
                               kMaxComparisons));
    WhereExpr e;
    e.kind = WhereExpr::Kind::kCompare;
    e.lhs = parse_operand("at the start of a comparison", false);
    const Token& op = peek();
    if (op.kind != Tok::kOp) {
      fail(op, fmt::format("expected a comparison operator (=, !=, <, <=, >, >=), found {}",
                           describe(op)));
    }
    next();
    static const std::vector<std::pair<std::string_view, CompareOp>> kOps = {
        {"=", CompareOp::kEq}, {"!=", CompareOp::kNe}, {"<", CompareOp::kLt},
        {"<=", CompareOp::kLe}, {">", CompareOp::kGt}, {">=", CompareOp::kGe}};
    for (const auto& [text, value] : kOps) {
      if (op.text == text) e.op = value;
    }
    e.rhs = parse_operand(fmt::format("after '{}'", op.text).c_str(), true);
    return e;
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int depth_ = 0;        // NOT and '(' being parsed
  int comparisons_ = 0;  // parsed so far
};

std::string_view op_sql(CompareOp op) {
  switch (op) {
    case CompareOp::kEq: return "=";
    case CompareOp::kNe: return "!=";
    case CompareOp::kLt: return "<";
    case CompareOp::kLe: return "<=";
    case CompareOp::kGt: return ">";
    case CompareOp::kGe: return ">=";
  }
  return "=";
}

std::string operand_text(const std::variant<Field, Literal>& v) {
  if (const Field* f = std::get_if<Field>(&v)) return f->text();
  const Literal& l = std::get<Literal>(v);
  if (const double* d = std::get_if<double>(&l.value)) return fmt::format("{}", *d);
  return fmt::format("\"{}\"", std::get<std::string>(l.value));
}

std::string join(const NameSet& names, std::string_view prefix) {
  if (names.empty()) return "(none)";
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += prefix;
    out += n;
  }
  return out;
}

void compile_into(const WhereExpr& e, const KnownNames& known, std::string_view text,
                  SqlFragment& out);

void compile_operand(const std::variant<Field, Literal>& v, const KnownNames& known,
                     std::string_view text, SqlFragment& out) {
  if (const Field* f = std::get_if<Field>(&v)) {
    check_field(*f, known, "--where", text);
    SqlFragment sql = field_sql(*f);
    out.sql += sql.sql;
    out.params.insert(out.params.end(), sql.params.begin(), sql.params.end());
    return;
  }
  const Literal& l = std::get<Literal>(v);
  out.sql += "?";
  if (const double* d = std::get_if<double>(&l.value)) {
    out.params.emplace_back(*d);
  } else {
    out.params.emplace_back(std::get<std::string>(l.value));
  }
}

// `status = "finised"` can only be a typo: say so instead of matching nothing.
void check_status_literal(const std::variant<Field, Literal>& field_side,
                          const std::variant<Field, Literal>& literal_side,
                          std::string_view text) {
  const Field* f = std::get_if<Field>(&field_side);
  const Literal* l = std::get_if<Literal>(&literal_side);
  if (!f || !l || f->kind != Field::Kind::kStatus) return;
  const std::string* s = std::get_if<std::string>(&l->value);
  if (!s) {
    throw QueryError("--where", text, l->column,
                     "status is compared with a number: expected a quoted run state, one of "
                     "\"pending\", \"running\", \"done\", \"failed\", \"diverged\", "
                     "\"interrupted\", \"pruned\"");
  }
  try {
    parse_run_status(*s);
  } catch (const StoreError& e) {
    throw QueryError("--where", text, l->column, e.what());
  }
}

// `summary.val_bps > "abc"` would compare a REAL with TEXT, which SQLite orders by type: it
// matches every run or none, silently. Refuse it.
void check_literal_type(const std::variant<Field, Literal>& field_side,
                        const std::variant<Field, Literal>& literal_side, const KnownNames& known,
                        std::string_view text) {
  const Field* f = std::get_if<Field>(&field_side);
  const Literal* l = std::get_if<Literal>(&literal_side);
  if (!f || !l) return;
  const bool is_string = std::holds_alternative<std::string>(l->value);
  const std::string literal = operand_text(literal_side);
  auto fail = [&](const std::string& message) {
    throw QueryError("--where", text, l->column, message);
  };
  switch (f->kind) {
    case Field::Kind::kSummary:
    case Field::Kind::kObjective:
    case Field::Kind::kNumber:
    case Field::Kind::kRepeat:
    case Field::Kind::kAttempts:
    case Field::Kind::kStepsDone:
      if (is_string) {
        fail(fmt::format("{} is a number but is compared with the string {}: write a number "
                         "without quotes, e.g. {} > 0.5",
                         f->text(), literal, f->text()));
      }
      return;
    case Field::Kind::kCampaign:
      if (!is_string) {
        fail(fmt::format("campaign is a name but is compared with the number {}: quote it, "
                         "e.g. campaign = \"{}\"",
                         literal, literal));
      }
      return;
    case Field::Kind::kStatus:
      return;  // check_status_literal
    case Field::Kind::kParam: {
      const bool numeric = known.numeric_params.count(f->name) > 0;
      const bool textual = known.text_params.count(f->name) > 0;
      if (!numeric && !textual) return;  // types unknown
      if (is_string && !textual) {
        fail(fmt::format("{} has only numeric values but is compared with the string {}: "
                         "write the number without quotes",
                         f->text(), literal));
      }
      if (!is_string && !numeric) {
        fail(fmt::format("{} has only text values but is compared with the number {}: quote "
                         "it, e.g. {} = \"{}\"",
                         f->text(), literal, f->text(), literal));
      }
      return;
    }
  }
}

void compile_into(const WhereExpr& e, const KnownNames& known, std::string_view text,
                  SqlFragment& out) {
  switch (e.kind) {
    case WhereExpr::Kind::kCompare:
      check_status_literal(e.lhs, e.rhs, text);
      check_status_literal(e.rhs, e.lhs, text);
      out.sql += "(";
      compile_operand(e.lhs, known, text, out);
      out.sql += fmt::format(" {} ", op_sql(e.op));
      compile_operand(e.rhs, known, text, out);
      out.sql += ")";
      check_literal_type(e.lhs, e.rhs, known, text);
      check_literal_type(e.rhs, e.lhs, known, text);
      return;
    case WhereExpr::Kind::kNot:
      out.sql += "(NOT ";
      compile_into(e.children.at(0), known, text, out);
      out.sql += ")";
      return;
    case WhereExpr::Kind::kAnd:
    case WhereExpr::Kind::kOr: {
      out.sql += "(";
      for (std::size_t i = 0; i < e.children.size(); ++i) {
        if (i > 0) out.sql += e.kind == WhereExpr::Kind::kAnd ? " AND " : " OR ";
        compile_into(e.children[i], known, text, out);
      }
      out.sql += ")";
      return;
    }
  }
}

NameSet distinct_names(Database& db, const std::string& table,
                       const std::vector<int64_t>& campaign_ids) {
  // Loose index scan over the (name, value) index: O(distinct names · log rows), so that a
  // database of millions of rows answers at once.
  NameSet all;
  Statement st(db, fmt::format("WITH RECURSIVE n(name) AS (SELECT min(name) FROM {0} UNION ALL "
                               "SELECT (SELECT min(name) FROM {0} WHERE name > n.name) FROM n "
                               "WHERE n.name IS NOT NULL) SELECT name FROM n WHERE name IS NOT "
                               "NULL",
                               table));
  while (st.step()) all.insert(st.column_text(0));
  if (campaign_ids.empty()) return all;
  NameSet present;
  Statement exists(db, fmt::format("SELECT EXISTS (SELECT 1 FROM {} t JOIN runs r ON r.id = "
                                   "t.run_id WHERE t.name = ? AND r.campaign_id = ?)",
                                   table));
  for (const auto& name : all) {
    for (int64_t id : campaign_ids) {
      exists.reset();
      exists.bind(1, name).bind(2, id);
      if (exists.step() && exists.column_int64(0) != 0) {
        present.insert(name);
        break;
      }
    }
  }
  return present;
}

}  // namespace

QueryError::QueryError(std::string_view source, std::string_view text, int column,
                       const std::string& message)
    : std::runtime_error(fmt::format("{}, column {}: {}\n  {}\n  {}^", source, column, message,
                                     text, std::string(column > 0 ? column - 1 : 0, ' '))),
      column_(column),
      detail_(message) {}

std::string Field::text() const {
  switch (kind) {
    case Kind::kParam: return "params." + name;
    case Kind::kSummary: return "summary." + name;
    case Kind::kStatus: return "status";
    case Kind::kCampaign: return "campaign";
    case Kind::kNumber: return "number";
    case Kind::kRepeat: return "repeat";
    case Kind::kAttempts: return "attempts";
    case Kind::kStepsDone: return "steps_done";
    case Kind::kObjective: return "objective";
  }
  return "";
}

std::string WhereExpr::to_string() const {
  switch (kind) {
    case Kind::kCompare:
      return fmt::format("({} {} {})", operand_text(lhs), op_sql(op), operand_text(rhs));
    case Kind::kNot:
      return fmt::format("(NOT {})", children.at(0).to_string());
    case Kind::kAnd:
    case Kind::kOr: {
      std::string out = "(";
      for (std::size_t i = 0; i < children.size(); ++i) {
        if (i > 0) out += kind == Kind::kAnd ? " AND " : " OR ";
        out += children[i].to_string();
      }
      return out + ")";
    }
  }
  return "";
}

WhereExpr parse_where(std::string_view text) { return Parser(text).parse(); }

Field parse_field(std::string_view text, std::string_view source) {
  std::string trimmed(text);
  trimmed.erase(0, trimmed.find_first_not_of(" \t"));
  trimmed.erase(trimmed.find_last_not_of(" \t") + 1);
  if (trimmed.empty()) throw QueryError(source, text, 1, std::string("empty field: ") +
                                                             std::string(kFieldHelp));
  int column = static_cast<int>(text.find(trimmed)) + 1;
  bool plain = ident_start(trimmed[0]) &&
               std::all_of(trimmed.begin(), trimmed.end(), [](char ch) { return ident_char(ch); });
  if (!plain) {
    throw QueryError(source, text, column,
                     fmt::format("'{}' is not a field name: {}", trimmed, kFieldHelp));
  }
  if (auto f = field_from_identifier(source, text, trimmed, column)) return *f;
  unknown_field(source, text, trimmed, column);
}

bool NaturalLess::operator()(std::string_view a, std::string_view b) const {
  auto digit = [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) != 0; };
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      std::size_t a_end = i, b_end = j;
      while (a_end < a.size() && digit(a[a_end])) ++a_end;
      while (b_end < b.size() && digit(b[b_end])) ++b_end;
      std::size_t a_start = i, b_start = j;  // skip leading zeros, keep one digit
      while (a_start + 1 < a_end && a[a_start] == '0') ++a_start;
      while (b_start + 1 < b_end && b[b_start] == '0') ++b_start;
      std::string_view na = a.substr(a_start, a_end - a_start);
      std::string_view nb = b.substr(b_start, b_end - b_start);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (int c = na.compare(nb); c != 0) return c < 0;
      i = a_end;
      j = b_end;
    } else {
      if (a[i] != b[j]) {
        return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      }
      ++i;
      ++j;
    }
  }
  if (i == a.size() && j == b.size()) return a < b;  // naturally equal: "s01" vs "s1"
  return i == a.size();                               // a prefix comes first
}

KnownNames known_names(Database& db, const std::vector<int64_t>& campaign_ids) {
  KnownNames known{distinct_names(db, "params", campaign_ids),
                   distinct_names(db, "summaries", campaign_ids), {}, {}};
  // A campaign's objective metric is a known summary before any of its runs has finished,
  // so that `--where 'summary.val_bps > 0.9'` is valid (and matches nothing) from the start.
  Statement objectives(db, campaign_ids.empty()
                               ? "SELECT DISTINCT objective_metric FROM campaigns"
                               : "SELECT objective_metric FROM campaigns WHERE id = ?");
  for (std::size_t i = 0; i < std::max<std::size_t>(1, campaign_ids.size()); ++i) {
    objectives.reset();
    if (!campaign_ids.empty()) objectives.bind(1, campaign_ids[i]);
    while (objectives.step())
      if (!objectives.column_text(0).empty()) known.summaries.insert(objectives.column_text(0));
  }
  // Index seeks on params_by_name (name, value_real, value_text); a value is either REAL or
  // TEXT.
  Statement numeric(db, "SELECT EXISTS (SELECT 1 FROM params WHERE name = ? AND value_real IS "
                        "NOT NULL)");
  Statement textual(db, "SELECT EXISTS (SELECT 1 FROM params WHERE name = ? AND value_real IS "
                        "NULL AND value_text IS NOT NULL)");
  for (const auto& name : known.params) {
    numeric.reset();
    numeric.bind(1, name);
    if (numeric.step() && numeric.column_int64(0) != 0) known.numeric_params.insert(name);
    textual.reset();
    textual.bind(1, name);
    if (textual.step() && textual.column_int64(0) != 0) known.text_params.insert(name);
  }
  return known;
}

void check_field(const Field& field, const KnownNames& known, std::string_view source,
                 std::string_view text) {
  const bool is_param = field.kind == Field::Kind::kParam;
  if (!is_param && field.kind != Field::Kind::kSummary) return;
  const NameSet& names = is_param ? known.params : known.summaries;
  if (names.count(field.name)) return;
  // Did-you-mean: the closest known name of either kind.
  std::string best;
  std::size_t best_distance = std::max<std::size_t>(2, field.name.size() / 3) + 1;
  for (const auto* set : {&known.params, &known.summaries}) {
    for (const auto& n : *set) {
      std::size_t d = edit_distance(field.name, n);
      // A bare key ("latent_dim") matches the end of a dotted one ("model.latent_dim").
      if (n.size() > field.name.size() && n.ends_with("." + field.name)) d = 1;
      if (d < best_distance) {
        best_distance = d;
        best = (set == &known.params ? "params." : "summary.") + n;
      }
    }
  }
  std::string suggestion = best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
  // The params table holds only the swept keys: a run-config key that the sweep leaves alone
  // (train.steps in most campaigns) is not a params.KEY, and the message says so.
  throw QueryError(
      source, text, field.column,
      fmt::format("{} '{}'{}; {}swept params: {}; known summaries: {}",
                  is_param ? "no swept parameter" : "unknown summary", field.name, suggestion,
                  is_param ? "params.KEY takes only a run-config key that the sweep varies (the "
                             "others are the same for every run: `jslds show CAMPAIGN/NUMBER` "
                             "prints a run's whole configuration); "
                           : "",
                  join(known.params, "params."), join(known.summaries, "summary.")));
}

SqlFragment field_sql(const Field& field) {
  switch (field.kind) {
    case Field::Kind::kParam:
      return {"(SELECT COALESCE(p.value_real, p.value_text) FROM params p WHERE p.run_id = r.id "
              "AND p.name = ?)",
              {field.name}};
    case Field::Kind::kSummary:
      return {"(SELECT s.value FROM summaries s WHERE s.run_id = r.id AND s.name = ?)",
              {field.name}};
    case Field::Kind::kObjective:
      return {"(SELECT s.value FROM summaries s WHERE s.run_id = r.id AND s.name = "
              "c.objective_metric)",
              {}};
    case Field::Kind::kStatus: return {"r.status", {}};
    case Field::Kind::kCampaign: return {"c.name", {}};
    case Field::Kind::kNumber: return {"r.number", {}};
    case Field::Kind::kRepeat: return {"r.repeat", {}};
    case Field::Kind::kAttempts: return {"r.attempts", {}};
    case Field::Kind::kStepsDone: return {"r.steps_done", {}};
  }
  return {"NULL", {}};
}

SqlFragment compile_where(const WhereExpr& expr, const KnownNames& known, std::string_view text) {
  SqlFragment out;
  compile_into(expr, known, text, out);
  return out;
}

}  // namespace jslds::store
