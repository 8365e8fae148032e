#include "coordinator/mpi_pool.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

namespace jslds {

MpiPool::MpiPool(const MpiSession& session) {
  if (session.rank() != 0) throw std::logic_error("MpiPool: only rank 0 coordinates");
  for (int r = 1; r < session.size(); ++r) names_.push_back(fmt::format("rank {}", r));
}

void MpiPool::send(int worker, const Message& message) {
  if (worker < 0 || worker >= size())
    throw std::out_of_range(fmt::format("MpiPool::send: no worker {} (pool of {})", worker, size()));
  mailbox_.send(worker + 1, encode(message));
  backoff_.activity();
}

std::optional<WorkerMessage> MpiPool::receive(std::chrono::milliseconds timeout) {
  using clock = std::chrono::steady_clock;
  const auto end = clock::now() + timeout;
  while (true) {
    if (auto got = mailbox_.try_receive()) {
      backoff_.activity();
      int worker = got->first - 1;
      if (worker < 0 || worker >= size())
        throw ProtocolError(fmt::format("message from rank {}, which is not a worker", got->first));
      Message message = decode(got->second);
      if (const auto* hello = std::get_if<Hello>(&message))
        names_[static_cast<size_t>(worker)] = fmt::format("rank {} on {}", got->first, hello->host);
      return WorkerMessage{worker, std::move(message)};
    }
    auto now = clock::now();
    if (now >= end) return std::nullopt;
    backoff_.sleep(end - now);
  }
}

}  // namespace jslds
