#include "store/table_format.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace jslds::store {
namespace {

bool is_number(const SqlValue& v) {
  return std::holds_alternative<int64_t>(v) || std::holds_alternative<double>(v);
}

// Full precision, shortest round-trip form ("32", "0.1", "1e-07").
std::string exact_value(const SqlValue& v) {
  if (std::holds_alternative<std::nullptr_t>(v)) return "";
  if (const auto* i = std::get_if<int64_t>(&v)) return fmt::format("{}", *i);
  if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  return std::get<std::string>(v);
}

nlohmann::ordered_json json_value(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) {
    if (!std::isfinite(*d)) return nullptr;
    return *d;
  }
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return nullptr;
}

}  // namespace

TableFormat parse_table_format(std::string_view text) {
  if (text == "table") return TableFormat::kTable;
  if (text == "csv") return TableFormat::kCsv;
  if (text == "json") return TableFormat::kJson;
  throw std::invalid_argument(
      fmt::format("unknown format '{}': expected table, csv or json", text));
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

std::string display_value(const SqlValue& v) {
  if (std::holds_alternative<std::nullptr_t>(v)) return "-";
  if (const auto* d = std::get_if<double>(&v)) return fmt::format("{:.6g}", *d);
  return exact_value(v);
}

void write_table(std::ostream& out, const Table& table, TableFormat format) {
  switch (format) {
    case TableFormat::kCsv: {
      for (std::size_t c = 0; c < table.columns.size(); ++c) {
        out << (c ? "," : "") << csv_field(table.columns[c]);
      }
      out << "\r\n";
      for (const auto& row : table.rows) {
        for (std::size_t c = 0; c < row.size(); ++c) {
          out << (c ? "," : "") << csv_field(exact_value(row[c]));
        }
        out << "\r\n";
      }
      return;
    }
    case TableFormat::kJson: {
      // ordered_json: keys in column order (--columns), not alphabetical.
      nlohmann::ordered_json array = nlohmann::ordered_json::array();
      for (const auto& row : table.rows) {
        nlohmann::ordered_json object = nlohmann::ordered_json::object();
        for (std::size_t c = 0; c < row.size(); ++c) object[table.columns[c]] = json_value(row[c]);
        array.push_back(std::move(object));
      }
      out << array.dump(2) << "\n";
      return;
    }
    case TableFormat::kTable: {
      std::vector<std::vector<std::string>> cells;
      cells.reserve(table.rows.size());
      std::vector<std::size_t> width(table.columns.size());
      std::vector<bool> numeric(table.columns.size(), true);
      for (std::size_t c = 0; c < table.columns.size(); ++c) width[c] = table.columns[c].size();
      for (const auto& row : table.rows) {
        std::vector<std::string> line;
        for (std::size_t c = 0; c < row.size(); ++c) {
          // Text in a cell must not break the layout.
          std::string s = display_value(row[c]);
          std::replace(s.begin(), s.end(), '\n', ' ');
          std::replace(s.begin(), s.end(), '\r', ' ');
          if (!is_number(row[c]) && !std::holds_alternative<std::nullptr_t>(row[c])) {
            numeric[c] = false;
          }
          width[c] = std::max(width[c], s.size());
          line.push_back(std::move(s));
        }
        cells.push_back(std::move(line));
      }
      auto write_line = [&](const std::vector<std::string>& line) {
        std::string text;
        for (std::size_t c = 0; c < line.size(); ++c) {
          if (c) text += "  ";
          text += numeric[c] ? fmt::format("{:>{}}", line[c], width[c])
                             : fmt::format("{:<{}}", line[c], width[c]);
        }
        text.erase(text.find_last_not_of(' ') + 1);
        out << text << "\n";
      };
      write_line(table.columns);
      std::vector<std::string> rule;
      for (std::size_t w : width) rule.emplace_back(w, '-');
      write_line(rule);
      for (const auto& line : cells) write_line(line);
      return;
    }
  }
}

}  // namespace jslds::store
