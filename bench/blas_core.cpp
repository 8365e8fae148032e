// bench/blas_core: which OpenBLAS kernel set this machine gets (core/blas_core.h), as one JSON
// object: {"detected": OpenBLAS's own choice, "forced": what `jslds` sets OPENBLAS_CORETYPE to,
// "" for nothing}. bench/run_all.sh sets the same OPENBLAS_CORETYPE for every benchmark, ours
// and the reference's, so that they are timed with the kernels `jslds` runs with.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/blas_core.h"

int main() {
  const jslds::BlasCoreChoice choice = jslds::choose_blas_core();
  std::printf("%s\n", nlohmann::json{{"detected", choice.detected}, {"forced", choice.forced}}.dump().c_str());
  return 0;
}
