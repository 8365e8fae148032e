#include "worker/local_pool.h"

#include <exception>

#include <fmt/format.h>
#include <unistd.h>

#include "worker/placement.h"

namespace jslds {

struct LocalPool::Worker : WorkerChannel {
  int index = 0;
  Outbox* outbox = nullptr;
  std::mutex mutex;
  std::deque<Message> inbox;
  std::thread thread;

  void send(const Message& message) override {
    {
      std::lock_guard lock(outbox->mutex);
      outbox->queue.push_back(WorkerMessage{index, message});
    }
    outbox->ready.notify_one();
  }
  std::optional<Message> try_receive() override {
    std::lock_guard lock(mutex);
    if (inbox.empty()) return std::nullopt;
    Message m = std::move(inbox.front());
    inbox.pop_front();
    return m;
  }
};

LocalPool::LocalPool(int jobs, WorkerLoopOptions options) {
  if (jobs < 1) throw std::invalid_argument(fmt::format("--jobs {}: expected at least 1", jobs));
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  host_ = host;
  const int cores = online_cores();
  const auto gpus = visible_gpus();
  options.react_to_signals = false;  // the coordinator in this process handles signals
  for (int i = 0; i < jobs; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->outbox = &outbox_;
    workers_.push_back(std::move(w));
  }
  for (int i = 0; i < jobs; ++i) {
    Placement placement = place_worker(i, jobs, cores, gpus);
    WorkerLoopOptions o = options;
    if (o.supervisor.threads == 0) o.supervisor.threads = placement.threads;
    if (o.supervisor.cuda_visible_devices.empty())
      o.supervisor.cuda_visible_devices = placement.cuda_visible_devices;
    Hello hello{host_, i, jobs, o.supervisor.threads,
                o.supervisor.cuda_visible_devices.empty()
                    ? "cpu"
                    : "CUDA_VISIBLE_DEVICES=" + o.supervisor.cuda_visible_devices};
    Worker* w = workers_[static_cast<size_t>(i)].get();
    w->thread = std::thread([w, hello, o] {
      try {
        run_worker_loop(*w, hello, o);
      } catch (const std::exception& e) {
        // A broken worker is fatal for the campaign: tell the coordinator, which stops.
        w->send(Stop{fmt::format("local worker {} failed: {}", w->index, e.what())});
      }
    });
  }
}

LocalPool::~LocalPool() { shutdown_all(); }

void LocalPool::shutdown_all() noexcept {
  for (auto& w : workers_) {
    std::lock_guard lock(w->mutex);
    w->inbox.emplace_back(std::in_place_type<Shutdown>);
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

void LocalPool::send(int worker, const Message& message) {
  auto& w = *workers_.at(static_cast<size_t>(worker));
  std::lock_guard lock(w.mutex);
  w.inbox.push_back(message);
}

std::optional<WorkerMessage> LocalPool::receive(std::chrono::milliseconds timeout) {
  std::unique_lock lock(outbox_.mutex);
  if (!outbox_.ready.wait_for(lock, timeout, [&] { return !outbox_.queue.empty(); }))
    return std::nullopt;
  WorkerMessage m = std::move(outbox_.queue.front());
  outbox_.queue.pop_front();
  return m;
}

std::string LocalPool::name(int worker) const {
  return fmt::format("local worker {} on {}", worker, host_);
}

}  // namespace jslds
