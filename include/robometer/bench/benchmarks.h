// The benchmarks of `robometer bench <name>` (their own layer: they build trainers, loaders,
// models and scorers, which the CLI only dispatches to). Each is a CLI11 subcommand setup; the
// list is explicit because a static library drops self-registering objects nobody refers to.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace robometer::bench {

struct Benchmark {
  std::string name;
  std::string summary;
  std::function<void(CLI::App& sub, int& exit_code)> setup;  // options, then the callback
};

// Every benchmark of this layer.
std::vector<Benchmark> benchmarks();

// One per source file of src/bench/.
Benchmark checkpoint_hash_benchmark();
Benchmark decode_benchmark();
Benchmark loader_benchmark();
Benchmark memory_benchmark();
Benchmark model_step_benchmark();
Benchmark sampler_benchmark();
Benchmark score_benchmark();
Benchmark step_benchmark();
Benchmark stream_benchmark();
Benchmark tokenizer_benchmark();

}  // namespace robometer::bench
