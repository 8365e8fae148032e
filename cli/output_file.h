// Guards for the files a command writes with --output/--out: a mistyped path must never
// replace a checkpoint, a recording or a database.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace jslds::cli {

/// Throws UsageError (exit status 2, before any work) unless writing `output` can only create
/// a new file or replace one this command wrote before:
///   - its directory must exist and `output` must not be a directory, a symbolic link (the
///     rename into place would replace the link) or anything but a regular file;
///   - it must not be one of `protected_files` (compared by inode, so other spellings and
///     links count), each named by its role in `protected_roles`;
///   - an existing file must satisfy `ours` (e.g. "an HDF5 file with format=jslds-analysis"),
///     described by `ours_description` in the error.
/// `option` ("--output") names the option in messages.
void check_output_file(const std::filesystem::path& output, const std::string& option,
                       const std::vector<std::filesystem::path>& protected_files,
                       const std::vector<std::string>& protected_roles,
                       const std::function<bool(const std::filesystem::path&)>& ours,
                       const std::string& ours_description);

}  // namespace jslds::cli
