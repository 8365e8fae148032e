#include "coordinator/signals.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <stdexcept>

#include <unistd.h>

namespace jslds {

namespace {

constexpr int kSignals[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
constexpr int kMaxGroups = 256;

std::atomic<int> g_count{0};
std::atomic<int> g_first{0};
std::atomic<bool> g_installed{false};
std::atomic<pid_t> g_groups[kMaxGroups];
struct sigaction g_previous[sizeof(kSignals) / sizeof(kSignals[0])];

constexpr char kSecondSignalKilled[] =
    "\njslds: a second stop signal: exiting now; the running trainings were killed. Run the same command again to "
    "resume: each run continues from its last checkpoint\n";
constexpr char kSecondSignal[] =
    "\njslds: a second stop signal: exiting now. Run the same command again to resume: each run continues from "
    "its last checkpoint\n";

// Async-signal-safe: atomics, kill, sigaction, write and _exit only.
extern "C" void jslds_coordinator_on_stop_signal(int sig) {
  int seen = g_count.fetch_add(1);
  if (seen == 0) {
    g_first.store(sig);
    return;
  }
  bool killed = false;
  for (auto& g : g_groups) {
    pid_t pgid = g.load();
    if (pgid > 0) killed |= ::kill(-pgid, SIGKILL) == 0;
  }
  if (seen == 1) {
    // A closed pipe (`jslds sweep | tee log`, whose tee the same Ctrl-C ended) must not turn
    // the exit status into SIGPIPE's.
    struct sigaction ignore;
    std::memset(&ignore, 0, sizeof ignore);
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);
    const char* text = killed ? kSecondSignalKilled : kSecondSignal;
    const size_t size = killed ? sizeof kSecondSignalKilled - 1 : sizeof kSecondSignal - 1;
    [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, text, size);
  }
  ::_exit(128 + sig);
}

}  // namespace

StopSignals::StopSignals() {
  if (g_installed.exchange(true))
    throw std::logic_error("StopSignals: handlers are already installed in this process");
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = jslds_coordinator_on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &sa, &g_previous[i]);
}

StopSignals::~StopSignals() {
  for (size_t i = 0; i < std::size(kSignals); ++i) ::sigaction(kSignals[i], &g_previous[i], nullptr);
  g_installed.store(false);
}

bool StopSignals::requested() { return g_count.load() > 0; }
int StopSignals::signal_number() { return g_first.load(); }

void StopSignals::request(int signal_number) {
  int expected = 0;
  if (g_count.compare_exchange_strong(expected, 1)) g_first.store(signal_number);
}

void StopSignals::reset() {
  g_count.store(0);
  g_first.store(0);
}

void StopSignals::register_child_group(pid_t pgid) {
  for (auto& g : g_groups) {
    pid_t empty = 0;
    if (g.compare_exchange_strong(empty, pgid)) return;
  }
}

void StopSignals::unregister_child_group(pid_t pgid) {
  for (auto& g : g_groups) {
    pid_t expected = pgid;
    if (g.compare_exchange_strong(expected, 0)) return;
  }
}

std::string signal_name(int signal_number) {
  if (const char* abbrev = sigabbrev_np(signal_number)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signal_number);
}

}  // namespace jslds
