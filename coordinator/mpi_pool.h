// WorkerPool over MPI: worker i is world rank i + 1 (DESIGN §2). Rank 0 owns it.
#pragma once

#include <string>
#include <vector>

#include "coordinator/idle_backoff.h"
#include "coordinator/mpi.h"
#include "coordinator/worker_pool.h"

namespace jslds {

class MpiPool : public WorkerPool {
 public:
  /// `session.size() - 1` workers. Requires session.rank() == 0.
  explicit MpiPool(const MpiSession& session);

  int size() const override { return static_cast<int>(names_.size()); }
  /// Encodes and MPI_Isends the message (never blocks). Throws MpiError.
  void send(int worker, const Message& message) override;
  /// MPI_Iprobe, then sleeps that grow from 0.1 ms to 5 ms while nothing arrives, so an
  /// idle coordinator costs well under 1% of a core and a busy one answers within ~0.1 ms.
  /// Throws MpiError, or ProtocolError for an undecodable message.
  std::optional<WorkerMessage> receive(std::chrono::milliseconds timeout) override;
  std::string name(int worker) const override { return names_.at(static_cast<size_t>(worker)); }
  /// Waits up to `seconds` for sent messages to be delivered (before MPI_Finalize).
  bool flush(double seconds) { return mailbox_.flush(seconds); }

 private:
  MpiMailbox mailbox_;
  IdleBackoff backoff_;  // between checks for results (coordinator/idle_backoff.h)
  std::vector<std::string> names_;
};

}  // namespace jslds
