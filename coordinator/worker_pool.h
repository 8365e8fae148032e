// The coordinator's view of its workers (DESIGN §1): the MPI pool (coordinator/mpi_pool.h,
// ranks 1..N-1) and the local pool (worker/local_pool.h, --jobs J threads) implement it, and
// the CLI wires one of them into the Coordinator.
#pragma once

#include <chrono>
#include <optional>

#include "coordinator/protocol.h"

namespace jslds {

/// A message from worker `worker` (0-based index into the pool).
struct WorkerMessage {
  int worker = 0;
  Message message;
};

/// Workers numbered 0..size()-1. Not thread-safe: one thread (the coordinator's) calls it.
class WorkerPool {
 public:
  virtual ~WorkerPool() = default;

  /// Number of workers.
  virtual int size() const = 0;

  /// Sends a Task, Withdraw, Stop or Shutdown to one worker without waiting for it to be
  /// handled.
  /// Throws std::runtime_error (MpiError for the MPI pool) when the transport fails.
  virtual void send(int worker, const Message& message) = 0;

  /// The next message from any worker, waiting at most `timeout` for one. Never busy-waits:
  /// implementations block or sleep in steps of at most 10 ms. Returns nullopt on timeout.
  virtual std::optional<WorkerMessage> receive(std::chrono::milliseconds timeout) = 0;

  /// A short name of the worker for the database and logs, e.g. "rank 3 on node17".
  virtual std::string name(int worker) const = 0;
};

}  // namespace jslds
