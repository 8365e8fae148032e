// The checkpoint receipt: RUN_DIR/checkpoint.json, written by the trainer with each
// checkpoint (DESIGN §3: temporary file, fsync, rename), naming the step, size and sha256 of
// checkpoint.pt and the sha256 of the train_state.pt written with it:
//
//   {"step": 120, "path": "checkpoint.pt", "bytes": 83214, "sha256": "<64 hex digits>",
//    "state_sha256": "<64 hex digits>"}
//
// How a checkpoint is published (a small write-ahead journal, so that a SIGKILL at any moment
// leaves either the old pair or the new one, never a mixed or unvouched pair):
//   1. checkpoint.pt.next and train_state.pt.next are written durably;
//   2. the receipt for them is written durably (the commit point);
//   3. both are renamed into place and the directory is fsynced.
// recover_checkpoint_publication() finishes step 3 when the receipt vouches for the .next
// files (a crash after the commit point), or removes them (a crash before it). The trainer
// (`--resume`) and the supervisor run it before they look at checkpoint.pt.
//
// Why: the database learns of a checkpoint through the report stream, so a checkpoint a child
// writes after its worker rank was killed (Open MPI's mpirun turns SIGTERM into SIGKILL for
// the ranks about a second later) never reaches it. On resume the supervisor may adopt such a
// checkpoint, but only when checkpoint.pt's sha256 equals the receipt's: the receipt is written
// after the checkpoint is durable, so a match proves the file is the complete one the trainer
// wrote, never a torn or foreign one (docs/sweeps.md, "Resume").
//
// Free of Torch, MPI and SQLite: the worker, the trainer and the test stand-in share it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace jslds {

struct CheckpointReceipt {
  int64_t step = 0;         // training steps done when the checkpoint was written
  std::string path;         // file name inside the run directory ("checkpoint.pt")
  int64_t bytes = 0;        // size of that file
  std::string sha256;       // lowercase hex sha256 of that file
  std::string state_sha256; // sha256 of the train_state.pt written with it; empty: none
};

/// The sha256 (lowercase hex) of a file's contents. Throws std::runtime_error if unreadable.
std::string file_sha256(const std::filesystem::path& file);

/// The staging name of a checkpoint file before publication: FILE.next.
std::filesystem::path staged_checkpoint_path(const std::filesystem::path& file);

/// Steps 2 and 3 of the publication above: RUN_DIR/<r.path>.next (and train_state.pt.next
/// when r.state_sha256 is set) must already be durable and match r. Writes the receipt, then
/// renames the staged files into place and fsyncs the directory. Throws std::runtime_error
/// naming the file on any I/O error (the staged files are then left for recovery).
void publish_staged_checkpoint(const std::filesystem::path& run_dir, const CheckpointReceipt& r);

/// Completes or undoes a publication interrupted by a crash. When checkpoint.pt.next or
/// train_state.pt.next exist: if the receipt names every one of them by sha256, they are
/// renamed into place (the crash came after the commit point); otherwise they are removed and
/// the published pair, untouched, stays. Temporary files of interrupted writes of either or
/// of the receipt (NAME.tmp.PID, NAME.next.tmp.PID) are removed. Returns a one-line note of
/// what it did, empty when there was nothing to do. Throws std::runtime_error when a rename or
/// removal fails.
std::string recover_checkpoint_publication(const std::filesystem::path& run_dir);

/// The receipt's location: RUN_DIR/checkpoint.json.
std::filesystem::path checkpoint_receipt_path(const std::filesystem::path& run_dir);

/// Writes RUN_DIR/checkpoint.json durably (temporary file, fsync, rename). Call it only after
/// the checkpoint it describes is itself durable. Throws std::runtime_error naming the file.
void write_checkpoint_receipt(const std::filesystem::path& run_dir, const CheckpointReceipt& r);

/// Reads RUN_DIR/checkpoint.json; nullopt when it is missing or is not a receipt (wrong JSON,
/// missing or mistyped fields, a path that leaves the run directory). Never throws.
std::optional<CheckpointReceipt> read_checkpoint_receipt(const std::filesystem::path& run_dir);

}  // namespace jslds
