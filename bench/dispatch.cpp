// bench/dispatch: the sweep machinery's own cost (issue 6, "Performance"), printed as one
// JSON object. Everything runs through `mpirun -np 5 jslds sweep` (rank 0 coordinates, 4
// worker ranks), the child chosen through JSLDS_TRAIN_EXE:
//
//   noop:        1,000 runs of the no-op child (bench/noop_child.c: static, writes its result
//                event and exits). Coordinator overhead per run = (4 × busy wall − Σ child
//                lifetimes) / runs, i.e. every cost that is not the child process itself
//                (messages, scheduling, database writes, writing config.toml, the worker's
//                run-directory lock and log, idle gaps); goal ≤ 2 ms. Also runs per second.
//   noop_fake:   the same 1,000 runs with the heavier stand-in trainer (tests/sweep/
//                fake_train.cpp: CLI11, TOML, an fsync'ed result.json; about 15 ms of CPU per
//                start on the development machine). On 2 cores its four children saturate
//                both cores, and the time runs wait for a core counts as overhead.
//   noop1:       300 no-op runs with one worker (mpirun -np 2): the same overhead where five
//                processes do not share two cores.
//   long_cpu:    4 runs of 10-second children (fake_train): rank 0's CPU time over that wall
//                time; goal < 5% of one core.
//   utilisation: 8 runs of 1-second children (fake_train): Σ child lifetimes / (4 × busy
//                wall); goal ≥ 95%.
//
// For comparison: Optuna 3.1 with SQLite storage spends 22.5 ms per trial on bookkeeping on
// a machine of this kind (../shared/reference/README.md, optuna_overhead.py).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "tests/sweep/job.h"

namespace {

using namespace jslds::test;
using json = nlohmann::json;

// One campaign under mpirun -np NP (default 5); returns the coordinator's --stats plus the total wall time.
json campaign(const fs::path& dir, const std::string& name, const std::string& method_and_size,
              int64_t steps, int step_ms, int np = 5, const char* child = JSLDS_FAKE_TRAIN_EXE) {
  const fs::path spec = dir / (name + ".toml");
  std::ofstream(spec) << "[campaign]\nname = \"" << name << "\"\n" << method_and_size
                      << "\n[base]\ndata.simulate = \"oscillator\"\ntrain.steps = " << std::max<int64_t>(steps, 1)
                      << "\ntrain.eval_every = 10\ntrain.checkpoint_every = 1000000\n"
                         "[parameters]\n\"loss.w_fp\" = { distribution = \"uniform\", min = 1.0, "
                         "max = 1000.0 }\n";
  const fs::path stats = dir / (name + ".stats.json");
  auto argv = sweep_command(np, {spec.string(), "--db", (dir / "bench.sqlite").string(), "--stats",
                                stats.string()});
  auto t0 = std::chrono::steady_clock::now();
  jslds::ChildProcess job = start(argv, dir / (name + ".log"),
                                  {{"JSLDS_TRAIN_EXE", child},
                                   {"FAKE_TRAIN_STEPS", std::to_string(steps)},
                                   {"FAKE_TRAIN_STEP_MS", std::to_string(step_ms)}});
  auto status = wait_for(job, std::chrono::seconds(600));
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!status || exit_code(*status) != 0)
    throw std::runtime_error("campaign " + name + " failed:\n" + slurp(dir / (name + ".log")));
  json s = json::parse(slurp(stats));
  s["job_wall_seconds"] = wall;
  return s;
}

}  // namespace

int main() {
  try {
    fs::path dir = test_directory("bench_dispatch");
    const int workers = 4;

    json noop = campaign(dir, "noop", "method = \"random\"\nmax_runs = 1000", 0, 0, 5,
                         JSLDS_NOOP_CHILD_EXE);
    const double runs = noop["runs_finished"].get<double>();
    const double busy = noop["busy_seconds"].get<double>();
    const double child = noop["child_seconds"].get<double>();
    json fake = campaign(dir, "noop_fake", "method = \"random\"\nmax_runs = 1000", 0, 0);
    const double fake_runs = fake["runs_finished"].get<double>();
    // One worker (mpirun -np 2): two ranks and one child, so no process waits for a core.
    json single = campaign(dir, "noop1", "method = \"random\"\nmax_runs = 300", 0, 0, 2,
                           JSLDS_NOOP_CHILD_EXE);
    const double single_runs = single["runs_finished"].get<double>();
    json long_cpu = campaign(dir, "long", "method = \"random\"\nmax_runs = 4", 100, 100);
    json util = campaign(dir, "util", "method = \"random\"\nmax_runs = 8", 10, 100);

    json out = {
        {"benchmark", "dispatch"},
        {"workers", workers},
        {"mpirun_np", workers + 1},
        {"child", "bench/noop_child (static, no files), JSLDS_TRAIN_EXE"},
        {"noop_runs", runs},
        {"noop_runs_done", noop["counts"]["done"]},
        {"noop_busy_seconds", busy},
        {"noop_child_seconds_total", child},
        {"noop_child_ms_mean", 1e3 * child / runs},
        {"coordinator_overhead_ms_per_run", 1e3 * (workers * busy - child) / runs},
        {"runs_per_second", runs / busy},
        {"fake_train_overhead_ms_per_run",
         1e3 * (workers * fake["busy_seconds"].get<double>() - fake["child_seconds"].get<double>()) /
             fake_runs},
        {"fake_train_child_ms_mean", 1e3 * fake["child_seconds"].get<double>() / fake_runs},
        {"fake_train_runs_per_second", fake_runs / fake["busy_seconds"].get<double>()},
        {"one_worker_overhead_ms_per_run",
         1e3 * (single["busy_seconds"].get<double>() - single["child_seconds"].get<double>()) /
             single_runs},
        {"one_worker_child_ms_mean", 1e3 * single["child_seconds"].get<double>() / single_runs},
        {"noop_job_wall_seconds_with_mpirun_startup", noop["job_wall_seconds"]},
        {"noop_coordinator_cpu_ms_per_run", 1e3 * noop["cpu_seconds"].get<double>() / runs},
        {"long_children_seconds_each", long_cpu["child_seconds"].get<double>() / 4},
        {"rank0_cpu_fraction_of_one_core",
         long_cpu["cpu_seconds"].get<double>() / long_cpu["busy_seconds"].get<double>()},
        {"utilisation_1s_children",
         util["child_seconds"].get<double>() / (workers * util["busy_seconds"].get<double>())},
        {"goals", {{"coordinator_overhead_ms_per_run", "<= 2"},
                   {"rank0_cpu_fraction_of_one_core", "< 0.05"},
                   {"utilisation_1s_children", ">= 0.95"}}},
        {"optuna_sqlite_ms_per_trial_published", 22.5},
    };
    std::cout << out.dump() << std::endl;
    fs::remove_all(dir);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench/dispatch: " << e.what() << "\n";
    return 1;
  }
}
