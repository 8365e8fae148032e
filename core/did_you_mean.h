// The "did you mean" hint of errors about a name the user typed: an unknown configuration key
// (core/config.cpp) or an unknown sweep objective metric (coordinator/sweep_spec.cpp).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace jslds {

/// Levenshtein distance: insertions, deletions and substitutions of single bytes.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// " (did you mean 'NAME'?)" for the name of `known` closest to `unknown` by edit distance
/// (the first of equally close ones) when at most max(2, |unknown| / 3) edits away, else "".
std::string did_you_mean(std::string_view unknown, const std::vector<std::string>& known);

}  // namespace jslds
