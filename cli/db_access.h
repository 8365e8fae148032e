// Shared by the database-reading subcommands (query, best, export, show, status): the --db
// option and a read-only open with clear errors.
#pragma once

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "store/experiment_store.h"
#include "store/query.h"

namespace jslds::cli {

/// DESIGN §6: every command that reads or writes the database takes --db (default
/// jslds.sqlite in the current directory).
inline void add_db_option(CLI::App& command, std::string& path) {
  command
      .add_option("--db", path,
                  "experiment database (SQLite file) written by `jslds sweep`; opened "
                  "read-only, so it is safe while a sweep writes (SQLite may leave empty "
                  "F-wal and F-shm files next to it: harmless, part of the database)")
      ->default_val("jslds.sqlite");
}

/// `text` as a whole number, when all of it is one that fits int64 (the checks below).
inline std::optional<int64_t> whole_number(const std::string& text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

/// A CLI11 check for a whole number of at least `min` (counts, limits), with a plain message
/// ("--limit: must be a whole number >= 0, got -1") instead of CLI11's range text with
/// 300-digit bounds.
inline CLI::Validator whole_number_at_least(int64_t min) {
  return CLI::Validator(
      [min](std::string& text) -> std::string {
        const auto value = whole_number(text);
        if (!value || *value < min) return fmt::format("must be a whole number >= {}, got '{}'", min, text);
        return std::string();
      },
      min == 0 ? std::string("NONNEGATIVE") : fmt::format("AT LEAST {}", min));
}

/// The same for a whole number from `min` to `max` (e.g. thread counts).
inline CLI::Validator whole_number_between(int64_t min, int64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        const auto value = whole_number(text);
        if (!value || *value < min || *value > max)
          return fmt::format("must be a whole number from {} to {}, got '{}'", min, max, text);
        return std::string();
      },
      fmt::format("{} TO {}", min, max));
}

/// Opens the database read-only (busy timeout 30 s). A missing file is a usage error (exit 2)
/// saying what to do; a file that is not a jslds database, or one from a newer jslds, is an
/// input error too.
inline store::ExperimentStore open_reader(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    throw UsageError(fmt::format(
        "no experiment database '{}': run `jslds sweep` first or give the file with --db F",
        path));
  }
  try {
    return store::ExperimentStore(path, {.read_only = true});
  } catch (const store::StoreError& e) {
    throw UsageError(e.what());
  }
}

/// Runs `body`, turning query-language errors (bad --where, unknown names) into usage errors
/// (exit 2) with their column and caret.
template <class F>
void with_query_errors_as_usage(F&& body) {
  try {
    body();
  } catch (const store::QueryError& e) {
    throw UsageError(e.what());
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

}  // namespace jslds::cli
