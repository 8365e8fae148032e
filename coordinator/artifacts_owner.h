// Which campaign owns a run-directory root. Run directories go under ARTIFACTS/CAMPAIGN/, and
// the default ARTIFACTS is jslds-runs/ beside the database, so two databases in one folder with
// a campaign of the same name would share, and overwrite, each other's run directories. A
// marker, ARTIFACTS/CAMPAIGN/campaign.json, names the campaign that claimed the folder (its name,
// its creation time in its database, and that database); a launch for any other campaign is
// refused before it touches the database or a run directory. Free of Torch and MPI.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace jslds {

/// A run-directory root that belongs to another campaign, or that cannot be used; what()
/// says which, and what to do.
class ArtifactsConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The campaign a launch runs, as its database knows it.
struct CampaignOwner {
  std::string campaign;                   // [campaign] name
  std::optional<std::string> created_at;  // campaigns.created_at; empty: not created yet
  std::string database;                   // absolute path of the database
};

/// The marker's path: DIR/campaign.json.
std::filesystem::path artifacts_marker_path(const std::filesystem::path& dir);

/// The owner DIR/campaign.json names (campaign, created_at, database), read without a lock;
/// nullopt when DIR has no marker or an empty or unreadable one. For a look only: a claim
/// checks again under its lock.
std::optional<CampaignOwner> read_artifacts_marker(const std::filesystem::path& dir);

/// Why `owner` may not keep runs in DIR, whose marker holds `marker_text` (empty: no marker
/// yet, or one a crash left empty), or nullopt when it may: the check ArtifactsClaim makes
/// under its lock (rules below), also usable read-only (jslds sweep --dry-run). Sets
/// `*outdated` when the marker is this campaign's but names its database at a path where it no
/// longer is (moved or renamed).
std::optional<std::string> artifacts_refusal(const std::filesystem::path& dir,
                                             const std::string& marker_text,
                                             const CampaignOwner& owner, bool holds_own_runs,
                                             bool* outdated = nullptr);

/// The check and claim of one run-directory root, under an exclusive lock (flock(2) on the
/// marker) held from the check until the object is destroyed, so that two launches of
/// databases in one folder cannot both pass the check: the second waits, then finds the
/// first one's marker.
///
/// The constructor opens DIR/campaign.json (creating DIR and an empty marker when `create`;
/// without `create` a DIR that does not exist is left alone and nothing is checked), locks
/// it and checks that DIR may hold `owner`'s runs:
///  - a marker must name owner's campaign and created_at (a campaign not created yet matches
///    none), and a database that is owner's or no longer exists (a copy of a database must not
///    re-run the original's runs);
///  - an empty marker (none yet, or a claim a crash interrupted) needs DIR to hold nothing else,
///    unless `holds_own_runs` (owner's stored runs are in DIR: a folder made before markers).
/// Throws ArtifactsConflict naming DIR, the owners and the ways out, also when DIR or the marker
/// cannot be created or read.
class ArtifactsClaim {
 public:
  ArtifactsClaim(const std::filesystem::path& dir, const CampaignOwner& owner, bool create,
                 bool holds_own_runs);
  ArtifactsClaim(const ArtifactsClaim&) = delete;
  ArtifactsClaim& operator=(const ArtifactsClaim&) = delete;
  ArtifactsClaim(ArtifactsClaim&& other) noexcept;
  ~ArtifactsClaim();

  /// Writes the marker for the owner, created at `created_at`, when it was empty or named the
  /// owner's database at a path where it no longer is (moved or renamed), fsynced.
  /// Throws ArtifactsConflict when it cannot be written.
  void claim(const std::string& created_at);

 private:
  std::filesystem::path dir_;
  CampaignOwner owner_;
  int fd_ = -1;          // the locked marker; -1: nothing to claim
  bool empty_ = false;   // the marker holds nothing yet
  bool outdated_ = false;  // the marker names this campaign's database where it no longer is
};

}  // namespace jslds
