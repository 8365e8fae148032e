#include "cli/run_app.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "core/build_id.h"
#include "core/config.h"
#include "core/did_you_mean.h"

namespace jslds::cli {
namespace {

// The command lists of `jslds --help` (and `jslds config --help`, `jslds data --help`) show
// the first line of each description: one line per command. A command's own --help shows
// all of it, and its details go in its footer.
class OneLineCommandList : public CLI::Formatter {
 public:
  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    const std::string& description = sub->get_description();
    CLI::detail::format_help(out, sub->get_display_name(true),
                             description.substr(0, description.find('\n')), column_width_);
    return out.str();
  }
};

// CLI11 reports a word that is no command as "A subcommand is required": name the word and
// the commands instead, at the level that needed one (`jslds bogus`, `jslds config bogus`).
// Returns false for other missing arguments (e.g. `jslds train` without its file).
bool report_unknown_command(const CLI::App& top) {
  const CLI::App* app = &top;
  std::string path = top.get_name();
  while (!app->get_subcommands().empty()) {
    app = app->get_subcommands().front();
    path += " " + app->get_name();
  }
  std::vector<std::string> commands;
  for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; }))
    commands.push_back(sub->get_name());
  if (commands.empty()) return false;
  const std::string list = fmt::format("{}", fmt::join(commands, ", "));
  const std::vector<std::string> rest = top.remaining(/*recurse=*/true);
  if (rest.empty()) {
    std::cerr << fmt::format("error: {} needs a command: one of {} (`{} --help` describes them)\n",
                             path, list, path);
  } else if (rest.front().starts_with("-")) {
    std::cerr << fmt::format("error: unknown option '{}' for {}; expected --help or a command: "
                             "one of {}\n",
                             rest.front(), path, list);
  } else {
    std::cerr << fmt::format("error: unknown command '{}'{}; {} takes one of {} (`{} --help` "
                             "describes them)\n",
                             rest.front(), did_you_mean(rest.front(), commands), path,
                             list, path);
  }
  return true;
}

}  // namespace

std::unique_ptr<CLI::App> make_top_level_app() {
  auto app = std::make_unique<CLI::App>(
      "jslds: fit nonlinear latent dynamics models to neural population recordings,\n"
      "co-trained with a parameter-tied switching linear system (JSLDS), run sweeps of them\n"
      "over MPI, and keep every result in an SQLite experiment database.",
      "jslds");
  app->set_version_flag("--version", "jslds " + build_id());
  app->require_subcommand(1);
  app->fallthrough(false);
  app->formatter(std::make_shared<OneLineCommandList>());  // before the commands inherit it
  return app;
}

void register_database_commands(CLI::App& app) {
  register_status(app);
  register_query(app);
  register_best(app);
  register_show(app);
  register_export(app);
}

namespace {

int parse_and_run(CLI::App& app, int argc, char** argv,
                  const std::function<bool(const std::exception&)>& is_input_error) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::RequiredError& e) {
    if (report_unknown_command(app)) return 2;
    app.exit(e);
    return 2;
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with exit code 0; real usage errors exit 2.
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const Exit& e) {
    if (!e.message.empty()) std::cerr << e.message << "\n";
    return e.code;
  } catch (const ConfigError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return is_input_error(e) ? 2 : 1;
  }
  return 0;
}

}  // namespace

int run_command_line(CLI::App& app, int argc, char** argv,
                     const std::function<bool(const std::exception&)>& is_input_error,
                     const std::function<bool(const CLI::App&)>& prints_progress_only) {
  int code = parse_and_run(app, argc, argv, is_input_error);
  // What a command printed must arrive whole: a full disk or /dev/full under `> table.csv`
  // would otherwise leave a truncated table behind a success status.
  const bool output_is_the_result = !prints_progress_only(app);
  // The reason is taken right at the final flush: an errno from an earlier failed write is
  // long overwritten (SQLite's own calls set it), so without a failure here none is named.
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  const int error = flushed ? 0 : errno;
  std::cout.flush();
  if (!flushed || !std::cout.good() || std::ferror(stdout)) {
    std::cerr << fmt::format("{}: writing to standard output failed ({}); what was printed "
                             "is incomplete\n",
                             output_is_the_result ? "error" : "warning",
                             error != 0 ? std::strerror(error) : "an earlier write failed");
    if (code == 0 && output_is_the_result) code = 1;
  }
  return code;
}

}  // namespace jslds::cli
