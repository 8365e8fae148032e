// Rendering of run tables (store/run_table.h) for the terminal and for other programs:
// an aligned text table, RFC 4180 CSV, or a JSON array of objects.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "store/run_table.h"

namespace jslds::store {

enum class TableFormat {
  kTable,  ///< aligned columns, numbers right-aligned with 6 significant digits, "-" for NULL
  kCsv,    ///< RFC 4180: header row, comma separated, CRLF line ends, fields holding a comma,
           ///< quote, CR or LF quoted with inner quotes doubled; NULL is an empty field;
           ///< numbers with full (round-trip) precision
  kJson,   ///< an array of objects keyed by column name; NULL and non-finite numbers are null
};

/// "table", "csv" or "json"; throws std::invalid_argument listing them otherwise.
TableFormat parse_table_format(std::string_view text);

/// Writes `table` to `out` in `format`.
void write_table(std::ostream& out, const Table& table, TableFormat format);

/// One CSV field, quoted when RFC 4180 requires it.
std::string csv_field(std::string_view text);

/// A value as shown in the aligned table ("-" for NULL, 6 significant digits for reals).
std::string display_value(const SqlValue& value);

}  // namespace jslds::store
