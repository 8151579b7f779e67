// `robometer bench <name>`: benchmarks register here (like commands) and print figures.
#pragma once
#include <CLI/CLI.hpp>

#include "robometer/cli/command.h"

namespace robometer::cli {

std::vector<CommandEntry>& bench_registry();

struct BenchRegistrar {
  BenchRegistrar(std::string name, std::string summary, CommandSetup setup) {
    bench_registry().push_back({std::move(name), std::move(summary), std::move(setup)});
  }
};

}  // namespace robometer::cli
