// Shared by the database-reading subcommands (query, best, export, show, status): the --db
// option and a read-only open with clear errors.
#pragma once

#include <filesystem>
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
                  "read-only, so it is safe while a sweep writes")
      ->default_val("jslds.sqlite");
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
