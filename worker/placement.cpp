#include "worker/placement.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <unistd.h>

namespace jslds {

std::vector<std::string> visible_gpus() {
  std::vector<std::string> gpus;
  if (const char* env = std::getenv("CUDA_VISIBLE_DEVICES")) {
    std::stringstream ss(env);
    for (std::string item; std::getline(ss, item, ',');) {
      if (item.empty() || item == "-1") break;  // CUDA stops at the first invalid entry
      gpus.push_back(item);
    }
    return gpus;
  }
  for (int i = 0; i < 64; ++i) {
    std::error_code ec;
    if (!std::filesystem::exists("/dev/nvidia" + std::to_string(i), ec)) break;
    gpus.push_back(std::to_string(i));
  }
  return gpus;
}

Placement place_worker(int worker_rank, int workers_on_node, int cores,
                       const std::vector<std::string>& gpus) {
  Placement p;
  workers_on_node = std::max(workers_on_node, 1);
  worker_rank = std::clamp(worker_rank, 0, workers_on_node - 1);
  p.threads = std::max(1, cores / workers_on_node);
  if (!gpus.empty()) p.cuda_visible_devices = gpus[static_cast<size_t>(worker_rank) % gpus.size()];
  return p;
}

int online_cores() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace jslds
