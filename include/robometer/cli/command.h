// Subcommand registry: each src/cli/cmd_*.cpp registers itself with a static Registrar, so
// adding a command touches no shared file.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace robometer::cli {

// Adds the command's options to `sub` and sets its callback; the callback stores its exit
// status in `exit_code` (0 ok, 1 runtime error, 2 usage/config error).
using CommandSetup = std::function<void(CLI::App& sub, int& exit_code)>;

struct CommandEntry {
  std::string name;
  std::string summary;
  CommandSetup setup;
};

std::vector<CommandEntry>& command_registry();

struct Registrar {
  Registrar(std::string name, std::string summary, CommandSetup setup) {
    command_registry().push_back({std::move(name), std::move(summary), std::move(setup)});
  }
};

// Global options parsed before the subcommand (shared by all commands).
struct GlobalOptions {
  std::string log_level = "info";
};
GlobalOptions& global_options();

}  // namespace robometer::cli
