// Process-level runtime settings of a training or benchmark process: the allocator, the
// intra-op thread count and the device (DESIGN §2, STYLE.md Known hazards).
#pragma once

#include <cstdint>
#include <string>

#include <c10/core/Device.h>

namespace jslds {

/// Raises glibc's mmap threshold (32 MiB) and trim threshold (1 GiB) so that the
/// few-hundred-KiB blocks tensors use are reused instead of being returned to the kernel and
/// faulted in again at every op (measured: up to 2× on these workloads). Call once at
/// start-up. Returns true when glibc accepted both settings.
bool tune_malloc();

/// Sets Torch's intra-op threads: `requested` > 0 as given; 0 = automatic: OMP_NUM_THREADS
/// when set to a positive integer (the worker sets it per child), else the hardware
/// concurrency. Returns the number in effect.
int configure_threads(int64_t requested);

/// Resolves runtime.device: "cpu"; "cuda" / "cuda:K" (throws std::invalid_argument when no
/// such CUDA device is usable in this build/machine); "auto" = cuda:0 when CUDA is available,
/// else the CPU.
c10::Device select_device(const std::string& spec);

/// One line naming the BLAS library mapped into this process (e.g. "openblas-openmp (PATH)"),
/// OpenBLAS's kernel set ("core SkylakeX") and, when OpenBLAS fell back to its slow Prescott
/// kernels on a CPU that supports more, the OPENBLAS_CORETYPE to set (core/blas_core.h); for
/// logs and benchmark JSON.
std::string blas_library();

}  // namespace jslds
