// The checkpoint receipt: RUN_DIR/checkpoint.json, written by the trainer right after each
// checkpoint (DESIGN §3: temporary file, fsync, rename), naming the step, size and sha256 of
// the checkpoint.pt it has just made durable:
//
//   {"step": 120, "path": "checkpoint.pt", "bytes": 83214, "sha256": "<64 hex digits>"}
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
};

/// The receipt's location: RUN_DIR/checkpoint.json.
std::filesystem::path checkpoint_receipt_path(const std::filesystem::path& run_dir);

/// Writes RUN_DIR/checkpoint.json durably (temporary file, fsync, rename). Call it only after
/// the checkpoint it describes is itself durable. Throws std::runtime_error naming the file.
void write_checkpoint_receipt(const std::filesystem::path& run_dir, const CheckpointReceipt& r);

/// Reads RUN_DIR/checkpoint.json; nullopt when it is missing or is not a receipt (wrong JSON,
/// missing or mistyped fields, a path that leaves the run directory). Never throws.
std::optional<CheckpointReceipt> read_checkpoint_receipt(const std::filesystem::path& run_dir);

}  // namespace jslds
