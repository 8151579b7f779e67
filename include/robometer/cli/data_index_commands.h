// `robometer data stats DIR` and `robometer data index DIR`: the commands that read only the
// manifest and its binary index. They are added to the `data` command of the full binary and of
// the front end (src/cli/front/main.cpp), which runs them without loading LibTorch.
#pragma once
#include <CLI/CLI.hpp>

namespace robometer::cli {

// `data stats DIR [--index auto|require|off] [--config FILE]`: trajectories and frames per data
// source, task and quality (from the binary index, built first when missing; `--index off`
// parses trajectories.jsonl), and the per-source rules a training run with FILE applies.
void add_data_stats_subcommand(CLI::App& data, int& exit_code);

// `data index DIR`: builds DIR/trajectories.rbmidx from the manifest.
void add_data_index_subcommand(CLI::App& data, int& exit_code);

}  // namespace robometer::cli
