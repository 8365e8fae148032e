#include "coordinator/protocol.h"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace jslds {

namespace {

using json = nlohmann::json;

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// Reads member `name` of `j` as T; throws ProtocolError naming the member otherwise.
template <class T>
T member(const json& j, const char* type, const char* name) {
  auto it = j.find(name);
  if (it == j.end())
    throw ProtocolError(fmt::format("{} message: member '{}' is missing", type, name));
  try {
    return it->get<T>();
  } catch (const json::exception& e) {
    throw ProtocolError(fmt::format("{} message: member '{}' has the wrong type ({}): {}", type,
                                    name, it->type_name(), e.what()));
  }
}

json metrics_json(const std::map<std::string, double>& metrics) {
  json m = json::object();
  for (const auto& [k, v] : metrics)
    if (std::isfinite(v)) m[k] = v;
  return m;
}

json checkpoint_json(const CheckpointInfo& c) {
  return {{"step", c.step}, {"path", c.path}, {"bytes", c.bytes}, {"sha256", c.sha256}};
}

CheckpointInfo checkpoint_from(const json& j) {
  CheckpointInfo c;
  c.step = member<int64_t>(j, "checkpoint", "step");
  c.path = member<std::string>(j, "checkpoint", "path");
  c.bytes = member<int64_t>(j, "checkpoint", "bytes");
  c.sha256 = member<std::string>(j, "checkpoint", "sha256");
  return c;
}

}  // namespace

const char* to_string(RunOutcome outcome) {
  switch (outcome) {
    case RunOutcome::kDone: return "done";
    case RunOutcome::kDiverged: return "diverged";
    case RunOutcome::kFailed: return "failed";
    case RunOutcome::kInterrupted: return "interrupted";
    case RunOutcome::kNotStarted: return "not_started";
  }
  return "failed";
}

RunOutcome run_outcome_from_string(std::string_view text) {
  if (text == "done") return RunOutcome::kDone;
  if (text == "diverged") return RunOutcome::kDiverged;
  if (text == "failed") return RunOutcome::kFailed;
  if (text == "interrupted") return RunOutcome::kInterrupted;
  if (text == "not_started") return RunOutcome::kNotStarted;
  throw ProtocolError(fmt::format(
      "unknown run outcome '{}': expected done, diverged, failed, interrupted or not_started", text));
}

const char* message_type(const Message& message) {
  return std::visit(Overloaded{
                        [](const Hello&) { return "hello"; },
                        [](const Task&) { return "task"; },
                        [](const Progress&) { return "progress"; },
                        [](const Result&) { return "result"; },
                        [](const Stop&) { return "stop"; },
                        [](const Shutdown&) { return "shutdown"; },
                        [](const Withdraw&) { return "withdraw"; },
                    },
                    message);
}

