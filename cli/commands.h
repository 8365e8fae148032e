// Subcommand registration. Each subcommand lives in cli/cmd_<name>.cpp and exposes one
// register function; main.cpp calls them in order. A register function adds its CLI11
// subcommand and the callback that runs it.
//
// Exit codes (DESIGN §6): 0 success, 1 runtime failure, 2 usage or input error,
// 130/143 interrupted after a clean stop. Callbacks report an exit code by throwing
// jslds::cli::Exit or by throwing ConfigError (→ 2) / any other exception (→ 1).
#pragma once

#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

namespace jslds::cli {

/// Thrown by a subcommand to end the program with `code` after printing `message` (if not
/// empty) on stderr.
struct Exit {
  int code;
  std::string message;
};

/// Thrown for usage and input errors: printed as "error: …" with exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void register_config(CLI::App& app);
void register_simulate(CLI::App& app);
void register_data(CLI::App& app);
void register_sweep(CLI::App& app);
void register_status(CLI::App& app);
void register_query(CLI::App& app);
void register_best(CLI::App& app);
void register_show(CLI::App& app);
void register_export(CLI::App& app);
void register_train(CLI::App& app);
void register_analyze(CLI::App& app);

}  // namespace jslds::cli
