#include "worker/worker_loop.h"

#include <algorithm>
#include <deque>
#include <thread>

#include <fmt/format.h>

#include "coordinator/idle_backoff.h"
#include "coordinator/signals.h"

namespace jslds {

void run_worker_loop(WorkerChannel& channel, const Hello& hello, WorkerLoopOptions options) {
  using clock = std::chrono::steady_clock;
  Supervisor supervisor(options.supervisor);
  channel.send(hello);

  bool shutdown = false;
  bool signalled = false;
  Progress pending;  // points (and a checkpoint) not yet sent for the current run
  auto last_sent = clock::now();
  IdleBackoff backoff;  // between checks for a task (coordinator/idle_backoff.h)

  auto flush = [&] {
    if (pending.points.empty() && !pending.checkpoint && pending.note.empty()) return;
    channel.send(pending);
    backoff.activity();
    pending.points.clear();
    pending.checkpoint.reset();
    pending.note.clear();
    last_sent = clock::now();
  };

  // A task that arrives while a run is active waits here and starts the moment that run
  // ends (the coordinator hands a worker its next short run early: coordinator.h).
  std::deque<Task> queued;
  auto start = [&](const Task& task) {
    supervisor.start(task);
    pending = Progress{};
    pending.run_id = task.run_id;
    pending.attempt = task.attempt;
    last_sent = clock::now();
  };
  // Answers a task that will not start: `not_started` at the step it would have resumed from.
  auto hand_back = [&](const Task& task, const char* why) {
    Result r;
    r.run_id = task.run_id;
    r.attempt = task.attempt;
    r.outcome = RunOutcome::kNotStarted;
    r.step = task.checkpoint_step;
    r.message = why;
    channel.send(r);
  };
  constexpr const char* kStopping = "the worker is stopping";
  auto hand_back_queued = [&] {
    for (const Task& task : queued) hand_back(task, kStopping);
    queued.clear();
  };

  while (true) {
    bool active = false;
    while (auto message = channel.try_receive()) {
      active = true;
      if (auto* task = std::get_if<Task>(&*message)) {
        if (signalled || shutdown)
          hand_back(*task, kStopping);
        else if (supervisor.busy())
          queued.push_back(std::move(*task));
        else
          start(*task);
      } else if (const auto* withdraw = std::get_if<Withdraw>(&*message)) {
        // Only a task still waiting here goes back; one that has started runs on.
        auto it = std::find_if(queued.begin(), queued.end(), [&](const Task& t) {
          return t.run_id == withdraw->run_id && t.attempt == withdraw->attempt;
        });
        if (it != queued.end()) {
          hand_back(*it, "withdrawn by the coordinator: another worker can start it sooner");
          queued.erase(it);
        }
      } else if (std::holds_alternative<Stop>(*message)) {
        supervisor.stop();
        hand_back_queued();
      } else if (std::holds_alternative<Shutdown>(*message)) {
        shutdown = true;
        supervisor.stop();
        hand_back_queued();
      }
    }
    if (options.react_to_signals && !signalled && StopSignals::requested()) {
      signalled = true;
      channel.send(Stop{fmt::format("{} received by worker on {}",
                                    signal_name(StopSignals::signal_number()), hello.host)});
      supervisor.stop();
      hand_back_queued();
    }
    if (supervisor.busy()) {
      SupervisorUpdate update = supervisor.poll(std::chrono::milliseconds(10));
      for (auto& p : update.points) pending.points.push_back(std::move(p));
      if (update.checkpoint) pending.checkpoint = update.checkpoint;
      if (!update.note.empty()) pending.note = update.note;
      if (update.checkpoint || update.result || !update.note.empty() ||
          clock::now() - last_sent >= options.progress_interval)
        flush();
      if (update.result) {
        channel.send(*update.result);
        if (!queued.empty()) {
          Task next = std::move(queued.front());
          queued.pop_front();
          start(next);
        }
      }
      backoff.activity();
      continue;
    }
    if (shutdown) return;
    if (active) {
      backoff.activity();
      continue;
    }
    backoff.sleep();
  }
}

}  // namespace jslds
