// jslds: the command users type. The database commands (status, query, best, show, export)
// run here, in a program without LibTorch, which starts in milliseconds instead of the
// ~0.6 s of CPU LibTorch's initialisation costs (it matters for `watch jslds status` beside a
// sweep on a small machine). Every other command line (train, sweep, analyze, --help, …) is
// handed, unchanged, to jslds-full beside this program (cli/main.cpp), by exec: same process,
// same arguments, same exit status, with OPENBLAS_CORETYPE set first where Debian's OpenBLAS
// does not know the CPU (core/blas_core.h).
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/run_app.h"
#include "core/blas_core.h"

int main(int argc, char** argv) {
  const auto top = jslds::cli::make_top_level_app();
  CLI::App& app = *top;
  jslds::cli::register_database_commands(app);
  // A command line that does not start with one of those goes to jslds-full.
  const bool database_command =
      argc >= 2 && !app.get_subcommands([&](const CLI::App* sub) { return sub->get_name() == argv[1]; }).empty();
  if (!database_command) {
    // jslds-full beside this program's file (symbolic links resolved). Without /proc, from
    // argv[0] only when it names a path: a bare name would look in the current directory.
    std::error_code ec;
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec && argc > 0 && std::string_view(argv[0]).find('/') != std::string_view::npos)
      self = std::filesystem::canonical(argv[0], ec);
    if (ec || self.empty()) {
      std::cerr << "error: cannot find jslds-full, which runs every command but status, query, best, show and "
                   "export: this program's own path is unknown (/proc/self/exe is unreadable); run it by its "
                   "path, e.g. /opt/jslds/bin/jslds\n";
      return 127;
    }
    const std::filesystem::path full = self.parent_path() / "jslds-full";
    // Before LibTorch loads OpenBLAS: its kernels for this CPU (core/blas_core.h).
    jslds::set_blas_core_for_children();
    ::execv(full.c_str(), argv);
    const int error = errno;
    std::cerr << fmt::format("error: cannot run {} ({}): it runs every command but status, query, best, show and "
                             "export; keep it beside {} (copy or link the two together)\n",
                             full.string(), std::strerror(error), self.string());
    return error == EACCES ? 126 : 127;  // the shell's codes for a program that cannot be run
  }
  return jslds::cli::run_command_line(
      app, argc, argv, [](const std::exception&) { return false; },
      [](const CLI::App&) { return false; });
}
