#include "coordinator/scheduler.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace jslds {

Scheduler::Scheduler(SchedulerOptions options, int64_t epoch)
    : options_(options), epoch_(epoch) {
  if (options_.max_attempts < 1)
    throw std::invalid_argument(
        fmt::format("max_attempts = {}: expected at least 1", options_.max_attempts));
}

void Scheduler::add(const ScheduledRun& run) {
  if (runs_.count(run.run_id))
    throw std::invalid_argument(fmt::format("run id {} added twice", run.run_id));
  ScheduledRun r = run;
  if (r.state == RunStatus::kRunning) {
    if (r.epoch >= epoch_)
      throw IllegalTransition(fmt::format(
          "run {} is running in epoch {} before launch epoch {} assigned it", r.number, r.epoch,
          epoch_));
    r.state = RunStatus::kInterrupted;  // its coordinator died: a stale lease
    r.epoch = epoch_;
  }
  runs_.emplace(r.run_id, r);
}

bool Scheduler::runnable(const ScheduledRun& r) const {
  switch (r.state) {
    case RunStatus::kPending:
    case RunStatus::kInterrupted:
      return true;
    case RunStatus::kFailed:
    case RunStatus::kDiverged:
      return options_.retry_failed && r.attempts < options_.max_attempts;
    default:
      return false;
  }
}

int Scheduler::priority(const ScheduledRun& r) const {
  switch (r.state) {
    case RunStatus::kInterrupted: return 0;
    case RunStatus::kPending: return 1;
    default: return 2;
  }
}

std::optional<Lease> Scheduler::assign(int worker, int max_leases) {
  if (max_leases < 1)
    throw std::invalid_argument(fmt::format("max_leases = {}: expected at least 1", max_leases));
  if (lease_count(worker) >= max_leases)
    throw IllegalTransition(fmt::format("worker {} already holds {} run(s) (run {} first)", worker,
                                        lease_count(worker), leases_.lower_bound(worker)->second.number));
  ScheduledRun* best = nullptr;
  for (auto& [id, r] : runs_) {
    if (!runnable(r)) continue;
    if (!best || priority(r) < priority(*best) ||
        (priority(r) == priority(*best) && r.number < best->number))
      best = &r;
  }
  if (!best) return std::nullopt;
  Lease lease;
  lease.run_id = best->run_id;
  lease.number = best->number;
  lease.worker = worker;
  lease.epoch = epoch_;
  // An interrupted run continues from its checkpoint, and so does a retried failed one (a
  // crash, an out-of-memory kill or a full disk should not throw its training away; one
  // that failed before its first checkpoint starts from step 0 all the same). A diverged run
  // starts afresh: continuing would repeat the divergence.
  lease.resume = best->attempts > 0 && (best->state == RunStatus::kInterrupted ||
                                        best->state == RunStatus::kFailed);
  lease.attempt = ++best->attempts;
  best->state = RunStatus::kRunning;
  best->epoch = epoch_;
  leases_.emplace(worker, lease);  // after the worker's other lease: a multimap keeps order
  return lease;
}

void Scheduler::finish(int64_t run_id, int worker, int attempt, RunStatus outcome, bool started) {
  auto [first, last] = leases_.equal_range(worker);
  auto it = std::find_if(first, last, [&](const auto& entry) {
    return entry.second.run_id == run_id && entry.second.attempt == attempt;
  });
  if (it == last) {
    std::vector<std::string> held;
    for (auto h = first; h != last; ++h)
      held.push_back(fmt::format("run {} attempt {}", h->second.number, h->second.attempt));
    throw IllegalTransition(fmt::format("result for run id {} attempt {} from worker {}, which holds {}",
                                        run_id, attempt, worker,
                                        held.empty() ? std::string("no run")
                                                     : fmt::format("{}", fmt::join(held, " and "))));
  }
  ScheduledRun& r = runs_.at(run_id);
  if (!store::is_legal_transition(r.state, outcome))
    throw IllegalTransition(fmt::format("run {}: {} → {} is not a legal transition", r.number,
                                        store::to_string(r.state), store::to_string(outcome)));
  r.state = outcome;
  if (!started) --r.attempts;
  leases_.erase(it);
}

bool Scheduler::has_runnable() const {
  for (const auto& [id, r] : runs_)
    if (runnable(r)) return true;
  return false;
}

int Scheduler::runnable_count() const {
  int n = 0;
  for (const auto& [id, r] : runs_) n += runnable(r) ? 1 : 0;
  return n;
}

std::optional<Lease> Scheduler::lease_of(int worker) const {
  auto it = leases_.lower_bound(worker);
  if (it == leases_.end() || it->first != worker) return std::nullopt;
  return it->second;
}

std::optional<Lease> Scheduler::queued_lease_of(int worker) const {
  auto [first, last] = leases_.equal_range(worker);
  if (first == last || std::next(first) == last) return std::nullopt;
  return std::next(first)->second;
}

std::optional<Lease> Scheduler::lease_of_run(int64_t run_id) const {
  for (const auto& [w, l] : leases_)
    if (l.run_id == run_id) return l;
  return std::nullopt;
}

std::vector<Lease> Scheduler::leases() const {
  std::vector<Lease> out;
  for (const auto& [w, l] : leases_) out.push_back(l);
  return out;
}

std::map<RunStatus, int> Scheduler::counts() const {
  std::map<RunStatus, int> out;
  for (const auto& [id, r] : runs_) ++out[r.state];
  return out;
}

const ScheduledRun& Scheduler::run(int64_t run_id) const {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) throw std::out_of_range(fmt::format("no run with id {}", run_id));
  return it->second;
}

bool may_start_before(std::chrono::system_clock::time_point now,
                      std::chrono::system_clock::time_point stop_at,
                      std::optional<std::chrono::duration<double>> estimate) {
  if (now >= stop_at) return false;
  if (!estimate) return true;
  return now + std::chrono::duration_cast<std::chrono::system_clock::duration>(*estimate) <=
         stop_at;
}

void DurationEstimate::add(double seconds) {
  if (!(seconds >= 0)) return;
  sum_ += seconds;
  ++count_;
}

std::optional<std::chrono::duration<double>> DurationEstimate::mean() const {
  if (count_ == 0) return std::nullopt;
  return std::chrono::duration<double>(sum_ / count_);
}

}  // namespace jslds
