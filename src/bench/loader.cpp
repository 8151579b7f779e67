// `robometer bench loader`: pairs/s and frames/s the data loader delivers (sample a pair, decode
// 2K frames, resize, label, collate) for each worker count. The 4B recipe needs about 10 pairs/s
// (160 frames/s at K = 8) per GPU.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "robometer/bench/benchmarks.h"
#include "robometer/core/error.h"
#include "robometer/data/loader.h"
#include "robometer/data/manifest.h"

namespace robometer::bench {
namespace {

// Process CPU time (all threads): the honest cost figure on a shared machine.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

struct Options {
  std::vector<std::string> manifests;
  std::vector<int> workers{1, 2};
  int batches = 20;
  int batch_size = 8;
  int k = 8;
  int short_edge = 240;
  int prefetch = 2;
  uint64_t seed = 0;
};

int run_bench_loader(const Options& o) {
  if (o.manifests.empty()) throw ConfigError("bench loader: give at least one --manifest DIR");
  if (o.batches < 1) throw ConfigError("bench loader: --batches must be >= 1");
  std::vector<data::WeightedManifest> ms;
  for (const auto& dir : o.manifests) ms.push_back({data::read_manifest(dir), 1.0});
  auto index = std::make_shared<data::TrajectoryIndex>(ms);
  std::printf("%lld trajectories, %zu data source(s); K=%d, batch %d, short edge %d, %d batches per run\n",
              static_cast<long long>(index->size()), index->sources().size(), o.k, o.batch_size, o.short_edge,
              o.batches);
  std::printf("%8s %10s %10s %10s %12s %9s\n", "workers", "pairs/s", "frames/s", "ms/batch", "cpu_ms/pair",
              "bad");
  for (int w : o.workers) {
    if (w < 0) throw ConfigError("bench loader: --workers entries must be >= 0");
    data::LoaderOptions lo;
    lo.num_workers = w;
    lo.batch_size = o.batch_size;
    lo.prefetch = o.prefetch;
    lo.seed = o.seed;
    lo.sampling.frames_per_clip = o.k;
    lo.resize = o.short_edge > 0 ? data::ResizeSpec::shortest_edge(o.short_edge) : data::ResizeSpec::none();
    lo.samples_per_epoch = static_cast<int64_t>(o.batches + 1) * o.batch_size;  // +1: warm-up
    lo.max_bad_fraction = 1.0;
    data::Loader loader(index, lo);
    loader.next();  // warm-up batch: starts the workers, fills the page cache
    int64_t pairs = 0;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    while (auto b = loader.next()) pairs += b->size();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    std::printf("%8d %10.1f %10.1f %10.1f %12.1f %9lld\n", w, pairs / s, pairs * 2.0 * o.k / s,
                1e3 * s / o.batches, 1e3 * cpu / pairs, static_cast<long long>(loader.stats().bad_draws));
    std::fflush(stdout);
  }
  std::printf(
      "(frames/s counts both clips of a pair: 2K frames per pair; cpu_ms/pair is process CPU time\n"
      " of all threads, so 1000 / cpu_ms/pair is the pairs/s one free core sustains)\n");
  return 0;
}

}  // namespace

Benchmark loader_benchmark() {
  return {"loader", "Data loader throughput: pairs/s and frames/s per worker count",
          [](CLI::App& sub, int& exit_code) {
            auto o = std::make_shared<Options>();
            sub.add_option("--manifest", o->manifests, "manifest directory (repeatable)")->required();
            sub.add_option("--workers", o->workers, "worker counts to compare, e.g. 1,2")
                ->delimiter(',')
                ->capture_default_str();
            sub.add_option("--batches", o->batches, "timed batches per worker count")->capture_default_str();
            sub.add_option("--batch-size", o->batch_size, "pairs per batch")->capture_default_str();
            sub.add_option("--k", o->k, "frames per clip")->capture_default_str();
            sub.add_option("--short-edge", o->short_edge, "resize short edge (0 = native)")
                ->capture_default_str();
            sub.add_option("--prefetch", o->prefetch, "batches buffered ahead")->capture_default_str();
            sub.add_option("--seed", o->seed, "sampling seed")->capture_default_str();
            sub.callback([o, &exit_code] { exit_code = run_bench_loader(*o); });
          }};
}

}  // namespace robometer::bench
