// Graceful-stop signals (DESIGN §2): SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 mean "stop
// gracefully"; a second one means "exit now".
//
// The first signal only sets a flag that the coordinator and worker loops poll. A second
// signal SIGKILLs the process groups of every registered child (so no `jslds train` is left
// training as an orphan) and calls _exit(128 + signal) from the handler. The resume logic
// copes with either ending (DESIGN §3).
#pragma once

#include <string>

#include <sys/types.h>

namespace jslds {

/// Installs the handlers for the lifetime of the object (one at a time per process) and
/// restores the previous dispositions in its destructor. Thread-safe accessors.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// True once a stop signal arrived (or request() was called).
  static bool requested();
  /// The first signal's number, 0 when none (request() without a signal gives 0 too).
  static int signal_number();
  /// Sets the flag as a signal would, e.g. when a worker reports a signal it received.
  static void request(int signal_number = 0);
  /// Clears the flag (tests; a new campaign in the same process).
  static void reset();

  /// Remembers a child's process group so that a second signal can SIGKILL it. At most 256
  /// groups at once; further ones are not remembered (they still get the graceful SIGTERM).
  static void register_child_group(pid_t pgid);
  static void unregister_child_group(pid_t pgid);
};

/// "SIGTERM", "SIGUSR1", … for a signal number ("signal 42" for unnamed ones).
std::string signal_name(int signal_number);

}  // namespace jslds
