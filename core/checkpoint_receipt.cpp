#include "core/checkpoint_receipt.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/config.h"

namespace jslds {

namespace fs = std::filesystem;

fs::path checkpoint_receipt_path(const fs::path& run_dir) { return run_dir / "checkpoint.json"; }

void write_checkpoint_receipt(const fs::path& run_dir, const CheckpointReceipt& r) {
  const fs::path file = checkpoint_receipt_path(run_dir);
  nlohmann::json j = {{"step", r.step}, {"path", r.path}, {"bytes", r.bytes}, {"sha256", r.sha256}};
  if (!r.state_sha256.empty()) j["state_sha256"] = r.state_sha256;
  try {
    write_file_atomically(file, j.dump() + "\n");
  } catch (const FileWriteError& e) {
    throw std::runtime_error(
        fmt::format("cannot write the checkpoint receipt {}: {}", file.string(), e.problem()));
  }
}

std::optional<CheckpointReceipt> read_checkpoint_receipt(const fs::path& run_dir) {
  std::ifstream in(checkpoint_receipt_path(run_dir), std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  auto integer = [&](const char* key) -> std::optional<int64_t> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) return std::nullopt;
    return it->get<int64_t>();
  };
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto step = integer("step"), bytes = integer("bytes");
  auto path = text("path"), sha = text("sha256");
  if (!step || !bytes || !path || !sha) return std::nullopt;
  // A plain file name: a receipt can only vouch for a file of its own run directory.
  if (path->empty() || fs::path(*path).filename().string() != *path || *path == "." ||
      *path == "..")
    return std::nullopt;
  auto is_sha = [](const std::string& h) {
    return h.size() == 64 && h.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  if (!is_sha(*sha)) return std::nullopt;
  std::string state_sha;
  if (j.contains("state_sha256")) {
    auto state = text("state_sha256");
    if (!state || !is_sha(*state)) return std::nullopt;
    state_sha = *state;
  }
  return CheckpointReceipt{*step, *path, *bytes, *sha, state_sha};
}

std::string file_sha256(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  // Streamed: a checkpoint may be large, and is hashed on every resume.
  Sha256 h;
  std::vector<char> buffer(1 << 16);
  while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0)
    h.update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
  if (in.bad()) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  return h.hex_digest();
}

fs::path staged_checkpoint_path(const fs::path& file) {
  fs::path staged = file;
  staged += ".next";
  return staged;
}

namespace {

constexpr const char* kCheckpointFile = "checkpoint.pt";
constexpr const char* kStateFile = "train_state.pt";
// The files a publication stages (the trainer's receipts always name checkpoint.pt).
constexpr const char* kPublishedFiles[] = {kCheckpointFile, kStateFile};
// Files whose interrupted writes leave NAME.tmp.PID behind (the receipt is one of them).
constexpr const char* kAtomicallyWrittenFiles[] = {kCheckpointFile, kStateFile, "checkpoint.json"};

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("cannot rename {} to {}: {}", from.string(), to.string(), ec.message()));
}

// True when NAME is FILE.tmp.PID or FILE.next.tmp.PID for a process that no longer exists.
bool is_dead_writers_temporary(const std::string& name, const std::string& file) {
  for (const std::string& prefix : {file + ".tmp.", file + ".next.tmp."}) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos)
      return false;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
  }
  return false;
}

}  // namespace

void publish_staged_checkpoint(const fs::path& run_dir, const CheckpointReceipt& r) {
  write_checkpoint_receipt(run_dir, r);  // the commit point
  if (!r.state_sha256.empty())
    rename_or_throw(staged_checkpoint_path(run_dir / kStateFile), run_dir / kStateFile);
  rename_or_throw(staged_checkpoint_path(run_dir / r.path), run_dir / r.path);
  fsync_directory(run_dir);
}

std::string recover_checkpoint_publication(const fs::path& run_dir) {
  const auto receipt = read_checkpoint_receipt(run_dir);
  std::vector<std::string> removed_temporaries;
  std::error_code ec;
  for (fs::directory_iterator it(run_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    for (const std::string file : kAtomicallyWrittenFiles) {
      if (is_dead_writers_temporary(name, file)) {
        std::error_code ignored;
        if (fs::remove(it->path(), ignored)) removed_temporaries.push_back(name);
      }
    }
  }

  struct Staged {
    fs::path staged, target;
    std::string expected;  // the receipt's sha256 for it; empty: not vouched for
  };
  std::vector<Staged> staged;
  for (const std::string file : kPublishedFiles) {
    const fs::path next = staged_checkpoint_path(run_dir / file);
    if (!fs::exists(fs::symlink_status(next, ec))) continue;
    std::string expected;
    if (receipt && file == kCheckpointFile && receipt->path == kCheckpointFile) expected = receipt->sha256;
    if (receipt && file == kStateFile) expected = receipt->state_sha256;
    staged.push_back({next, run_dir / file, expected});
  }
  std::string note;
  if (!removed_temporaries.empty())
    note = fmt::format("removed temporary files of an interrupted checkpoint write ({})",
                       fmt::join(removed_temporaries, ", "));
  if (staged.empty()) return note;

  bool vouched = true;
  for (const Staged& s : staged) {
    std::string found;
    try {
      found = fs::is_regular_file(s.staged) ? file_sha256(s.staged) : "";
    } catch (const std::runtime_error&) {
      found = "";
    }
    if (s.expected.empty() || found != s.expected) vouched = false;
  }
  std::vector<std::string> names;
  for (const Staged& s : staged) names.push_back(s.staged.filename().string());
  if (!note.empty()) note += "; ";
  if (vouched) {
    for (const Staged& s : staged) rename_or_throw(s.staged, s.target);
    fsync_directory(run_dir);
    note += fmt::format("completed the publication of the step-{} checkpoint that a crash "
                        "interrupted after its receipt was written ({} renamed into place)",
                        receipt->step, fmt::join(names, " and "));
  } else {
    for (const Staged& s : staged) {
      std::error_code rm;
      fs::remove_all(s.staged, rm);
      if (rm)
        throw std::runtime_error(fmt::format("cannot remove the unfinished checkpoint file {}: {}",
                                             s.staged.string(), rm.message()));
    }
    fsync_directory(run_dir);
    note += fmt::format("removed an unfinished checkpoint ({}) that a crash interrupted before "
                        "its receipt was written; the previous checkpoint stays",
                        fmt::join(names, " and "));
  }
  return note;
}

}  // namespace jslds
