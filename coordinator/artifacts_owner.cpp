#include "coordinator/artifacts_owner.h"

#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"

namespace jslds {

namespace fs = std::filesystem;

namespace {

std::string ways_out(const fs::path& dir) {
  return fmt::format(
      "two databases must not share run directories: give this launch another --artifacts "
      "folder, or move or remove {} if its runs are not wanted",
      dir.string());
}

std::string describe(const CampaignOwner& o) {
  return o.created_at
             ? fmt::format("campaign '{}' created at {} in {}", o.campaign, *o.created_at,
                           o.database)
             : fmt::format("campaign '{}', new in {}", o.campaign, o.database);
}

}  // namespace

fs::path artifacts_marker_path(const fs::path& dir) { return dir / "campaign.json"; }

void check_artifacts_owner(const fs::path& dir, const CampaignOwner& owner) {
  const fs::path marker = artifacts_marker_path(dir);
  std::error_code ec;
  if (fs::exists(marker, ec)) {
    std::ifstream in(marker, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (!in || !j.is_object() || !j.contains("campaign") || !j["campaign"].is_string() ||
        !j.contains("created_at") || !j["created_at"].is_string())
      throw ArtifactsConflict(fmt::format(
          "{}: not a readable owner marker (expected a JSON object with \"campaign\" and "
          "\"created_at\" strings), so it is unknown which campaign owns {}: if they are this "
          "campaign's runs, remove the marker and launch again (it is written anew); otherwise {}",
          marker.string(), dir.string(), ways_out(dir)));
    const std::string campaign = j["campaign"].get<std::string>();
    const std::string created_at = j["created_at"].get<std::string>();
    if (campaign == owner.campaign && owner.created_at && created_at == *owner.created_at) return;
    const std::string database =
        j.contains("database") && j["database"].is_string() ? j["database"].get<std::string>()
                                                             : std::string("another database");
    throw ArtifactsConflict(fmt::format(
        "run directories {} belong to campaign '{}' created at {} in {} (marker {}), not to "
        "this launch's {}; {}",
        dir.string(), campaign, created_at, database, marker.string(), describe(owner),
        ways_out(dir)));
  }
  if (owner.created_at) return;  // an existing campaign adopts its folder
  if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec))
    throw ArtifactsConflict(fmt::format(
        "run directories {} already hold files, but this launch's {} has no runs yet: they "
        "belong to a campaign of the same name in another database, or to one whose database "
        "was removed; {}",
        dir.string(), describe(owner), ways_out(dir)));
}

void claim_artifacts(const fs::path& dir, const CampaignOwner& owner) {
  if (!owner.created_at)
    throw std::invalid_argument("claim_artifacts: the campaign's created_at is needed");
  const fs::path marker = artifacts_marker_path(dir);
  std::error_code ec;
  if (fs::exists(marker, ec)) return;
  fs::create_directories(dir);
  const nlohmann::json j = {{"campaign", owner.campaign},
                            {"created_at", *owner.created_at},
                            {"database", owner.database},
                            {"about", "the campaign whose runs these directories hold (jslds "
                                      "sweep refuses other campaigns here)"}};
  write_file_atomically(marker, j.dump(2) + "\n");
}

}  // namespace jslds
