#include "core/did_you_mean.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace jslds {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string did_you_mean(std::string_view unknown, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = std::numeric_limits<std::size_t>::max();
  for (const auto& k : known) {
    std::size_t d = edit_distance(unknown, k);
    if (d < best_d) best_d = d, best = k;
  }
  std::size_t limit = std::max<std::size_t>(2, unknown.size() / 3);
  if (best_d <= limit) return fmt::format(" (did you mean '{}'?)", best);
  return "";
}

}  // namespace jslds
