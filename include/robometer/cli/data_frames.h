// `robometer data frames`: defined in src/cli/cmd_data_frames.cpp, added to `data` by cmd_data.cpp.
#pragma once
#include <CLI/CLI.hpp>

namespace robometer::cli {

// Adds the `frames` subcommand to the `data` command.
void add_data_frames_subcommand(CLI::App& data_cmd, int& exit_code);

}  // namespace robometer::cli
