// WorkerPool of J local workers, one thread each, for `jslds sweep --jobs J` without mpirun
// (DESIGN §2). Each thread runs the same worker loop as an MPI rank; messages pass as
// values through locked queues, and receive() sleeps on a condition variable.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "coordinator/worker_pool.h"
#include "worker/worker_loop.h"

namespace jslds {

class LocalPool : public WorkerPool {
 public:
  /// Starts `jobs` (>= 1) worker threads. Unless `options.supervisor` sets them, children
  /// get cores / jobs threads each and GPU i mod n_gpus. Throws std::invalid_argument for
  /// jobs < 1.
  LocalPool(int jobs, WorkerLoopOptions options);
  /// Sends Shutdown to every worker (each stops its child) and joins the threads.
  ~LocalPool() override;

  int size() const override { return static_cast<int>(workers_.size()); }
  void send(int worker, const Message& message) override;
  std::optional<WorkerMessage> receive(std::chrono::milliseconds timeout) override;
  std::string name(int worker) const override;

 private:
  struct Worker;
  struct Outbox {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<WorkerMessage> queue;
  };
  void shutdown_all() noexcept;

  Outbox outbox_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::string host_;
};

}  // namespace jslds
