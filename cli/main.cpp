// jslds-full: every command of jslds (DESIGN.md): nonlinear latent dynamics co-trained with a
// Jacobian switching linear system, hyperparameter sweeps over MPI, and an SQLite experiment
// database. `jslds` (cli/db_main.cpp) runs the database commands itself, without loading
// LibTorch, and hands every other command line to this program.
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "cli/run_app.h"
#include "core/data/loaders.h"

int main(int argc, char** argv) {
  const auto top = jslds::cli::make_top_level_app();
  CLI::App& app = *top;
  jslds::cli::register_config(app);
  jslds::cli::register_simulate(app);
  jslds::cli::register_data(app);
  jslds::cli::register_sweep(app);
  jslds::cli::register_database_commands(app);
  jslds::cli::register_train(app);
  jslds::cli::register_analyze(app);
  return jslds::cli::run_command_line(
      app, argc, argv,
      [](const std::exception& e) { return dynamic_cast<const jslds::DataError*>(&e) != nullptr; },
      // train and sweep print progress; their results are in files and the database (a dry
      // run's plan is its result).
      [](const CLI::App& a) {
        return a.got_subcommand("train") ||
               (a.got_subcommand("sweep") && a.get_subcommand("sweep")->get_option("--dry-run")->count() == 0);
      });
}
