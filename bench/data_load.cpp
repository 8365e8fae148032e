// Time to load and bin each shared recording with load_dataset (median of 5 runs after one
// warm-up run that fills the page cache). Prints one JSON object:
//   {"benchmark":"data_load","repeats":5,"files":[{"name":…,"format":…,"options":…,
//    "shape":[B,T,N],"spikes":…,"median_s":…,"min_s":…,"max_s":…}, …]}
// Goal (issue 3): the NWB file loads and bins in under 1 s on the 2-core build machine.
// Usage: data_load [DATA_DIR]   (default: ../shared/data beside the project root)
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/data/loaders.h"

namespace {

nlohmann::json time_load(const std::string& name, const jslds::DataOptions& options,
                         const std::string& description) {
  constexpr int kRepeats = 5;
  jslds::Dataset d = jslds::load_dataset(options);  // warm-up
  std::vector<double> seconds;
  for (int i = 0; i < kRepeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    d = jslds::load_dataset(options);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return {{"name", name},
          {"options", description},
          {"shape", {d.n_trials(), d.n_bins(), d.n_neurons()}},
          {"spikes", d.spikes_btn.sum().item<double>()},
          {"repeats", kRepeats},
          {"median_s", seconds[kRepeats / 2]},
          {"min_s", seconds.front()},
          {"max_s", seconds.back()}};
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : JSLDS_SHARED_DATA_DIR;
  nlohmann::json out = {{"benchmark", "data_load"},
                        {"data_dir", dir.string()},
                        {"hardware_threads", std::thread::hardware_concurrency()},
                        {"files", nlohmann::json::array()}};
  try {
    jslds::DataOptions nwb;
    nwb.path = (dir / "human_mtl_zheng2022_sub4.nwb").string();
    nwb.trials = "intervals/encoding_table";
    nwb.bin_ms = 20;
    out["files"].push_back(time_load("human_mtl_zheng2022_sub4.nwb", nwb,
                                     "trials=intervals/encoding_table bin_ms=20"));
    jslds::DataOptions mat;
    mat.path = (dir / "reach_delay_pmd.mat").string();
    mat.variable = "D";
    mat.condition_field = "condition";
    mat.bin_ms = 20;
    out["files"].push_back(time_load("reach_delay_pmd.mat", mat,
                                     "variable=D field=data condition_field=condition bin_ms=20"));
  } catch (const std::exception& e) {
    out["error"] = e.what();
    std::cout << out.dump() << "\n";
    return 1;
  }
  std::cout << out.dump() << "\n";
  return 0;
}
