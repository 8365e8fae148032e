#include "core/blas_core.h"

#include <dlfcn.h>
#include <strings.h>

#include <cstdlib>

namespace jslds {

namespace {

using CoreNameFn = char* (*)();

std::string core_name(CoreNameFn fn) {
  const char* name = fn != nullptr ? fn() : nullptr;
  return name != nullptr ? std::string(name) : std::string();
}

}  // namespace

BlasCoreChoice choose_blas_core() {
  BlasCoreChoice choice;
#if defined(__x86_64__) || defined(__i386__)
  // Already loaded (jslds-full, a bench program) or loaded now; kept loaded either way.
  void* blas = ::dlopen("libblas.so.3", RTLD_LAZY | RTLD_LOCAL);
  if (blas == nullptr) return choice;
  choice.detected = core_name(reinterpret_cast<CoreNameFn>(::dlsym(blas, "openblas_get_corename")));
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr || ::strcasecmp(choice.detected.c_str(), "Prescott") != 0)
    return choice;
  // GCC's checks include the operating system's support (XGETBV) for the AVX and AVX-512 state.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    choice.forced = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    choice.forced = "Haswell";
#endif
  return choice;
}

std::string set_blas_core_for_children() {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return "";  // the user's choice: nothing to load
  const BlasCoreChoice choice = choose_blas_core();
  if (!choice.forced.empty()) ::setenv("OPENBLAS_CORETYPE", choice.forced.c_str(), 0);
  return choice.forced;
}

std::string loaded_blas_core_name() {
  return core_name(reinterpret_cast<CoreNameFn>(::dlsym(RTLD_DEFAULT, "openblas_get_corename")));
}

std::string loaded_blas_core() {
  const std::string name = loaded_blas_core_name();
  if (name.empty()) return "";
  const char* asked = std::getenv("OPENBLAS_CORETYPE");
  if (asked == nullptr) return "core " + name;
  if (::strcasecmp(asked, name.c_str()) == 0) return "core " + name + " (set by OPENBLAS_CORETYPE)";
  return "core " + name + " (OPENBLAS_CORETYPE=" + asked + ")";
}

}  // namespace jslds
