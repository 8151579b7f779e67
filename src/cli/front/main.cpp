// `robometer`, the front end. Starting a process that links LibTorch costs ~1 s and ~170 MB
// resident before main() (its libraries' relocations and operator registration; measured on the
// 2-core build VM), which is more than `data stats` needs on a million-trajectory index. So
// the commands that only read a manifest and its index (`data stats`, `data index`) run here, in
// a process without LibTorch; every other command line is handed unchanged to robometer-full,
// the executable next to this one, with execv (same pid, so signals and exit codes are its).
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "robometer/cli/data_index_commands.h"
#include "robometer/cli/run_app.h"
#include "robometer/core/log.h"

namespace {

// True for `robometer [--log-level L] data stats|index ...`.
bool runs_here(int argc, char** argv) {
  int i = 1;
  while (i < argc && std::strncmp(argv[i], "--log-level", 11) == 0) i += std::strchr(argv[i], '=') ? 1 : 2;
  if (i + 1 >= argc || std::strcmp(argv[i], "data") != 0) return false;
  return std::strcmp(argv[i + 1], "stats") == 0 || std::strcmp(argv[i + 1], "index") == 0;
}

int run_here(int argc, char** argv) {
  using namespace robometer;
  CLI::App app{"robometer: train, fine-tune, evaluate and export Robometer-style robot reward models"};
  app.require_subcommand(1);
  app.fallthrough();
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->capture_default_str()
      ->each([](const std::string& level) { spdlog::set_level(parse_log_level(level)); });
  CLI::App* data = app.add_subcommand("data", "Inspect a manifest");
  data->require_subcommand(1);
  int exit_code = 0;
  cli::add_data_stats_subcommand(*data, exit_code);
  cli::add_data_index_subcommand(*data, exit_code);
  return cli::run_app(app, argc, argv, exit_code);
}

}  // namespace

int main(int argc, char** argv) {
  if (runs_here(argc, argv)) {
    // As in robometer-full: a throw while the commands are set up is reported, not std::terminate.
    try {
      return run_here(argc, argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "error: unknown exception\n");
    }
    return 1;
  }
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  const std::string full = (ec ? std::filesystem::path(argv[0]) : self).parent_path() / "robometer-full";
  execv(full.c_str(), argv);
  std::fprintf(stderr, "error: robometer: cannot run %s (%s); it is built next to this executable\n",
               full.c_str(), std::strerror(errno));
  return 127;
}
