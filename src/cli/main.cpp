// `robometer` entry point: global flags, subcommand dispatch, error → exit code mapping.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "robometer/cli/command.h"
#include "robometer/core/error.h"
#include "robometer/core/log.h"

namespace robometer::cli {

std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> entries;
  return entries;
}

GlobalOptions& global_options() {
  static GlobalOptions opts;
  return opts;
}

}  // namespace robometer::cli

int main(int argc, char** argv) {
  using namespace robometer;
  CLI::App app{"robometer: train, fine-tune, evaluate and export Robometer-style robot reward models"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--log-level", cli::global_options().log_level,
                 "trace|debug|info|warn|error|off")
      ->capture_default_str();

  auto& entries = cli::command_registry();
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  int exit_code = 0;
  for (auto& e : entries) {
    CLI::App* sub = app.add_subcommand(e.name, e.summary);
    e.setup(*sub, exit_code);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return exit_code;
}
