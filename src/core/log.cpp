#include "robometer/core/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <filesystem>
#include <vector>

#include "robometer/core/error.h"

namespace robometer {

spdlog::level::level_enum parse_log_level(const std::string& level) {
  static const std::pair<const char*, spdlog::level::level_enum> kLevels[] = {
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},  {"info", spdlog::level::info},
      {"warn", spdlog::level::warn},   {"warning", spdlog::level::warn}, {"error", spdlog::level::err},
      {"off", spdlog::level::off}};
  for (const auto& [name, lvl] : kLevels)
    if (level == name) return lvl;
  throw ConfigError("log level '" + level + "' is not one of trace, debug, info, warn, error, off");
}

void init_logging(const LogOptions& opts) {
  const auto level = parse_log_level(opts.level);
  std::vector<spdlog::sink_ptr> sinks;
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  console->set_level(opts.rank > 0 && opts.only_rank0_console ? spdlog::level::warn : level);
  sinks.push_back(console);
  if (!opts.file.empty()) {
    std::filesystem::create_directories(std::filesystem::path(opts.file).parent_path());
    auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(opts.file, /*truncate=*/false);
    file->set_level(level);
    sinks.push_back(file);
  }
  auto logger = std::make_shared<spdlog::logger>("robometer", sinks.begin(), sinks.end());
  const std::string prefix = opts.rank >= 0 ? "[rank " + std::to_string(opts.rank) + "] " : "";
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] " + prefix + "[%^%l%$] %v");
  logger->set_level(level);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace robometer
