// `robometer bench`: groups the registered benchmarks as sub-subcommands.
#include <algorithm>

#include "robometer/bench/benchmarks.h"
#include "robometer/cli/bench.h"

namespace robometer::cli {

std::vector<CommandEntry>& bench_registry() {
  static std::vector<CommandEntry> entries;
  return entries;
}

namespace {
Registrar reg("bench", "Run a benchmark and print its figures (see `robometer bench --help`)",
              [](CLI::App& sub, int& exit_code) {
                sub.require_subcommand(1);
                auto& entries = bench_registry();  // benchmarks registered in src/cli, then the bench layer's
                for (auto& b : bench::benchmarks()) entries.push_back({b.name, b.summary, b.setup});
                std::sort(entries.begin(), entries.end(),
                          [](const auto& a, const auto& b) { return a.name < b.name; });
                for (auto& e : entries) e.setup(*sub.add_subcommand(e.name, e.summary), exit_code);
              });
}  // namespace
}  // namespace robometer::cli
