// Helpers of the CLI-level sweep tests: start `jslds sweep` (under mpirun or not) as a
// process group of its own, wait for it with a timeout, find every process of the job, and
// read the experiment database while the job writes it.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "store/experiment_store.h"
#include "worker/child_process.h"

namespace jslds::test {

namespace fs = std::filesystem;

/// A fresh directory under /tmp named after the running test.
inline fs::path test_directory(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("jslds_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

/// argv of `mpirun -np N … jslds sweep ARGS…` (or plain `jslds sweep` when np == 0).
inline std::vector<std::string> sweep_command(int np, const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (np > 0)
    argv = {"mpirun", "-np", std::to_string(np), "--oversubscribe", "--allow-run-as-root",
            "--bind-to", "none", "-x", "JSLDS_TRAIN_EXE", "-x", "FAKE_TRAIN_STEP_MS",
            "-x", "FAKE_TRAIN_FAIL", "-x", "FAKE_TRAIN_STOP_CHECKPOINT_MS"};
  argv.push_back(JSLDS_EXE);
  argv.push_back("sweep");
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

inline ChildProcess start(const std::vector<std::string>& argv, const fs::path& log,
                          std::map<std::string, std::string> env = {}) {
  SpawnOptions o;
  o.executable = argv[0] == "mpirun" ? fs::path("/usr/bin/mpirun") : fs::path(argv[0]);
  o.argv = argv;
  o.log_file = log;
  env.emplace("OMPI_ALLOW_RUN_AS_ROOT", "1");
  env.emplace("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
  env.emplace("OMPI_MCA_rmaps_base_oversubscribe", "1");
  env.emplace("FAKE_TRAIN_STEP_MS", "0");
  env.emplace("FAKE_TRAIN_FAIL", "");
  env.emplace("FAKE_TRAIN_STOP_CHECKPOINT_MS", "0");
  o.environment = env;
  return ChildProcess::spawn(o);
}

/// Waits up to `limit` for the process; its raw wait status, or nullopt on timeout.
inline std::optional<int> wait_for(ChildProcess& p, std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (auto st = p.try_wait()) return st;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

/// Exit code of a wait status; -signal when killed.
inline int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

inline std::pair<pid_t, std::string> parent_and_name(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return {-1, ""};
  std::istringstream rest(text.substr(close + 2));
  char state;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return {ppid, text.substr(open + 1, close - open - 1)};
}

/// Every descendant of `root` (children, grandchildren, …), from /proc.
inline std::vector<pid_t> descendants(pid_t root) {
  std::vector<std::pair<pid_t, pid_t>> links;  // (pid, ppid)
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    links.push_back({pid, parent_and_name(pid).first});
  }
  std::vector<pid_t> out{root};
  for (size_t i = 0; i < out.size(); ++i)
    for (const auto& [pid, ppid] : links)
      if (ppid == out[i]) out.push_back(pid);
  out.erase(out.begin());
  return out;
}

/// The direct children of `root` named `name` (the MPI ranks of a local mpirun).
inline std::vector<pid_t> children_named(pid_t root, const std::string& name) {
  std::vector<pid_t> out;
  for (pid_t pid : descendants(root)) {
    auto [ppid, comm] = parent_and_name(pid);
    if (ppid == root && comm == name) out.push_back(pid);
  }
  return out;
}

/// SIGKILL to the whole job at once: freezes the tree (SIGSTOP) so nothing new starts or
/// exits unseen, then kills every process in it, mpirun included.
inline size_t kill_job(pid_t root) {
  std::vector<pid_t> all{root};
  for (int round = 0; round < 3; ++round) {
    for (pid_t pid : descendants(root)) {
      if (std::find(all.begin(), all.end(), pid) == all.end()) all.push_back(pid);
    }
    for (pid_t pid : all) ::kill(pid, SIGSTOP);
  }
  for (pid_t pid : all) ::kill(pid, SIGKILL);
  return all.size();
}

/// Reads the database without disturbing the writer; nullopt while it does not exist yet.
template <class F>
auto read_db(const fs::path& db, F&& f) -> std::optional<decltype(f(std::declval<store::ExperimentStore&>()))> {
  std::error_code ec;
  if (!fs::exists(db, ec)) return std::nullopt;
  try {
    store::OpenOptions o;
    o.read_only = true;
    store::ExperimentStore s(db.string(), o);
    return f(s);
  } catch (const store::StoreError&) {
    return std::nullopt;  // not created yet (no schema)
  }
}

inline std::string slurp(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace jslds::test
