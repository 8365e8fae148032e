#include "coordinator/scheduler.h"

#include <fmt/format.h>

namespace jslds {

namespace {

constexpr RunState kAllStates[] = {RunState::kPending,  RunState::kRunning,
                                   RunState::kDone,     RunState::kFailed,
                                   RunState::kDiverged, RunState::kInterrupted,
                                   RunState::kPruned};

}  // namespace

const char* to_string(RunState state) {
  switch (state) {
    case RunState::kPending: return "pending";
    case RunState::kRunning: return "running";
    case RunState::kDone: return "done";
    case RunState::kFailed: return "failed";
    case RunState::kDiverged: return "diverged";
    case RunState::kInterrupted: return "interrupted";
    case RunState::kPruned: return "pruned";
  }
  return "?";
}

RunState run_state_from_string(std::string_view text) {
  for (RunState s : kAllStates)
    if (text == to_string(s)) return s;
  throw std::invalid_argument(fmt::format(
      "unknown run state '{}': expected pending, running, done, failed, diverged, interrupted "
      "or pruned",
      text));
}

bool is_legal_transition(RunState from, RunState to) {
  switch (from) {
    case RunState::kPending:
    case RunState::kInterrupted:
    case RunState::kFailed:
    case RunState::kDiverged:
      return to == RunState::kRunning;
    case RunState::kRunning:
      return to == RunState::kDone || to == RunState::kFailed || to == RunState::kDiverged ||
             to == RunState::kInterrupted || to == RunState::kPruned;
    case RunState::kDone:
    case RunState::kPruned:
      return false;
  }
  return false;
}

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
  if (r.state == RunState::kRunning) {
    if (r.epoch >= epoch_)
      throw IllegalTransition(fmt::format(
          "run {} is running in epoch {} before launch epoch {} assigned it", r.number, r.epoch,
          epoch_));
    r.state = RunState::kInterrupted;  // its coordinator died: stale lease
    r.epoch = epoch_;
  }
  runs_.emplace(r.run_id, r);
}

bool Scheduler::runnable(const ScheduledRun& r) const {
  switch (r.state) {
    case RunState::kPending:
    case RunState::kInterrupted:
      return true;
    case RunState::kFailed:
    case RunState::kDiverged:
      return options_.retry_failed && r.attempts < options_.max_attempts;
    default:
      return false;
  }
}

int Scheduler::priority(const ScheduledRun& r) const {
  switch (r.state) {
    case RunState::kInterrupted: return 0;
    case RunState::kPending: return 1;
    default: return 2;
  }
}

std::optional<Lease> Scheduler::assign(int worker) {
  if (leases_.count(worker))
    throw IllegalTransition(fmt::format("worker {} already runs run {}", worker,
                                        leases_.at(worker).number));
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
  lease.resume = best->state == RunState::kInterrupted && best->attempts > 0;
  if (!lease.resume) ++best->attempts;  // a fresh start or a retry is a new attempt
  lease.attempt = best->attempts;
  best->state = RunState::kRunning;
  best->epoch = epoch_;
  leases_.emplace(worker, lease);
  return lease;
}

void Scheduler::finish(int64_t run_id, int worker, int attempt, RunState outcome) {
  auto it = leases_.find(worker);
  if (it == leases_.end() || it->second.run_id != run_id || it->second.attempt != attempt)
    throw IllegalTransition(fmt::format(
        "result for run id {} attempt {} from worker {}, which holds {}", run_id, attempt,
        worker,
        it == leases_.end() ? std::string("no run")
                            : fmt::format("run {} attempt {}", it->second.number,
                                          it->second.attempt)));
  ScheduledRun& r = runs_.at(run_id);
  if (!is_legal_transition(r.state, outcome))
    throw IllegalTransition(fmt::format("run {}: {} → {} is not a legal transition", r.number,
                                        to_string(r.state), to_string(outcome)));
  r.state = outcome;
  leases_.erase(it);
}

bool Scheduler::has_runnable() const {
  for (const auto& [id, r] : runs_)
    if (runnable(r)) return true;
  return false;
}

std::optional<Lease> Scheduler::lease_of(int worker) const {
  auto it = leases_.find(worker);
  if (it == leases_.end()) return std::nullopt;
  return it->second;
}

std::vector<Lease> Scheduler::leases() const {
  std::vector<Lease> out;
  for (const auto& [w, l] : leases_) out.push_back(l);
  return out;
}

std::map<RunState, int> Scheduler::counts() const {
  std::map<RunState, int> out;
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
