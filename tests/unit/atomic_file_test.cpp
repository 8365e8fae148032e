// Whole-or-nothing file writes (core/atomic_file.h): the content and digest of what was
// written, no temporary file left, and a failed write that leaves the target as it was.
#include "core/atomic_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

namespace jslds {
namespace {

namespace fs = std::filesystem;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("jslds_atomic_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string read(const fs::path& f) {
    std::ifstream in(f, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  int entries() {
    return static_cast<int>(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()));
  }
  fs::path dir_;
};

TEST_F(AtomicFileTest, WritesTheBytesAndReturnsTheirSizeAndSha256) {
  for (Durability d : {Durability::kFsync, Durability::kNoFsync}) {
    const fs::path f = dir_ / "a.txt";
    const FileDigest digest = write_file_atomically(f, "abc", d);
    EXPECT_EQ(read(f), "abc");
    EXPECT_EQ(digest.bytes, 3);
    // FIPS 180-2, appendix B.1: SHA-256("abc").
    EXPECT_EQ(digest.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(entries(), 1) << "no temporary file left beside it";
    fs::remove(f);
  }
}

TEST_F(AtomicFileTest, ReplacesAnExistingFileWhole) {
  const fs::path f = dir_ / "b.txt";
  std::ofstream(f) << "an older and longer content";
  write_file_atomically(f, "new");
  EXPECT_EQ(read(f), "new");
  EXPECT_EQ(entries(), 1);
}

TEST_F(AtomicFileTest, AMissingDirectoryThrowsNamingTheFile) {
  const fs::path missing = dir_ / "no" / "such" / "c.txt";
  try {
    write_file_atomically(missing, "x");
    FAIL() << "expected FileWriteError";
  } catch (const FileWriteError& e) {
    EXPECT_EQ(e.path(), missing);
    EXPECT_NE(e.problem().find("open"), std::string::npos) << e.problem();
    EXPECT_EQ(std::string(e.what()).rfind(missing.string() + ": ", 0), 0u) << e.what();
  }
  EXPECT_EQ(entries(), 0);
}

TEST_F(AtomicFileTest, AFailedRenameRemovesTheTemporaryFileAndLeavesTheTargetAsItWas) {
  // rename(2) cannot replace a non-empty directory (also not for root): the write reaches the
  // temporary file, then the last step fails.
  const fs::path target = dir_ / "d";
  fs::create_directories(target);
  std::ofstream(target / "inside") << "kept";
  try {
    write_file_atomically(target, "lost");
    FAIL() << "expected FileWriteError";
  } catch (const FileWriteError& e) {
    EXPECT_NE(e.problem().find("rename failed"), std::string::npos) << e.problem();
  }
  EXPECT_EQ(entries(), 1) << "the temporary file was removed";
  EXPECT_EQ(read(target / "inside"), "kept");
}

}  // namespace
}  // namespace jslds
