// jslds: nonlinear latent dynamics co-trained with a Jacobian switching linear system,
// hyperparameter sweeps over MPI, and an SQLite experiment database (DESIGN.md).
#include <cstdio>
#include <exception>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/config.h"
#include "core/data/loaders.h"

int main(int argc, char** argv) {
  CLI::App app{
      "jslds: fit nonlinear latent dynamics models to neural population recordings,\n"
      "co-trained with a parameter-tied switching linear system (JSLDS), run sweeps of them\n"
      "over MPI, and keep every result in an SQLite experiment database.",
      "jslds"};
  app.set_version_flag("--version", std::string("jslds ") + JSLDS_VERSION + "\n");
  app.require_subcommand(1);
  app.fallthrough(false);

  jslds::cli::register_config(app);
  jslds::cli::register_simulate(app);
  jslds::cli::register_data(app);
  jslds::cli::register_sweep(app);
  jslds::cli::register_status(app);
  jslds::cli::register_query(app);
  jslds::cli::register_best(app);
  jslds::cli::register_show(app);
  jslds::cli::register_export(app);
  jslds::cli::register_train(app);
  jslds::cli::register_analyze(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0; real usage errors exit 2.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const jslds::cli::Exit& e) {
    if (!e.message.empty()) std::cerr << e.message << "\n";
    return e.code;
  } catch (const jslds::ConfigError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const jslds::DataError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const jslds::cli::UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
