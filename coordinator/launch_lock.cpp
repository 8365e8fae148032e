#include "coordinator/launch_lock.h"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace jslds {

namespace {

// FNV-1a, 64 bit: a stable offset for a campaign name (the same in every build and process).
off_t campaign_offset(const std::string& campaign) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : campaign) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<off_t>(h >> 2);  // positive, below 2^62
}

// The campaign's byte of DB.lock, as an exclusive lock request.
struct flock campaign_range(const std::string& campaign) {
  struct flock range {};
  range.l_type = F_WRLCK;
  range.l_whence = SEEK_SET;
  range.l_start = campaign_offset(campaign);
  range.l_len = 1;
  range.l_pid = 0;  // required for OFD locks
  return range;
}

}  // namespace

std::filesystem::path CampaignLaunchLock::lock_file(const std::filesystem::path& db) {
  // The database's real path, so a launch through a symlink or another spelling of the
  // path meets the same lock.
  std::error_code ec;
  std::filesystem::path file = std::filesystem::weakly_canonical(std::filesystem::absolute(db), ec);
  if (ec) file = std::filesystem::absolute(db);
  file += ".lock";
  return file;
}

CampaignLaunchLock::CampaignLaunchLock(const std::filesystem::path& db,
                                       const std::string& campaign) {
  const std::filesystem::path file = lock_file(db);
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error(fmt::format("cannot open the launch lock {}: {}", file.string(),
                                         std::strerror(errno)));
  struct flock range = campaign_range(campaign);
  if (::fcntl(fd_, F_OFD_SETLK, &range) == 0) {
    held_ = true;
    return;
  }
  const int error = errno;
  if (error == EAGAIN || error == EACCES) {
    ::close(fd_);
    fd_ = -1;
    throw CampaignBusy(busy_message(db, campaign));
  }
  warning_ = fmt::format(
      "could not lock {} ({}): this file system has no byte-range locks, so nothing stops a "
      "second launch of campaign '{}' while this one runs",
      file.string(), std::strerror(error), campaign);
}

std::string CampaignLaunchLock::busy_message(const std::filesystem::path& db, const std::string& campaign) {
  return fmt::format(
      "campaign '{}' in {} is being run by another `jslds sweep` (it holds the launch lock in "
      "{}); two launches of one campaign would train the same runs twice. Wait for it to end, "
      "or stop it (SIGUSR1 or SIGTERM) and launch again; `jslds status --db {} {}` shows its "
      "workers. A launch that was killed releases the lock at once",
      campaign, db.string(), lock_file(db).string(), db.string(), campaign);
}

std::optional<bool> CampaignLaunchLock::held_by_a_launch(const std::filesystem::path& db,
                                                        const std::string& campaign) {
  const int fd = ::open(lock_file(db).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct flock range = campaign_range(campaign);
  std::optional<bool> held;
  if (::fcntl(fd, F_OFD_GETLK, &range) == 0) held = range.l_type != F_UNLCK;
  ::close(fd);
  return held;
}

CampaignLaunchLock::~CampaignLaunchLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace jslds
