// The checkpoint receipt (core/checkpoint_receipt.h): round trip, and every malformed receipt
// is refused rather than trusted.
#include "core/checkpoint_receipt.h"
#include "core/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>
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
  write_checkpoint_receipt(dir_, {120, "checkpoint.pt", 83214, kSha, ""});
  auto r = read_checkpoint_receipt(dir_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->step, 120);
  EXPECT_EQ(r->path, "checkpoint.pt");
  EXPECT_EQ(r->bytes, 83214);
  EXPECT_EQ(r->sha256, kSha);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1)
      << "only checkpoint.json: no temporary file left";
  write_checkpoint_receipt(dir_, {240, "checkpoint.pt", 1, kSha, ""});
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
    write_checkpoint_receipt(missing, {1, "checkpoint.pt", 1, kSha, ""});
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((missing / "checkpoint.json.tmp").string()),
              std::string::npos)
        << e.what();
  }
}

TEST_F(CheckpointReceiptTest, StateSha256RoundTripsAndAMalformedOneIsRefused) {
  const std::string state(64, 'd');
  write_checkpoint_receipt(dir_, {7, "checkpoint.pt", 3, kSha, state});
  ASSERT_TRUE(read_checkpoint_receipt(dir_));
  EXPECT_EQ(read_checkpoint_receipt(dir_)->state_sha256, state);
  write("{\"step\": 1, \"path\": \"checkpoint.pt\", \"bytes\": 5, \"sha256\": \"" + kSha +
        "\", \"state_sha256\": \"xyz\"}");
  EXPECT_FALSE(read_checkpoint_receipt(dir_));
}

// The publication journal (core/checkpoint_receipt.h), one crash point at a time.
class CheckpointPublicationTest : public CheckpointReceiptTest {
 protected:
  // Stages a pair for STEP with the given contents and returns its receipt.
  CheckpointReceipt stage(int64_t step, const std::string& checkpoint, const std::string& state) {
    std::ofstream(staged_checkpoint_path(dir_ / "checkpoint.pt")) << checkpoint;
    std::ofstream(staged_checkpoint_path(dir_ / "train_state.pt")) << state;
    return {step, "checkpoint.pt", static_cast<int64_t>(checkpoint.size()), sha256_hex(checkpoint),
            sha256_hex(state)};
  }
  std::string read(const std::string& name) {
    std::ifstream in(dir_ / name);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool staged_left() {
    return fs::exists(dir_ / "checkpoint.pt.next") || fs::exists(dir_ / "train_state.pt.next");
  }
};

TEST_F(CheckpointPublicationTest, PublishPutsThePairInPlaceBehindItsReceipt) {
  EXPECT_EQ(recover_checkpoint_publication(dir_), "") << "nothing to recover in an empty directory";
  publish_staged_checkpoint(dir_, stage(10, "ckpt 10", "state 10"));
  EXPECT_EQ(read("checkpoint.pt"), "ckpt 10");
  EXPECT_EQ(read("train_state.pt"), "state 10");
  EXPECT_FALSE(staged_left());
  EXPECT_EQ(read_checkpoint_receipt(dir_)->step, 10);
  EXPECT_EQ(file_sha256(dir_ / "train_state.pt"), read_checkpoint_receipt(dir_)->state_sha256);
  EXPECT_EQ(recover_checkpoint_publication(dir_), "") << "a finished publication needs nothing";
  EXPECT_EQ(read("checkpoint.pt"), "ckpt 10");
}

TEST_F(CheckpointPublicationTest, ACrashAfterTheReceiptIsCompleted) {
  publish_staged_checkpoint(dir_, stage(10, "ckpt 10", "state 10"));
  // Receipt written, no rename yet.
  write_checkpoint_receipt(dir_, stage(20, "ckpt 20", "state 20"));
  std::string note = recover_checkpoint_publication(dir_);
  EXPECT_NE(note.find("completed the publication of the step-20 checkpoint"), std::string::npos) << note;
  EXPECT_EQ(read("checkpoint.pt"), "ckpt 20");
  EXPECT_EQ(read("train_state.pt"), "state 20");
  EXPECT_FALSE(staged_left());

  // train_state.pt renamed, checkpoint.pt not yet.
  const CheckpointReceipt r30 = stage(30, "ckpt 30", "state 30");
  write_checkpoint_receipt(dir_, r30);
  fs::rename(dir_ / "train_state.pt.next", dir_ / "train_state.pt");
  note = recover_checkpoint_publication(dir_);
  EXPECT_NE(note.find("(checkpoint.pt.next renamed into place)"), std::string::npos) << note;
  EXPECT_EQ(read("checkpoint.pt"), "ckpt 30");
  EXPECT_EQ(read("train_state.pt"), "state 30");
  EXPECT_FALSE(staged_left());
}

TEST_F(CheckpointPublicationTest, ACrashBeforeTheReceiptIsUndoneAndThePreviousPairStays) {
  publish_staged_checkpoint(dir_, stage(10, "ckpt 10", "state 10"));
  // Both staged, receipt not written.
  stage(20, "ckpt 20", "state 20");
  std::string note = recover_checkpoint_publication(dir_);
  EXPECT_NE(note.find("removed an unfinished checkpoint (checkpoint.pt.next and train_state.pt.next)"),
            std::string::npos)
      << note;
  EXPECT_EQ(read("checkpoint.pt"), "ckpt 10");
  EXPECT_EQ(read("train_state.pt"), "state 10");
  EXPECT_FALSE(staged_left());
  EXPECT_EQ(read_checkpoint_receipt(dir_)->step, 10);

  // Only the checkpoint staged, and a temporary file of a writer that no longer exists; a
  // temporary file of a live process (this one) is left alone.
  std::ofstream(dir_ / "checkpoint.pt.next") << "ckpt 2";
  std::ofstream(dir_ / "train_state.pt.next.tmp.2147483000") << "partial";
  std::ofstream(dir_ / "checkpoint.json.tmp.2147483000") << "{\"step\": 3";  // a receipt's
  const std::string live = "checkpoint.pt.next.tmp." + std::to_string(::getpid());
  std::ofstream(dir_ / live) << "being written";
  note = recover_checkpoint_publication(dir_);
  EXPECT_NE(note.find("train_state.pt.next.tmp.2147483000"), std::string::npos) << note;
  EXPECT_NE(note.find("removed an unfinished checkpoint (checkpoint.pt.next)"), std::string::npos) << note;
  EXPECT_FALSE(fs::exists(dir_ / "train_state.pt.next.tmp.2147483000"));
  EXPECT_FALSE(fs::exists(dir_ / "checkpoint.json.tmp.2147483000"));
  EXPECT_TRUE(fs::exists(dir_ / live));
  EXPECT_EQ(read("checkpoint.pt"), "ckpt 10");

  // A receipt without state_sha256 cannot vouch for a staged train_state.pt: undone.
  write_checkpoint_receipt(dir_, {20, "checkpoint.pt", 7, sha256_hex("ckpt 20"), ""});
  stage(20, "ckpt 20", "state 20");
  note = recover_checkpoint_publication(dir_);
  EXPECT_NE(note.find("removed an unfinished checkpoint"), std::string::npos) << note;
  EXPECT_EQ(read("checkpoint.pt"), "ckpt 10");
}

}  // namespace
}  // namespace jslds
