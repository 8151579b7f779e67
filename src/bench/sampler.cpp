// `robometer bench sampler --manifest DIR`: open time, resident memory and pairs/s of the pair
// sampler on the memory-mapped binary index against the JSONL path (trajectories.jsonl parsed
// into an in-memory index), measured in the same run on the same manifest, and whether both
// produce the same pairs. The target is >= 100k pairs/s on a 1M-trajectory manifest.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "robometer/bench/benchmarks.h"
#include "robometer/core/error.h"
#include "robometer/data/binary_index.h"
#include "robometer/data/sampler.h"
#include "robometer/data/trajectory_index.h"

namespace robometer::bench {
namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Resident set of this process in MB (VmRSS).
double rss_mb() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return -1;
}

struct Options {
  std::string manifest;
  int64_t pairs = 200000;
  uint64_t seed = 0;
  bool skip_jsonl = false;
};

// FNV-style digest of every decision in a plan (frames, labels, strategy, order).
uint64_t digest(uint64_t h, const data::PairPlan& p) {
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 0x100000001B3ULL; };
  for (const data::ClipPlan* c : {&p.chosen, &p.rejected}) {
    mix(static_cast<uint64_t>(c->trajectory));
    mix(static_cast<uint64_t>(c->order));
    for (int64_t i : c->video_indices) mix(static_cast<uint64_t>(i));
    for (double v : c->progress) mix(static_cast<uint64_t>(v * 1e9));
    for (double v : c->success_mask) mix(static_cast<uint64_t>(v));
  }
  mix(static_cast<uint64_t>(p.strategy));
  mix(p.chosen_first);
  return h;
}

struct Run {
  double pairs_per_s = 0;
  uint64_t digest = 0;
};

Run sample(const std::shared_ptr<const data::TrajectoryIndex>& index, const Options& o) {
  data::PairSampler sampler(index, data::SamplerOptions{});
  Run r;
  r.digest = 0xCBF29CE484222325ULL;
  const auto t0 = Clock::now();
  for (int64_t n = 0; n < o.pairs; ++n) {
    data::Rng rng(data::hash_seed({o.seed, static_cast<uint64_t>(n)}));
    r.digest = digest(r.digest, sampler.sample(rng));
  }
  r.pairs_per_s = o.pairs / since(t0);
  return r;
}

int run_bench_sampler(const Options& o) {
  if (o.pairs < 1) throw ConfigError("bench sampler: --pairs must be >= 1");
  const double rss0 = rss_mb();
  // The index path: make sure the index exists (a build is reported, not timed as "open").
  {
    const auto tb = Clock::now();
    auto img = data::open_index(o.manifest, data::IndexPolicy::Auto);
    std::printf("index %s: %.1f MB on disk, %lld trajectories (ready in %.2f s incl. any build)\n",
                img->what().c_str(), img->byte_size() / 1e6, static_cast<long long>(img->num_trajectories()),
                since(tb));
  }
  const double rss1 = rss_mb();
  auto t0 = Clock::now();
  auto mapped = data::open_trajectory_index({{o.manifest, 1.0}}, data::IndexPolicy::Require);
  const double open_index_s = since(t0);
  const double rss_index_open = rss_mb() - rss1;
  const Run mr = sample(mapped, o);
  const double rss_index_sampled = rss_mb() - rss1;
  std::printf("\n%-22s %10s %12s %14s %12s\n", "path", "open_s", "rss_open_MB", "rss_sampled_MB", "pairs/s");
  std::printf("%-22s %10.3f %12.1f %14.1f %12.0f\n", "binary index (mmap)", open_index_s, rss_index_open,
              rss_index_sampled, mr.pairs_per_s);
  std::fflush(stdout);
  mapped.reset();
  if (o.skip_jsonl) return 0;

  const double rss2 = rss_mb();
  t0 = Clock::now();
  auto parsed = data::open_trajectory_index({{o.manifest, 1.0}}, data::IndexPolicy::Off);
  const double open_jsonl_s = since(t0);
  const double rss_jsonl_open = rss_mb() - rss2;
  const Run jr = sample(parsed, o);
  const double rss_jsonl_sampled = rss_mb() - rss2;
  std::printf("%-22s %10.3f %12.1f %14.1f %12.0f\n", "JSONL (parsed)", open_jsonl_s, rss_jsonl_open,
              rss_jsonl_sampled, jr.pairs_per_s);
  std::printf("\nopen: index %.1fx faster; sampling: %.2fx; %lld pairs %s (digest %016llx)\n",
              open_jsonl_s / open_index_s, mr.pairs_per_s / jr.pairs_per_s, static_cast<long long>(o.pairs),
              mr.digest == jr.digest ? "identical on both paths" : "DIFFER between the paths",
              static_cast<unsigned long long>(mr.digest));
  std::printf("(rss columns: growth of this process's resident set over the stage's start; start %.1f MB)\n",
              rss0);
  return mr.digest == jr.digest ? 0 : 1;
}

}  // namespace

Benchmark sampler_benchmark() {
  return {"sampler", "Pair sampler on the binary index vs the JSONL path: open time, memory, pairs/s",
          [](CLI::App& sub, int& exit_code) {
            auto o = std::make_shared<Options>();
            sub.add_option("--manifest", o->manifest, "manifest directory")->required();
            sub.add_option("--pairs", o->pairs, "pairs sampled per path")->capture_default_str();
            sub.add_option("--seed", o->seed, "sampling seed")->capture_default_str();
            sub.add_flag("--skip-jsonl", o->skip_jsonl, "measure the index path only");
            sub.callback([o, &exit_code] { exit_code = run_bench_sampler(*o); });
          }};
}

}  // namespace robometer::bench
