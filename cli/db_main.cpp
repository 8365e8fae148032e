// jslds: the command users type. The database commands (status, query, best, show, export)
// run here, in a program without LibTorch, which starts in milliseconds instead of the
// ~0.6 s of CPU LibTorch's initialisation costs (it matters for `watch jslds status` beside a
// sweep on a small machine). Every other command line (train, sweep, analyze, --help, …) is
// handed, unchanged, to jslds-full beside this program (cli/main.cpp), by exec: same process,
// same arguments, same exit status.
#include <unistd.h>

#include <array>
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

namespace {

constexpr std::array<std::string_view, 5> kDatabaseCommands = {"status", "query", "best", "show",
                                                              "export"};

bool is_database_command(int argc, char** argv) {
  if (argc < 2) return false;
  for (const auto name : kDatabaseCommands)
    if (argv[1] == name) return true;
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (!is_database_command(argc, argv)) {
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
    ::execv(full.c_str(), argv);
    const int error = errno;
    std::cerr << fmt::format("error: cannot run {} ({}): it runs every command but status, query, best, show and "
                             "export; keep it beside {} (copy or link the two together)\n",
                             full.string(), std::strerror(error), self.string());
    return error == EACCES ? 126 : 127;  // the shell's codes for a program that cannot be run
  }
  const auto top = jslds::cli::make_top_level_app();
  CLI::App& app = *top;
  jslds::cli::register_database_commands(app);
  return jslds::cli::run_command_line(
      app, argc, argv, [](const std::exception&) { return false; },
      [](const CLI::App&) { return false; });
}
