// The frame both executables share (cli/main.cpp: every command, with LibTorch; cli/db_main.cpp:
// the database commands, without it): the top-level App, parsing, the exit status of each
// kind of error (DESIGN §6: 0 success, 1 runtime failure, 2 usage or input error) and the
// check that what was printed on stdout arrived.
#pragma once

#include <exception>
#include <functional>
#include <memory>

#include <CLI/CLI.hpp>

namespace jslds::cli {

/// The top-level `jslds` App: description, --version, one command required, one-line
/// command lists in --help.
std::unique_ptr<CLI::App> make_top_level_app();

/// Registers the database commands, which both executables run: status, query, best, show,
/// export (in this order, as `jslds --help` lists them).
void register_database_commands(CLI::App& app);

/// Parses argv into `app` (its commands registered) and runs the chosen command. Returns the
/// exit status: 0; 2 for usage and input errors (CLI11's, UsageError, ConfigError, and every
/// exception `is_input_error` accepts); Exit's code; 1 for any other exception. Then flushes
/// stdout: a failed write (full disk, /dev/full) is an error, exit 1, for commands whose
/// output is their result; for those `prints_progress_only` names (train, sweep: results in
/// files) a warning.
int run_command_line(CLI::App& app, int argc, char** argv,
                     const std::function<bool(const std::exception&)>& is_input_error,
                     const std::function<bool(const CLI::App&)>& prints_progress_only);

}  // namespace jslds::cli
