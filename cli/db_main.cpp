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
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    const std::filesystem::path full = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / "jslds-full";
    ::execv(full.c_str(), argv);
    std::cerr << fmt::format("error: cannot run {} ({}): it holds every command but status, query, "
                             "best, show and export; build it with the rest of jslds\n",
                             full.string(), std::strerror(errno));
    return 1;
  }
  const auto top = jslds::cli::make_top_level_app();
  CLI::App& app = *top;
  jslds::cli::register_database_commands(app);
  return jslds::cli::run_command_line(
      app, argc, argv, [](const std::exception&) { return false; },
      [](const CLI::App&) { return false; });
}
