// Whole-or-nothing file writes, free of Torch so that cli/, coordinator/ and worker/ share the
// one implementation with the checkpoints (core/train/checkpoint.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace jslds {

/// A file that could not be written. what() reads "PATH: problem"; problem() is the part
/// after the path (the failed call and its errno text).
class FileWriteError : public std::runtime_error {
 public:
  FileWriteError(const std::filesystem::path& path, const std::string& problem);
  const std::filesystem::path& path() const { return path_; }
  const std::string& problem() const { return problem_; }

 private:
  std::filesystem::path path_;
  std::string problem_;
};

/// Size and lower-case hex sha256 of a file as written.
struct FileDigest {
  int64_t bytes = 0;
  std::string sha256;
};

/// Whether write_file_atomically also makes the file survive a power loss.
enum class Durability {
  kFsync,     // fsync the file before the rename and the directory after it
  kNoFsync,   // atomic for readers and after a process crash only (for files rewritten anyway)
};

/// Writes `bytes` to `file` atomically: FILE.tmp.PID, fsync, rename over FILE, fsync of the
/// directory (POSIX rename(2) replaces the target in one step, so a reader sees either the
/// previous complete file or the new one, also after a crash). Returns the size and sha256 of
/// what was written. Throws FileWriteError (with the failed call and its errno text) when any
/// step fails; the temporary file is removed then and FILE is left as it was.
FileDigest write_file_atomically(const std::filesystem::path& file, std::string_view bytes,
                                 Durability durability = Durability::kFsync);

/// fsync(2) of directory `dir` ("" = the current one), which makes renames and new names in it
/// durable. Best effort: a directory that cannot be opened is skipped.
void fsync_directory(const std::filesystem::path& dir);

}  // namespace jslds
