// Where a worker's children compute (DESIGN §2): intra-op threads = cores on the node /
// workers on the node; with runtime.device = "auto" and GPUs present, GPU local_rank mod
// n_gpus through CUDA_VISIBLE_DEVICES.
#pragma once

#include <string>
#include <vector>

namespace jslds {

struct Placement {
  int threads = 1;                   // intra-op threads per child, >= 1
  std::string cuda_visible_devices;  // the one GPU for `device = auto`; empty: no GPU
};

/// The GPUs this process may use: the entries of CUDA_VISIBLE_DEVICES when it is set ("" or
/// "-1" → none), else /dev/nvidia0, /dev/nvidia1, … as "0", "1", …
std::vector<std::string> visible_gpus();

/// Pure: `worker_rank` in [0, workers_on_node), `cores` online CPUs of the node.
Placement place_worker(int worker_rank, int workers_on_node, int cores,
                       const std::vector<std::string>& gpus);

/// Online CPUs of this node (sysconf(_SC_NPROCESSORS_ONLN)), at least 1.
int online_cores();

}  // namespace jslds
