// The run state machine (DESIGN §3): every legal and illegal transition, requeueing of
// interrupted runs on a new epoch, attempts and the retry cap, and the time-limit rule.
#include "coordinator/scheduler.h"

#include <vector>

#include <gtest/gtest.h>

namespace jslds {
namespace {

const std::vector<RunStatus>& kStates = store::all_run_statuses();

ScheduledRun run(int64_t id, RunStatus state = RunStatus::kPending, int attempts = 0,
                 int64_t epoch = 1) {
  return ScheduledRun{id, /*number=*/id, state, attempts, epoch};
}

TEST(Scheduler, FinishAcceptsExactlyTheLegalSuccessorsOfRunning) {
  int accepted = 0;
  for (RunStatus outcome : kStates) {
    Scheduler s({}, /*epoch=*/1);
    s.add(run(1));
    auto lease = s.assign(/*worker=*/0);
    ASSERT_TRUE(lease);
    bool legal = outcome == RunStatus::kDone || outcome == RunStatus::kFailed ||
                 outcome == RunStatus::kDiverged || outcome == RunStatus::kInterrupted ||
                 outcome == RunStatus::kPruned || outcome == RunStatus::kPending;
    if (legal) {
      s.finish(1, 0, lease->attempt, outcome);
      EXPECT_EQ(s.run(1).state, outcome);
      EXPECT_FALSE(s.lease_of(0));
      ++accepted;
    } else {
      EXPECT_THROW(s.finish(1, 0, lease->attempt, outcome), IllegalTransition)
          << store::to_string(outcome);
      EXPECT_EQ(s.run(1).state, RunStatus::kRunning);
    }
  }
  EXPECT_EQ(accepted, 6);
}

TEST(Scheduler, AHandedBackRunIsAssignedAgain) {
  Scheduler s({}, 1);
  s.add(run(1));
  auto a = s.assign(0);
  ASSERT_TRUE(a);
  s.finish(1, 0, a->attempt, RunStatus::kPending);
  auto b = s.assign(1);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->number, 1);
  EXPECT_EQ(b->attempt, 2);
  EXPECT_FALSE(b->resume);
}

TEST(Scheduler, FinalStatesAreNeverAssignedAgain) {
  Scheduler s({/*max_attempts=*/3, /*retry_failed=*/true}, /*epoch=*/2);
  s.add(run(1, RunStatus::kDone, 1));
  s.add(run(2, RunStatus::kPruned, 1));
  EXPECT_FALSE(s.has_runnable());
  EXPECT_TRUE(s.settled());
  EXPECT_FALSE(s.assign(0));
}

TEST(Scheduler, DynamicSchedulingInNumberOrderOneLeasePerWorker) {
  Scheduler s({}, 1);
  for (int64_t id : {3, 1, 2}) s.add(run(id));
  auto a = s.assign(0), b = s.assign(1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->number, 1);
  EXPECT_EQ(b->number, 2);
  EXPECT_THROW(s.assign(0), IllegalTransition);  // worker 0 is busy
  s.finish(1, 0, 1, RunStatus::kDone);
  auto c = s.assign(0);  // the free worker gets the next run at once
  ASSERT_TRUE(c);
  EXPECT_EQ(c->number, 3);
  EXPECT_FALSE(s.assign(2));
  EXPECT_FALSE(s.settled());
  s.finish(2, 1, 1, RunStatus::kDone);
  s.finish(3, 0, 1, RunStatus::kFailed);
  EXPECT_TRUE(s.settled());
  EXPECT_EQ(s.counts().at(RunStatus::kDone), 2);
  EXPECT_EQ(s.counts().at(RunStatus::kFailed), 1);
}

TEST(Scheduler, ABusyWorkerMayHoldTheRunItStartsNextAndNoMore) {
  Scheduler s({}, 1);
  for (int64_t id : {1, 2, 3, 4}) s.add(run(id));
  EXPECT_THROW(s.assign(0, /*max_leases=*/0), std::invalid_argument);
  auto current = s.assign(0);
  auto next = s.assign(0, /*max_leases=*/2);
  ASSERT_TRUE(current && next);
  EXPECT_EQ(next->number, 2);
  EXPECT_EQ(s.run(2).state, RunStatus::kRunning);
  EXPECT_EQ(s.lease_count(0), 2);
  EXPECT_EQ(s.lease_of(0)->number, 1) << "the first lease is the run the worker runs";
  EXPECT_THROW(s.assign(0, 2), IllegalTransition);  // one queued run at most
  EXPECT_THROW(s.assign(0), IllegalTransition);
  EXPECT_EQ(s.leases().size(), 2u);
  EXPECT_EQ(s.queued_lease_of(0)->number, 2);
  EXPECT_EQ(s.lease_of_run(2)->worker, 0);
  // The queued run may end first: handed back before it started, its attempt is undone.
  s.finish(2, 0, next->attempt, RunStatus::kPending, /*started=*/false);
  EXPECT_EQ(s.run(2).attempts, 0);
  EXPECT_EQ(s.lease_of(0)->number, 1);
  EXPECT_EQ(s.lease_count(0), 1);
  EXPECT_FALSE(s.queued_lease_of(0));
  EXPECT_FALSE(s.lease_of_run(2));
  auto again = s.assign(0, 2);  // the lowest pending number again
  ASSERT_TRUE(again);
  EXPECT_EQ(again->number, 2);
  EXPECT_EQ(again->attempt, 1);
  try {
    s.finish(3, 0, 1, RunStatus::kDone);
    ADD_FAILURE() << "a result for a run the worker does not hold was accepted";
  } catch (const IllegalTransition& e) {
    EXPECT_NE(std::string(e.what()).find("which holds run 1 attempt 1 and run 2 attempt 1"),
              std::string::npos)
        << e.what();
  }
  s.finish(1, 0, 1, RunStatus::kDone);
  EXPECT_EQ(s.lease_of(0)->number, 2) << "the queued run is now the current one";
  EXPECT_EQ(s.lease_count(1), 0);
}

TEST(Scheduler, ResultsThatDoNotMatchTheLeaseAreRefused) {
  Scheduler s({}, 1);
  s.add(run(1));
  s.add(run(2));
  auto a = s.assign(0);
  ASSERT_TRUE(a);
  EXPECT_THROW(s.finish(1, /*worker=*/1, a->attempt, RunStatus::kDone), IllegalTransition);
  EXPECT_THROW(s.finish(2, 0, a->attempt, RunStatus::kDone), IllegalTransition);
  EXPECT_THROW(s.finish(1, 0, a->attempt + 1, RunStatus::kDone), IllegalTransition);
  EXPECT_THROW(s.finish(2, 0, 1, RunStatus::kDone), IllegalTransition);  // pending, no lease
  s.finish(1, 0, a->attempt, RunStatus::kDone);
  EXPECT_THROW(s.finish(1, 0, a->attempt, RunStatus::kDone), IllegalTransition);  // twice
}

TEST(Scheduler, StaleRunningRunsBecomeInterruptedAndAreRequeuedFirstOnANewEpoch) {
  Scheduler s({}, /*epoch=*/5);
  s.add(run(1, RunStatus::kPending, 0, 4));
  s.add(run(2, RunStatus::kRunning, 1, 4));  // its coordinator (epoch 4) died
  s.add(run(3, RunStatus::kInterrupted, 1, 3));
  EXPECT_EQ(s.run(2).state, RunStatus::kInterrupted);
  EXPECT_EQ(s.run(2).epoch, 5);
  auto a = s.assign(0), b = s.assign(1), c = s.assign(2);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->number, 2);
  EXPECT_EQ(b->number, 3);
  EXPECT_EQ(c->number, 1);
  // An interrupted run continues from its checkpoint; attempts count every start.
  EXPECT_TRUE(a->resume);
  EXPECT_EQ(a->attempt, 2);
  EXPECT_EQ(a->epoch, 5);
  EXPECT_FALSE(c->resume);
  EXPECT_EQ(c->attempt, 1);
  // A run cannot already be running in the launch's own epoch.
  Scheduler t({}, 5);
  EXPECT_THROW(t.add(run(9, RunStatus::kRunning, 1, 5)), IllegalTransition);
  EXPECT_THROW(t.add(run(9, RunStatus::kRunning, 1, 6)), IllegalTransition);
}

