// Logging: spdlog to the console and optionally to <run_dir>/log.txt, with a rank prefix so
// that lines from several processes can be told apart.
#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace robometer {

struct LogOptions {
  std::string level = "info";      // trace|debug|info|warn|error|off
  std::string file;                // empty: console only
  int rank = -1;                   // <0: single process, no rank prefix
  bool only_rank0_console = true;  // ranks > 0 log warnings and errors only on the console
};

// (Re)configures the default logger. Throws ConfigError on an unknown level.
void init_logging(const LogOptions& opts);

// Parses "info", "debug", ... ; throws ConfigError naming the bad value.
spdlog::level::level_enum parse_log_level(const std::string& level);

}  // namespace robometer
