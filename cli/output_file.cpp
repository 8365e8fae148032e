#include "cli/output_file.h"

#include <fmt/format.h>

#include "cli/commands.h"

namespace jslds::cli {

namespace fs = std::filesystem;

void check_output_file(const fs::path& output, const std::string& option,
                       const std::vector<fs::path>& protected_files,
                       const std::vector<std::string>& protected_roles,
                       const std::function<bool(const fs::path&)>& ours,
                       const std::string& ours_description) {
  if (output.empty()) throw UsageError(fmt::format("{} is empty: give the path of a file", option));
  std::error_code ec;
  const fs::path parent = fs::absolute(output, ec).parent_path();
  if (!fs::is_directory(parent, ec))
    throw UsageError(fmt::format("{} {}: the directory {} does not exist", option,
                                 output.string(), parent.string()));
  // The file is written beside and renamed into place, which would replace a symbolic link
  // itself and leave its target stale.
  if (fs::is_symlink(fs::symlink_status(output, ec)))
    throw UsageError(fmt::format("{} {}: is a symbolic link (to {}); give the path of the file "
                                 "itself",
                                 option, output.string(), fs::read_symlink(output, ec).string()));
  const auto status = fs::status(output, ec);
  if (status.type() == fs::file_type::not_found) return;
  if (status.type() == fs::file_type::directory)
    throw UsageError(fmt::format("{} {}: is a directory; give the path of a file", option,
                                 output.string()));
  // A FIFO, device or socket: never opened (reading a FIFO to recognise it would block).
  if (status.type() != fs::file_type::regular)
    throw UsageError(fmt::format("{} {}: is not a regular file; refusing to write to it", option,
                                 output.string()));
  for (std::size_t i = 0; i < protected_files.size(); ++i) {
    std::error_code same_ec;
    if (!protected_files[i].empty() && fs::equivalent(output, protected_files[i], same_ec))
      throw UsageError(fmt::format("{} {}: is the {} ({}); refusing to overwrite it", option,
                                   output.string(), protected_roles.at(i),
                                   protected_files[i].string()));
  }
  if (!ours(output))
    throw UsageError(fmt::format("{} {}: exists and is not {}; refusing to overwrite it (remove "
                                 "it first or choose another path)",
                                 option, output.string(), ours_description));
}

}  // namespace jslds::cli
