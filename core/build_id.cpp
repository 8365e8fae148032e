#include "core/build_id.h"

namespace jslds {

std::string build_id() {
  const std::string git = detail::kBuildGit;
  return git.empty() ? std::string(JSLDS_VERSION) : std::string(JSLDS_VERSION) + " (git " + git + ")";
}

}  // namespace jslds
