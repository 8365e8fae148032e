// toml++ entry points of the run configuration, for code that already holds parsed TOML
// (the sweep spec's [base] table and its [parameters] values). Kept apart from config.h so
// that only the few files that need toml++ pay for including it.
#pragma once

#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "core/config.h"

namespace jslds {

/// Builds a validated RunConfig from a parsed table with the sections of DESIGN §4.
/// Errors carry `source_name` and the node's line:column. Throws ConfigError.
RunConfig config_from_table(const toml::table& table, const std::string& source_name);

/// Sets one dotted key ("loss.w_fp") from a TOML value with type and range checks, as
/// apply_override does for text. `source_name` and the node's position go into errors.
void apply_value(RunConfig& config, std::string_view dotted_key, const toml::node& value,
                 const std::string& source_name);

}  // namespace jslds
