// The checkpoint receipt (core/checkpoint_receipt.h): round trip, and every malformed receipt
// is refused rather than trusted.
#include "core/checkpoint_receipt.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

namespace jslds {
namespace {

namespace fs = std::filesystem;

class CheckpointReceiptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("jslds_receipt_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& text) { std::ofstream(dir_ / "checkpoint.json") << text; }
  fs::path dir_;
};

const std::string kSha(64, 'c');

TEST_F(CheckpointReceiptTest, RoundTripsDurablyAndLeavesNoTemporaryFile) {
  EXPECT_FALSE(read_checkpoint_receipt(dir_)) << "no receipt yet";
  write_checkpoint_receipt(dir_, {120, "checkpoint.pt", 83214, kSha});
  auto r = read_checkpoint_receipt(dir_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->step, 120);
  EXPECT_EQ(r->path, "checkpoint.pt");
  EXPECT_EQ(r->bytes, 83214);
  EXPECT_EQ(r->sha256, kSha);
  EXPECT_FALSE(fs::exists(dir_ / "checkpoint.json.tmp"));
  write_checkpoint_receipt(dir_, {240, "checkpoint.pt", 1, kSha});
  EXPECT_EQ(read_checkpoint_receipt(dir_)->step, 240) << "a newer receipt replaces the old one";
}

TEST_F(CheckpointReceiptTest, MalformedReceiptsAreRefused) {
  const std::string ok_sha = "\"" + kSha + "\"";
  const std::vector<std::string> cases = {
           std::string("not json"),
           std::string("[1, 2]"),
           "{\"step\": 1, \"path\": \"checkpoint.pt\", \"bytes\": 5}",              // no sha256
           "{\"step\": -1, \"path\": \"checkpoint.pt\", \"bytes\": 5, \"sha256\": " + ok_sha + "}",
           "{\"step\": 1.5, \"path\": \"checkpoint.pt\", \"bytes\": 5, \"sha256\": " + ok_sha + "}",
           "{\"step\": 1, \"path\": \"../other/checkpoint.pt\", \"bytes\": 5, \"sha256\": " + ok_sha + "}",
           "{\"step\": 1, \"path\": \"/etc/passwd\", \"bytes\": 5, \"sha256\": " + ok_sha + "}",
           "{\"step\": 1, \"path\": \"..\", \"bytes\": 5, \"sha256\": " + ok_sha + "}",
           std::string("{\"step\": 1, \"path\": \"checkpoint.pt\", \"bytes\": 5, \"sha256\": \"abc\"}"),
           "{\"step\": 1, \"path\": \"checkpoint.pt\", \"bytes\": 5, \"sha256\": \"" +
               std::string(64, 'G') + "\"}",
  };
  for (const std::string& text : cases) {
    SCOPED_TRACE(text);
    write(text);
    EXPECT_FALSE(read_checkpoint_receipt(dir_));
  }
  write("{\"step\": 1, \"path\": \"checkpoint.pt\", \"bytes\": 5, \"sha256\": " + ok_sha + "}");
  EXPECT_TRUE(read_checkpoint_receipt(dir_)) << "the well-formed control case";
}

TEST_F(CheckpointReceiptTest, UnwritableDirectoryThrowsNamingTheFile) {
  const fs::path missing = dir_ / "no" / "such";
  try {
    write_checkpoint_receipt(missing, {1, "checkpoint.pt", 1, kSha});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((missing / "checkpoint.json.tmp").string()),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace jslds
