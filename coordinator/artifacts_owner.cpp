#include "coordinator/artifacts_owner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace jslds {

namespace fs = std::filesystem;

namespace {

std::string ways_out(const fs::path& dir) {
  return fmt::format(
      "two databases must not share run directories: give this launch another --artifacts "
      "folder (runs of earlier launches keep theirs), or move or remove {} if its runs are not "
      "wanted",
      dir.string());
}

std::string describe(const CampaignOwner& o) {
  return o.created_at
             ? fmt::format("campaign '{}' created at {} in {}", o.campaign, *o.created_at,
                           o.database)
             : fmt::format("campaign '{}', new in {}", o.campaign, o.database);
}

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return a == b || fs::equivalent(a, b, ec);
}

}  // namespace

fs::path artifacts_marker_path(const fs::path& dir) { return dir / "campaign.json"; }

std::optional<CampaignOwner> read_artifacts_marker(const fs::path& dir) {
  std::ifstream in(artifacts_marker_path(dir), std::ios::binary);
  if (!in) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("campaign") || !j["campaign"].is_string() ||
      !j.contains("created_at") || !j["created_at"].is_string())
    return std::nullopt;
  CampaignOwner o;
  o.campaign = j["campaign"].get<std::string>();
  o.created_at = j["created_at"].get<std::string>();
  if (j.contains("database") && j["database"].is_string())
    o.database = j["database"].get<std::string>();
  return o;
}

std::optional<std::string> artifacts_refusal(const fs::path& dir, const std::string& text,
                                             const CampaignOwner& owner, bool holds_own_runs,
                                             bool* outdated) {
  std::error_code ec;
  const fs::path marker = artifacts_marker_path(dir);
  if (!text.empty()) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("campaign") || !j["campaign"].is_string() ||
        !j.contains("created_at") || !j["created_at"].is_string())
      return fmt::format(
          "{}: not a readable owner marker (expected a JSON object with \"campaign\" and "
          "\"created_at\" strings), so it is unknown which campaign owns {}: if they are this "
          "campaign's runs, remove the marker and launch again (it is written anew); otherwise {}",
          marker.string(), dir.string(), ways_out(dir));
    const std::string campaign = j["campaign"].get<std::string>();
    const std::string created_at = j["created_at"].get<std::string>();
    const std::string database =
        j.contains("database") && j["database"].is_string() ? j["database"].get<std::string>()
                                                             : std::string();
    if (campaign == owner.campaign && owner.created_at && created_at == *owner.created_at) {
      if (database.empty() || same_file(database, owner.database)) return std::nullopt;  // ours
      if (!fs::exists(database, ec)) {  // ours, the database moved or renamed: name it anew
        if (outdated) *outdated = true;
        return std::nullopt;
      }
      return fmt::format(
          "run directories {} belong to campaign '{}' of {} (marker {}), which still exists; "
          "this launch's database {} holds a campaign created at the same time, a copy of it: "
          "resuming the copy would train the original's runs again in place. Launch the "
          "original: a copy cannot continue while the original exists, whatever --artifacts "
          "says, since its runs are recorded in these directories (to continue the campaign "
          "elsewhere, move the database and its run-directory folder together instead of "
          "copying them)",
          dir.string(), campaign, database, marker.string(), owner.database);
    }
    if (!database.empty() && same_file(database, owner.database))
      return fmt::format(
          "run directories {} belong to campaign '{}' created at {} (marker {}), but this "
          "database ({}) now holds {}: the database was replaced since, and its runs are "
          "not this campaign's. {}",
          dir.string(), campaign, created_at, marker.string(), owner.database,
          owner.created_at ? fmt::format("a campaign '{}' created at {}", owner.campaign,
                                         *owner.created_at)
                           : fmt::format("no campaign '{}' yet", owner.campaign),
          "Give this launch another --artifacts folder, or move or remove " + dir.string() +
              " if its runs are not wanted");
    return fmt::format(
        "run directories {} belong to campaign '{}' created at {} in {} (marker {}), not to "
        "this launch's {}; {}",
        dir.string(), campaign, created_at,
        database.empty() ? std::string("another database") : database, marker.string(),
        describe(owner), ways_out(dir));
  }
  if (holds_own_runs) return std::nullopt;  // a folder made before markers, with its runs
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename() != "campaign.json")
      return fmt::format(
          "run directories {} already hold files ({} and maybe more) that are not this "
          "launch's {}: they belong to a campaign of the same name in another database, or to "
          "one whose database was removed; {}",
          dir.string(), it->path().filename().string(), describe(owner), ways_out(dir));
  return std::nullopt;
}

