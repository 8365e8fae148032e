// The coordinator ↔ worker messages: every type survives encode → decode, and broken
// messages give errors naming what is wrong.
#include "coordinator/protocol.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace jslds {
namespace {

template <class T>
T round_trip(const T& m) {
  Message decoded = decode(encode(m));
  EXPECT_TRUE(std::holds_alternative<T>(decoded)) << encode(m);
  return std::get<T>(decoded);
}

TEST(Protocol, EveryMessageRoundTrips) {
  Hello h{"node17", 2, 4, 8, "1"};
  auto h2 = round_trip(h);
  EXPECT_EQ(h2.host, "node17");
  EXPECT_EQ(h2.local_rank, 2);
  EXPECT_EQ(h2.local_size, 4);
  EXPECT_EQ(h2.threads, 8);
  EXPECT_EQ(h2.device, "1");

  Task t;
  t.run_id = 41;
  t.run_number = 7;
  t.attempt = 2;
  t.epoch = 3;
  t.run_dir = "/scratch/runs/c/7";
  t.resume = true;
  t.checkpoint_sha256 = std::string(64, 'a');
  t.checkpoint_step = 200;
  t.device = "cuda:1";
  t.threads = 4;
  auto t2 = round_trip(t);
  EXPECT_EQ(t2.run_id, 41);
  EXPECT_EQ(t2.run_number, 7);
  EXPECT_EQ(t2.attempt, 2);
  EXPECT_EQ(t2.epoch, 3);
  EXPECT_EQ(t2.run_dir, t.run_dir);
  EXPECT_TRUE(t2.resume);
  EXPECT_EQ(t2.checkpoint_sha256, t.checkpoint_sha256);
  EXPECT_EQ(t2.checkpoint_step, 200);
  EXPECT_EQ(t2.device, "cuda:1");
  EXPECT_EQ(t2.threads, 4);

  Progress p;
  p.run_id = 41;
  p.attempt = 2;
  p.points.push_back({100, {{"val_bps", 0.25}, {"train_loss", 1.5},
                            {"bad", std::numeric_limits<double>::quiet_NaN()}}});
  p.points.push_back({200, {{"val_bps", 0.3}}});
  p.checkpoint = CheckpointInfo{200, "/r/7/checkpoint.pt", 12345, std::string(64, 'b')};
  auto p2 = round_trip(p);
  ASSERT_EQ(p2.points.size(), 2u);
  EXPECT_EQ(p2.points[0].step, 100);
  EXPECT_EQ(p2.points[0].metrics.size(), 2u) << "non-finite values are dropped";
  EXPECT_DOUBLE_EQ(p2.points[0].metrics.at("val_bps"), 0.25);
  EXPECT_DOUBLE_EQ(p2.points[1].metrics.at("val_bps"), 0.3);
  ASSERT_TRUE(p2.checkpoint);
  EXPECT_EQ(p2.checkpoint->step, 200);
  EXPECT_EQ(p2.checkpoint->bytes, 12345);
  EXPECT_EQ(p2.checkpoint->sha256, std::string(64, 'b'));
  Progress no_checkpoint = p;
  no_checkpoint.checkpoint.reset();
  EXPECT_FALSE(round_trip(no_checkpoint).checkpoint);
  EXPECT_EQ(p2.note, "");
  Progress noted = no_checkpoint;
  noted.points.clear();
  noted.note = "adopted checkpoint.pt of step 40";
  EXPECT_EQ(round_trip(noted).note, "adopted checkpoint.pt of step 40");

  Result r;
  r.run_id = 41;
  r.attempt = 2;
  r.outcome = RunOutcome::kFailed;
  r.step = 150;
  r.message = "killed by SIGSEGV";
  r.exit_status = -1;
  r.term_signal = 11;
  r.child_seconds = 12.5;
  r.report_json = R"({"event":"result","status":"done"})";
  auto r2 = round_trip(r);
  EXPECT_EQ(r2.outcome, RunOutcome::kFailed);
  EXPECT_EQ(r2.step, 150);
  EXPECT_EQ(r2.message, r.message);
  EXPECT_EQ(r2.exit_status, -1);
  EXPECT_EQ(r2.term_signal, 11);
  EXPECT_DOUBLE_EQ(r2.child_seconds, 12.5);
  EXPECT_EQ(r2.report_json, r.report_json);

  EXPECT_EQ(round_trip(Stop{"SIGUSR1 on rank 2"}).reason, "SIGUSR1 on rank 2");
  round_trip(Shutdown{});
  auto w = round_trip(Withdraw{41, 3});
  EXPECT_EQ(w.run_id, 41);
  EXPECT_EQ(w.attempt, 3);
}

TEST(Protocol, OutcomeNamesRoundTrip) {
  for (RunOutcome o : {RunOutcome::kDone, RunOutcome::kDiverged, RunOutcome::kFailed,
                       RunOutcome::kInterrupted, RunOutcome::kNotStarted})
    EXPECT_EQ(run_outcome_from_string(to_string(o)), o);
  EXPECT_THROW(run_outcome_from_string("ok"), ProtocolError);
}

void expect_protocol_error(const std::string& bytes, const std::string& needle) {
  try {
    decode(bytes);
    ADD_FAILURE() << "no error for " << bytes;
  } catch (const ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Protocol, BrokenMessagesNameTheProblem) {
  expect_protocol_error("{not json", "not JSON");
  expect_protocol_error("[1,2]", "not a JSON object");
  expect_protocol_error(R"({"run_id":1})", "member 'type' is missing");
  expect_protocol_error(R"({"type":"gossip"})", "unknown message type 'gossip'");
  expect_protocol_error(R"({"type":"stop"})", "stop message: member 'reason' is missing");
  expect_protocol_error(R"({"type":"withdraw","run_id":4})", "withdraw message: member 'attempt' is missing");
  std::string task = encode(Task{});
  task.replace(task.find("\"run_id\":0"), 10, "\"run_id\":\"x\"");
  expect_protocol_error(task, "task message: member 'run_id' has the wrong type");
  std::string result = encode(Result{});
  result.replace(result.find("\"failed\""), 8, "\"great\"");
  expect_protocol_error(result, "unknown run outcome 'great'");
}

TEST(Protocol, InvalidUtf8InAMessageIsReplacedNotFatal) {
  Result r;
  r.message = std::string("log tail: \xff\xfe broken");
  auto r2 = round_trip(r);
  EXPECT_NE(r2.message.find("broken"), std::string::npos);
}

}  // namespace
}  // namespace jslds
