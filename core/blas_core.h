// OpenBLAS's kernel choice on CPUs newer than the library. Free of LibTorch: the `jslds`
// front end (cli/db_main.cpp) uses it before it execs jslds-full.
#pragma once

#include <string>

namespace jslds {

/// OpenBLAS chooses its kernels by CPU model when it starts, and falls back to its SSE3
/// "Prescott" set for a model it does not know. Debian 12's OpenBLAS 0.3.21 does not know, for
/// example, Intel's Xeon 5th generation (family 6, model 207): LibTorch's matrix products, and
/// with them training, then run at about half the speed the CPU allows. OpenBLAS takes the
/// kernel set from the environment variable OPENBLAS_CORETYPE instead when it is set at its
/// start (OpenBLAS README, "DYNAMIC_ARCH"), which is why this must run before LibTorch loads.
struct BlasCoreChoice {
  std::string detected;  // OpenBLAS's own choice ("Prescott", "Haswell", …); "" when not OpenBLAS
  std::string forced;    // the kernel set to ask for instead; "" to leave OpenBLAS's choice
};

/// The choice for this machine. `detected` comes from openblas_get_corename() of the BLAS that
/// libblas.so.3 resolves to (loaded with dlopen if this process has not loaded it). `forced`
/// is non-empty only when OpenBLAS fell back to Prescott, OPENBLAS_CORETYPE is unset, and the
/// CPU and operating system support more: "SkylakeX" with AVX-512 F, BW, DQ and VL, else
/// "Haswell" with AVX2 and FMA. Never throws (no OpenBLAS: both empty).
BlasCoreChoice choose_blas_core();

/// Sets OPENBLAS_CORETYPE to choose_blas_core().forced when that is non-empty, for the
/// programs this process execs or starts afterwards (not for an OpenBLAS already loaded here).
/// Returns the value set, "" for none.
std::string set_blas_core_for_children();

/// A description of the loaded OpenBLAS's kernel set for logs, e.g. "core SkylakeX (set by
/// OPENBLAS_CORETYPE)", "core SkylakeX (OPENBLAS_CORETYPE=Banana)" when the variable names
/// something else, or "core Prescott"; "" when no OpenBLAS is loaded in this process.
std::string loaded_blas_core();

/// The loaded OpenBLAS's kernel set, e.g. "SkylakeX"; "" when no OpenBLAS is loaded.
std::string loaded_blas_core_name();

}  // namespace jslds
