// Which campaign owns a run-directory root. Run directories go under ARTIFACTS/CAMPAIGN/, and
// the default ARTIFACTS is jslds-runs/ beside the database, so two databases in one folder with
// a campaign of the same name would share, and overwrite, each other's run directories. A
// marker, ARTIFACTS/CAMPAIGN/campaign.json, names the campaign that claimed the folder (its name
// and creation time in its database); a launch for any other campaign is refused before it
// touches the database or a run directory. Free of Torch and MPI.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

namespace jslds {

/// A run-directory root that belongs to another campaign; what() says which, and what to do.
class ArtifactsConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The campaign a launch runs, as its database knows it.
struct CampaignOwner {
  std::string campaign;                   // [campaign] name
  std::optional<std::string> created_at;  // campaigns.created_at; empty: not created yet
  std::string database;                   // path of the database (shown in messages only)
};

/// The marker's path: DIR/campaign.json.
std::filesystem::path artifacts_marker_path(const std::filesystem::path& dir);

/// Checks that `dir` (a campaign's run-directory root) may hold `owner`'s runs:
///  - with a marker, its campaign name and created_at must be owner's (a campaign not created
///    yet matches no marker);
///  - without one, a campaign not created yet needs `dir` absent or empty (files there belong
///    to a campaign whose database is elsewhere, or was removed); an existing campaign adopts
///    `dir` (run directories made before markers existed).
/// Reads only. Throws ArtifactsConflict naming dir, both campaigns and the ways out, also when
/// the marker is unreadable or malformed.
void check_artifacts_owner(const std::filesystem::path& dir, const CampaignOwner& owner);

/// Writes DIR/campaign.json for `owner` (owner.created_at must be set) unless it exists,
/// creating `dir` as needed; whole or not at all (core/atomic_file.h). Throws FileWriteError or
/// std::filesystem::filesystem_error when it cannot.
void claim_artifacts(const std::filesystem::path& dir, const CampaignOwner& owner);

}  // namespace jslds
