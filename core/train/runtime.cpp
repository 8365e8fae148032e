#include "core/train/runtime.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/blas_core.h"

namespace jslds {

bool tune_malloc() {
  const bool mmap_ok = ::mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  const bool trim_ok = ::mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1;
  return mmap_ok && trim_ok;
}

int configure_threads(int64_t requested) {
  int threads = static_cast<int>(requested);
  if (threads <= 0) {
    threads = 0;
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (end != env && *end == '\0' && v > 0) threads = static_cast<int>(v);
    }
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  at::set_num_threads(threads);
  // OpenBLAS sizes its own pool at load time from the environment; tell it too when it is the
  // BLAS in use (looked up at run time: the BLAS is a system alternative, not a link dependency).
  using SetThreads = void (*)(int);
  if (auto* set_blas_threads = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_blas_threads(threads);
  }
  return at::get_num_threads();
}

c10::Device select_device(const std::string& spec) {
  if (spec == "cpu") return c10::Device(c10::DeviceType::CPU);
  const bool cuda = torch::cuda::is_available();
  if (spec == "auto") return cuda ? c10::Device(c10::DeviceType::CUDA, 0) : c10::Device(c10::DeviceType::CPU);
  if (spec.rfind("cuda", 0) == 0) {
    if (!cuda) {
      throw std::invalid_argument("runtime.device = \"" + spec +
                                  "\" but CUDA is not available (this LibTorch has no CUDA support or no GPU is "
                                  "visible); use \"auto\" or \"cpu\"");
    }
    int64_t index = 0;
    if (spec.size() > 4) {
      if (spec[4] != ':' || spec.size() == 5 || spec.find_first_not_of("0123456789", 5) != std::string::npos) {
        throw std::invalid_argument("runtime.device = \"" + spec + "\": expected cuda or cuda:K with K an integer");
      }
      index = std::stoll(spec.substr(5));
    }
    const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
    if (index >= count) {
      throw std::invalid_argument("runtime.device = \"" + spec + "\" but only " + std::to_string(count) +
                                  " CUDA device(s) are visible");
    }
    return c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("runtime.device = \"" + spec + "\": expected auto, cpu, cuda or cuda:K");
}

namespace {

std::string blas_file() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::string found = "unknown";
  while (std::getline(maps, line)) {
    const auto slash = line.rfind('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(line.find('/'));
    if (path.find("openblas") != std::string::npos) {
      // e.g. /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
      const auto dir_end = path.rfind('/');
      const auto dir_start = path.rfind('/', dir_end - 1);
      return path.substr(dir_start + 1, dir_end - dir_start - 1) + " (" + path + ")";
    }
    if (path.find("libblas.so") != std::string::npos || path.find("libmkl") != std::string::npos) found = path;
  }
  return found;
}

}  // namespace

std::string blas_library() {
  std::string out = blas_file();
  const std::string core = loaded_blas_core();
  if (core.empty()) return out;
  out += ", " + core;
  // jslds-full started directly, not through jslds, on a CPU this OpenBLAS does not know.
  if (const BlasCoreChoice choice = choose_blas_core(); !choice.forced.empty())
    out += fmt::format(" (this OpenBLAS does not know the CPU: OPENBLAS_CORETYPE={}, which `jslds` sets, makes "
                       "training up to about twice as fast)",
                       choice.forced);
  return out;
}

}  // namespace jslds
