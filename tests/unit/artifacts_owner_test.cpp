// The run-directory ownership marker (coordinator/artifacts_owner.h): a second launch waits for
// the first one's claim and is then refused, a copied database is refused, a moved one is not,
// and a folder without a marker is adopted only by the campaign whose runs are in it.
#include "coordinator/artifacts_owner.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

namespace jslds {
namespace {

namespace fs = std::filesystem;

class ArtifactsOwnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("jslds_artifacts_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    std::ofstream(root_ / "a.sqlite") << "a";
    std::ofstream(root_ / "b.sqlite") << "b";
  }
  void TearDown() override { fs::remove_all(root_); }
  CampaignOwner owner(const std::string& db, std::optional<std::string> created = std::nullopt) {
    return {"c", std::move(created), (root_ / db).string()};
  }
  std::string refusal(const fs::path& dir, const CampaignOwner& o, bool create = true,
                      bool holds_own_runs = false) {
    try {
      ArtifactsClaim claim(dir, o, create, holds_own_runs);
      return "";
    } catch (const ArtifactsConflict& e) {
      return e.what();
    }
  }
  fs::path root_;
};

TEST_F(ArtifactsOwnerTest, ASecondLaunchWaitsForTheFirstClaimThenIsRefused) {
  const fs::path dir = root_ / "runs" / "c";
  ArtifactsClaim first(dir, owner("a.sqlite"), /*create=*/true, /*holds_own_runs=*/false);
  auto second = std::async(std::launch::async, [&] { return refusal(dir, owner("b.sqlite")); });
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "the second check ran while the first launch held the folder: " << second.get();
  first.claim("2026-12-07T10:00:00.000Z");
  { ArtifactsClaim released = std::move(first); }  // the first launch's lock goes
  const std::string why = second.get();
  EXPECT_NE(why.find("belong to campaign 'c' created at 2026-12-07T10:00:00.000Z in " +
                     (root_ / "a.sqlite").string()),
            std::string::npos)
      << why;
  EXPECT_EQ(refusal(dir, owner("a.sqlite", "2026-12-07T10:00:00.000Z")), "") << "its owner";
}

TEST_F(ArtifactsOwnerTest, ACopiedDatabaseIsRefusedAMovedOneIsNot) {
  const fs::path dir = root_ / "runs" / "c";
  {
    ArtifactsClaim claim(dir, owner("a.sqlite"), true, false);
    claim.claim("T1");
  }
  // b.sqlite holds the same campaign (a copy) while a.sqlite still exists.
  const std::string why = refusal(dir, owner("b.sqlite", "T1"));
  EXPECT_NE(why.find("a copy of it"), std::string::npos) << why;
  // Once a.sqlite is gone, b.sqlite is the campaign's database (moved or renamed).
  fs::remove(root_ / "a.sqlite");
  EXPECT_EQ(refusal(dir, owner("b.sqlite", "T1")), "");
  // Its claim names the database where it is now, so a later copy of it is told apart.
  {
    ArtifactsClaim claim(dir, owner("b.sqlite", "T1"), true, false);
    claim.claim("T1");
  }
  const auto marker = read_artifacts_marker(dir);
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->database, (root_ / "b.sqlite").string());
  EXPECT_EQ(marker->created_at, "T1");
  std::ofstream(root_ / "a.sqlite") << "a copy of b";
  EXPECT_NE(refusal(dir, owner("a.sqlite", "T1")).find("a copy of it"), std::string::npos);
}

TEST_F(ArtifactsOwnerTest, AReplacedDatabaseIsNamedAsSuch) {
  const fs::path dir = root_ / "runs" / "c";
  {
    ArtifactsClaim claim(dir, owner("a.sqlite"), true, false);
    claim.claim("T1");
  }
  const std::string why = refusal(dir, owner("a.sqlite"));  // removed, made anew: no campaign yet
  EXPECT_NE(why.find("the database was replaced since"), std::string::npos) << why;
}

TEST_F(ArtifactsOwnerTest, AFolderWithoutAMarkerIsAdoptedOnlyByTheCampaignWhoseRunsItHolds) {
  const fs::path dir = root_ / "runs" / "c";
  fs::create_directories(dir / "1");
  const std::string why = refusal(dir, owner("a.sqlite", "T1"), true, /*holds_own_runs=*/false);
  EXPECT_NE(why.find("already hold files (1 and maybe more)"), std::string::npos) << why;
  EXPECT_FALSE(fs::exists(dir / "campaign.json")) << "a refusal leaves no empty marker behind";
  {
    ArtifactsClaim claim(dir, owner("a.sqlite", "T1"), true, /*holds_own_runs=*/true);
    claim.claim("T1");
  }
  EXPECT_EQ(refusal(dir, owner("a.sqlite", "T1")), "");
  EXPECT_NE(refusal(dir, owner("b.sqlite")).find("belong to campaign 'c'"), std::string::npos);
}

TEST_F(ArtifactsOwnerTest, AFolderThatCannotBeMadeIsRefusedAndAMissingStoredOneIsLeftAlone) {
  std::ofstream(root_ / "afile") << "not a folder";
  const std::string why = refusal(root_ / "afile" / "runs" / "c", owner("a.sqlite"));
  EXPECT_NE(why.find("cannot create the run-directory folder"), std::string::npos) << why;
  EXPECT_EQ(refusal(root_ / "gone" / "c", owner("a.sqlite", "T1"), /*create=*/false), "");
  EXPECT_FALSE(fs::exists(root_ / "gone"));
}

}  // namespace
}  // namespace jslds
