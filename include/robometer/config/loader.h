// YAML → RunConfig: `defaults:` composition, `key.sub=value` overrides, validation with
// file:line in every error (ConfigError, exit code 2), and printing of the resolved config.
//
// Layering: the files named in `defaults:` (relative to the including file, applied in order,
// recursively), then the file's own keys, then each override in order. Maps merge key by key;
// lists are replaced as a whole. Relative paths inside values are relative to the working
// directory, like every other CLI path.
#pragma once
#include <string>
#include <vector>

#include "robometer/config/run_config.h"

namespace robometer::config {

struct LoadResult {
  RunConfig config;
  std::vector<std::string> files;  // every YAML file read, in application order
  // With MissingPaths::Warn: one message per path-valued key whose path does not exist
  // (e.g. data.train[0].path before the demo has rendered its data).
  std::vector<std::string> missing_paths;
};

// Whether a path-valued key naming a missing file is an error or only reported in missing_paths.
enum class MissingPaths { Error, Warn };

// Throws ConfigError (unknown key with a did-you-mean, wrong type, out-of-range value,
// missing file or defaults entry, override of a missing key, defaults cycle).
LoadResult load_run_config(const std::string& path, const std::vector<std::string>& overrides = {},
                           MissingPaths missing = MissingPaths::Error);

// Applies overrides to an existing config (e.g. `robometer eval` flags).
void apply_overrides(RunConfig& cfg, const std::vector<std::string>& overrides);

// Range / choice / path checks on a config built in code.
void validate(const RunConfig& cfg);

std::string to_yaml(const RunConfig& cfg);

// Writes <dir>/config.yaml atomically (the resolved config of a run).
void write_resolved_config(const RunConfig& cfg, const std::string& dir);

// Closest known dotted key to `key` ("" when none is close); exposed for tests.
std::string suggest_key(const std::string& key);

}  // namespace robometer::config