std::string encode(const Message& message) {
  json j = std::visit(
      Overloaded{
          [](const Hello& m) -> json {
            return {{"host", m.host},       {"local_rank", m.local_rank},
                    {"local_size", m.local_size}, {"threads", m.threads},
                    {"device", m.device}};
          },
          [](const Task& m) -> json {
            return {{"run_id", m.run_id},
                    {"run_number", m.run_number},
                    {"attempt", m.attempt},
                    {"epoch", m.epoch},
                    {"run_dir", m.run_dir},
                    {"resume", m.resume},
                    {"checkpoint_sha256", m.checkpoint_sha256},
                    {"checkpoint_step", m.checkpoint_step},
                    {"device", m.device},
                    {"threads", m.threads}};
          },
          [](const Progress& m) -> json {
            json points = json::array();
            for (const auto& p : m.points)
              points.push_back({{"step", p.step}, {"metrics", metrics_json(p.metrics)}});
            json j = {{"run_id", m.run_id}, {"attempt", m.attempt}, {"points", points}};
            if (m.checkpoint) j["checkpoint"] = checkpoint_json(*m.checkpoint);
            if (!m.note.empty()) j["note"] = m.note;
            return j;
          },
          [](const Result& m) -> json {
            return {{"run_id", m.run_id},
                    {"attempt", m.attempt},
                    {"outcome", to_string(m.outcome)},
                    {"step", m.step},
                    {"message", m.message},
                    {"exit_status", m.exit_status},
                    {"term_signal", m.term_signal},
                    {"child_seconds", m.child_seconds},
                    {"report_json", m.report_json}};
          },
          [](const Stop& m) -> json { return {{"reason", m.reason}}; },
          [](const Shutdown&) -> json { return json::object(); },
          [](const Withdraw& m) -> json { return {{"run_id", m.run_id}, {"attempt", m.attempt}}; },
      },
      message);
  j["type"] = message_type(message);
  // Invalid UTF-8 (e.g. a child's garbled stderr in a message) is replaced, never fatal.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Message decode(std::string_view bytes) {
  json j;
  try {
    j = json::parse(bytes);
  } catch (const json::parse_error& e) {
    throw ProtocolError(fmt::format("message is not JSON ({} bytes): {}", bytes.size(), e.what()));
  }
  if (!j.is_object()) throw ProtocolError("message is not a JSON object");
  const auto type = member<std::string>(j, "message", "type");
  const char* t = type.c_str();
  if (type == "hello") {
    Hello m;
    m.host = member<std::string>(j, t, "host");
    m.local_rank = member<int>(j, t, "local_rank");
    m.local_size = member<int>(j, t, "local_size");
    m.threads = member<int>(j, t, "threads");
    m.device = member<std::string>(j, t, "device");
    return m;
  }
  if (type == "task") {
    Task m;
    m.run_id = member<int64_t>(j, t, "run_id");
    m.run_number = member<int64_t>(j, t, "run_number");
    m.attempt = member<int>(j, t, "attempt");
    m.epoch = member<int64_t>(j, t, "epoch");
    m.run_dir = member<std::string>(j, t, "run_dir");
    m.resume = member<bool>(j, t, "resume");
    m.checkpoint_sha256 = member<std::string>(j, t, "checkpoint_sha256");
    m.checkpoint_step = member<int64_t>(j, t, "checkpoint_step");
    m.device = member<std::string>(j, t, "device");
    m.threads = member<int64_t>(j, t, "threads");
    return m;
  }
  if (type == "progress") {
    Progress m;
    m.run_id = member<int64_t>(j, t, "run_id");
    m.attempt = member<int>(j, t, "attempt");
    for (const auto& p : member<json>(j, t, "points")) {
      MetricPoint point;
      point.step = member<int64_t>(p, "progress point", "step");
      point.metrics = member<std::map<std::string, double>>(p, "progress point", "metrics");
      m.points.push_back(std::move(point));
    }
    if (j.contains("checkpoint")) m.checkpoint = checkpoint_from(j["checkpoint"]);
    if (j.contains("note")) m.note = member<std::string>(j, t, "note");
    return m;
  }
  if (type == "result") {
    Result m;
    m.run_id = member<int64_t>(j, t, "run_id");
    m.attempt = member<int>(j, t, "attempt");
    m.outcome = run_outcome_from_string(member<std::string>(j, t, "outcome"));
    m.step = member<int64_t>(j, t, "step");
    m.message = member<std::string>(j, t, "message");
    m.exit_status = member<int>(j, t, "exit_status");
    m.term_signal = member<int>(j, t, "term_signal");
    m.child_seconds = member<double>(j, t, "child_seconds");
    m.report_json = member<std::string>(j, t, "report_json");
    return m;
  }
  if (type == "stop") return Stop{member<std::string>(j, t, "reason")};
  if (type == "shutdown") return Shutdown{};
  if (type == "withdraw") return Withdraw{member<int64_t>(j, t, "run_id"), member<int>(j, t, "attempt")};
  throw ProtocolError(fmt::format(
      "unknown message type '{}': expected hello, task, progress, result, stop, shutdown or "
      "withdraw",
      type));
}

}  // namespace jslds
