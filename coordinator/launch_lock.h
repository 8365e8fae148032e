// One launch per campaign at a time (DESIGN §3). Each launch bumps the campaign's epoch and
// takes every `running` row of an earlier epoch for a dead coordinator's, so a second
// `jslds sweep` of a campaign that is still running would mark the live runs `interrupted`,
// start them a second time and race the first launch for their results. The launch lock
// refuses that second launch instead.
//
// The lock is an open-file-description byte-range lock (fcntl F_OFD_SETLK, Linux ≥ 3.15) on
// DB.lock beside the database, one byte per campaign (at an offset hashed from its name), so
// launches of different campaigns in one database never block each other. The kernel (or the
// NFS lock manager) drops it when the holder's process ends in any way, SIGKILL included, so
// a relaunch after a crash is never refused. The descriptor is close-on-exec: training
// processes never hold it.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace jslds {

/// Another live launch holds the campaign.
class CampaignBusy : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CampaignLaunchLock {
 public:
  /// Takes the lock of `campaign` in the database file `db`, without waiting.
  /// Throws CampaignBusy (naming the campaign, the database and what to do) when another
  /// process holds it, and std::runtime_error when DB.lock cannot be opened. A file system
  /// without byte-range locks (ENOLCK, EOPNOTSUPP) gives an unlocked object: held() is false
  /// and `warning()` says why, and the launch goes on as before this lock existed.
  CampaignLaunchLock(const std::filesystem::path& db, const std::string& campaign);
  ~CampaignLaunchLock();  // closing the descriptor releases the lock
  CampaignLaunchLock(const CampaignLaunchLock&) = delete;
  CampaignLaunchLock& operator=(const CampaignLaunchLock&) = delete;

  bool held() const { return held_; }
  const std::string& warning() const { return warning_; }
  /// Whether a live launch holds the lock of `campaign` in database `db`, tested without
  /// taking it (F_OFD_GETLK on DB.lock opened read-only): true or false, or nullopt when it
  /// cannot be told (no DB.lock, or no byte-range locks on this file system). Never throws.
  /// `jslds status` uses it to tell a live campaign from one whose coordinator died.
  static std::optional<bool> held_by_a_launch(const std::filesystem::path& db, const std::string& campaign);

  /// Why a launch of `campaign` in `db` is refused while another holds the lock (CampaignBusy's
  /// message; `jslds sweep --dry-run` says the same).
  static std::string busy_message(const std::filesystem::path& db, const std::string& campaign);

  /// The database's real path (symlinks resolved) + ".lock".
  static std::filesystem::path lock_file(const std::filesystem::path& db);

 private:
  int fd_ = -1;
  bool held_ = false;
  std::string warning_;
};

}  // namespace jslds