TEST(Scheduler, InterruptedRunsAlwaysResumeWhateverTheirAttempts) {
  Scheduler s({/*max_attempts=*/2, /*retry_failed=*/false}, 1);
  s.add(run(1));
  for (int i = 0; i < 5; ++i) {
    auto l = s.assign(0);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->attempt, i + 1);
    EXPECT_EQ(l->resume, i > 0);
    s.finish(1, 0, l->attempt, RunStatus::kInterrupted);
  }
  EXPECT_EQ(s.run(1).attempts, 5);
  EXPECT_TRUE(s.has_runnable()) << "max_attempts caps retries of failures, not resumes";
}

TEST(Scheduler, FailedRunsAreRetriedOnlyWithRetryFailedUpToMaxAttempts) {
  {
    Scheduler s({/*max_attempts=*/3, /*retry_failed=*/false}, 1);
    s.add(run(1, RunStatus::kFailed, 1));
    s.add(run(2, RunStatus::kDiverged, 1));
    EXPECT_FALSE(s.assign(0));
    EXPECT_TRUE(s.settled());
  }
  Scheduler s({/*max_attempts=*/3, /*retry_failed=*/true}, 1);
  s.add(run(1, RunStatus::kFailed, 1));
  s.add(run(2, RunStatus::kPending));
  auto first = s.assign(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->number, 2) << "pending runs go before retries";
  auto retry = s.assign(1);
  ASSERT_TRUE(retry);
  EXPECT_EQ(retry->number, 1);
  EXPECT_EQ(retry->attempt, 2);
  EXPECT_TRUE(retry->resume) << "a retry of a failed run continues from its checkpoint";
  s.finish(1, 1, 2, RunStatus::kDiverged);
  auto third = s.assign(1);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->attempt, 3);
  EXPECT_FALSE(third->resume) << "a retry of a diverged run starts from scratch";
  s.finish(1, 1, 3, RunStatus::kFailed);
  EXPECT_FALSE(s.assign(1)) << "3 attempts used: the cap";
  EXPECT_EQ(s.run(1).attempts, 3);
  EXPECT_THROW(Scheduler({/*max_attempts=*/0, false}, 1), std::invalid_argument);
}

TEST(Scheduler, TimeLimitStopsStartingRunsThatCannotFinish) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto stop_at = now + minutes(10);
  EXPECT_TRUE(may_start_before(now, stop_at, std::nullopt));
  EXPECT_TRUE(may_start_before(now, stop_at, duration<double>(599)));
  EXPECT_FALSE(may_start_before(now, stop_at, duration<double>(601)));
  EXPECT_FALSE(may_start_before(stop_at, stop_at, std::nullopt));
  DurationEstimate e;
  EXPECT_FALSE(e.mean());
  e.add(100);
  e.add(300);
  e.add(-1);  // ignored
  ASSERT_TRUE(e.mean());
  EXPECT_DOUBLE_EQ(e.mean()->count(), 200.0);
}

}  // namespace
}  // namespace jslds
