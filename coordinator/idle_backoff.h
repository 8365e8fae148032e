// How long a polling loop sleeps between checks for MPI messages (DESIGN §2: rank 0 and the
// workers never busy-wait; Open MPI's blocking calls spin a core).
//
// Right after activity a reply usually follows within milliseconds (a worker that has just
// sent a result waits for its next task; rank 0 that has just handed out a task waits for the
// next result), so the first checks are 25–100 µs apart: the gap between one run and the next
// stays small (bench/dispatch). After 20 ms without activity the interval grows to 2 ms, so a
// rank that waits for long runs wakes only 500 times a second (well under 1% of a core).
#pragma once

#include <algorithm>
#include <chrono>
#include <thread>

namespace jslds {

class IdleBackoff {
 public:
  using clock = std::chrono::steady_clock;

  /// Something happened (a message arrived or was sent): check again soon.
  void activity() {
    last_activity_ = clock::now();
    nap_ = kFirst;
  }

  /// Sleeps for the next interval, at most `limit`.
  void sleep(clock::duration limit = clock::duration::max()) {
    std::this_thread::sleep_for(std::min<clock::duration>(nap_, limit));
    const bool recent = clock::now() - last_activity_ < kRecent;
    nap_ = std::min<std::chrono::microseconds>(nap_ * 2, recent ? kRecentCap : kIdleCap);
  }

 private:
  static constexpr std::chrono::microseconds kFirst{25};
  static constexpr std::chrono::microseconds kRecentCap{100};
  static constexpr std::chrono::microseconds kIdleCap{2000};
  static constexpr std::chrono::milliseconds kRecent{20};
  clock::time_point last_activity_ = clock::now();
  std::chrono::microseconds nap_ = kFirst;
};

}  // namespace jslds
