// The worker's event loop, shared by MPI workers (ranks > 0) and local workers (--jobs J
// threads): receive a task → supervise its child → stream progress → send the result
// (DESIGN §2).
#pragma once

#include <chrono>
#include <optional>

#include "coordinator/protocol.h"
#include "worker/supervisor.h"

namespace jslds {

/// The worker's end of its link to the coordinator.
class WorkerChannel {
 public:
  virtual ~WorkerChannel() = default;
  virtual void send(const Message& message) = 0;
  /// A message from the coordinator if one has arrived; never blocks.
  virtual std::optional<Message> try_receive() = 0;
};

struct WorkerLoopOptions {
  SupervisorOptions supervisor;
  /// MPI workers: a stop signal (StopSignals) stops the child and is reported to the
  /// coordinator as Stop. Local workers leave signals to the coordinator in the same process.
  bool react_to_signals = false;
  /// Metric points are batched and sent at most this often per run (checkpoints at once).
  std::chrono::milliseconds progress_interval{1000};
};

/// Sends `hello`, then serves tasks until Shutdown. A Task that arrives while a run is active
/// is queued and started as soon as that run's result is sent; a Withdraw of a task still
/// queued hands it back. A Task that arrives after a stop signal, Stop or Shutdown, and any
/// queued one then, is answered `not_started` ("the worker is stopping") without starting a
/// child. Throws what the channel throws.
void run_worker_loop(WorkerChannel& channel, const Hello& hello, WorkerLoopOptions options);

}  // namespace jslds