ArtifactsClaim::ArtifactsClaim(const fs::path& dir, const CampaignOwner& owner, bool create,
                               bool holds_own_runs)
    : dir_(dir), owner_(owner) {
  std::error_code ec;
  if (!create && !fs::is_directory(dir, ec)) return;
  fs::create_directories(dir, ec);
  if (ec)
    throw ArtifactsConflict(fmt::format(
        "cannot create the run-directory folder {}: {}; give another --artifacts folder",
        dir.string(), ec.message()));
  const fs::path marker = artifacts_marker_path(dir);
  // A refused launch removes the empty marker it created, so the file locked may be gone by
  // the time the lock is ours: lock, then make sure it is still the marker (else open again).
  bool created = false;
  for (;;) {
    fd_ = ::open(marker.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    created = fd_ >= 0;
    if (!created && errno == EEXIST) fd_ = ::open(marker.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
      if (errno == ENOENT) continue;  // removed between the two opens
      throw ArtifactsConflict(fmt::format("cannot open {}: {}; give another --artifacts folder",
                                          marker.string(), std::strerror(errno)));
    }
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
    // Without flock (some network file systems) the check still runs, unprotected from a
    // simultaneous launch.
    struct stat locked {}, named {};
    if (::fstat(fd_, &locked) == 0 && ::stat(marker.c_str(), &named) == 0 &&
        locked.st_dev == named.st_dev && locked.st_ino == named.st_ino)
      break;
    ::close(fd_);
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::pread(fd_, buf, sizeof buf, static_cast<off_t>(text.size()))) > 0)
    text.append(buf, static_cast<size_t>(n));
  if (n < 0) {
    const std::string error = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    throw ArtifactsConflict(fmt::format("cannot read {}: {}", marker.string(), error));
  }
  if (auto why = artifacts_refusal(dir, text, owner, holds_own_runs, &outdated_)) {
    // The empty marker this check made goes (never one another launch has written since).
    if (created && text.empty()) ::unlink(marker.c_str());
    ::close(fd_);
    fd_ = -1;
    throw ArtifactsConflict(*why);
  }
  empty_ = text.empty();
}

ArtifactsClaim::ArtifactsClaim(ArtifactsClaim&& other) noexcept
    : dir_(std::move(other.dir_)),
      owner_(std::move(other.owner_)),
      fd_(other.fd_),
      empty_(other.empty_),
      outdated_(other.outdated_) {
  other.fd_ = -1;
}

ArtifactsClaim::~ArtifactsClaim() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

void ArtifactsClaim::claim(const std::string& created_at) {
  if (fd_ < 0 || !(empty_ || outdated_)) return;
  const nlohmann::json j = {{"campaign", owner_.campaign},
                            {"created_at", created_at},
                            {"database", owner_.database},
                            {"about", "the campaign whose runs these directories hold (jslds "
                                      "sweep refuses other campaigns here)"}};
  const std::string text = j.dump(2) + "\n";
  if (::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
      ::ftruncate(fd_, static_cast<off_t>(text.size())) != 0 || ::fsync(fd_) != 0)
    throw ArtifactsConflict(fmt::format("cannot write {}: {}",
                                        artifacts_marker_path(dir_).string(),
                                        std::strerror(errno)));
  empty_ = false;
  outdated_ = false;
}

}  // namespace jslds
