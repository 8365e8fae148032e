#include "worker/mpi_worker.h"

#include <fmt/format.h>

#include "worker/placement.h"

namespace jslds {

namespace {

class MpiChannel : public WorkerChannel {
 public:
  void send(const Message& message) override { mailbox_.send(0, encode(message)); }
  std::optional<Message> try_receive() override {
    auto got = mailbox_.try_receive();
    if (!got) return std::nullopt;
    if (got->first != 0)
      throw ProtocolError(fmt::format("worker got a message from rank {}, not rank 0", got->first));
    return decode(got->second);
  }
  bool flush(double seconds) { return mailbox_.flush(seconds); }

 private:
  MpiMailbox mailbox_;
};

}  // namespace

void run_mpi_worker(const MpiSession& session, const NodeLayout& layout,
                    WorkerLoopOptions options) {
  Placement placement = place_worker(layout.worker_rank(), layout.workers_on_node(),
                                     online_cores(), visible_gpus());
  if (options.supervisor.threads == 0) options.supervisor.threads = placement.threads;
  if (options.supervisor.cuda_visible_devices.empty())
    options.supervisor.cuda_visible_devices = placement.cuda_visible_devices;
  options.react_to_signals = true;

  Hello hello;
  hello.host = layout.host;
  hello.local_rank = layout.worker_rank();
  hello.local_size = layout.workers_on_node();
  hello.threads = options.supervisor.threads;
  hello.device = options.supervisor.cuda_visible_devices.empty()
                     ? "cpu"
                     : "CUDA_VISIBLE_DEVICES=" + options.supervisor.cuda_visible_devices;
  MpiChannel channel;
  run_worker_loop(channel, hello, options);
  channel.flush(5.0);  // the last Result must leave before MPI_Finalize
}

}  // namespace jslds
