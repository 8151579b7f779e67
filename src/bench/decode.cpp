// `robometer bench decode`: frames/s of the trainer's access pattern on real files. For each
// file, `--repeat` trajectories each open the file, pick a random sub-clip [start, end], take K
// frames at round(linspace(start, end, K)) and decode + resize them (short edge S, bilinear).
// scripts/bench/decode_pyav.py draws the same plan (same generator) for the PyAV comparison.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "robometer/bench/benchmarks.h"
#include "robometer/core/error.h"
#include "robometer/data/video_reader.h"

namespace robometer::bench {
namespace {

// splitmix64: tiny, well-mixed and easy to reproduce bit-exactly in Python.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The frame indices of every trajectory for one file (file_no-th in the list).
std::vector<std::vector<int64_t>> sample_plan(int64_t num_frames, int k, int trajectories, uint64_t seed,
                                              uint64_t file_no) {
  uint64_t state = seed * 0x100000001B3ull + file_no;
  std::vector<std::vector<int64_t>> plan;
  for (int t = 0; t < trajectories; ++t) {
    std::vector<int64_t> idx(k, 0);
    if (num_frames >= 2) {
      const int64_t start = static_cast<int64_t>(splitmix64(state) % static_cast<uint64_t>(num_frames - 1));
      const int64_t end =
          start + 1 + static_cast<int64_t>(splitmix64(state) % static_cast<uint64_t>(num_frames - 1 - start));
      for (int j = 0; j < k; ++j)
        idx[j] = static_cast<int64_t>(
            std::floor(start + (end - start) * (k > 1 ? double(j) / (k - 1) : 0.0) + 0.5));
    }
    plan.push_back(std::move(idx));
  }
  return plan;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

struct Options {
  std::vector<std::string> files;
  int k = 8;
  int short_edge = 240;
  int repeat = 20;
  int threads = 1;
  uint64_t seed = 0;
  bool csv = false;
};

int run_bench_decode(const Options& o) {
  if (o.files.empty()) throw ConfigError("bench decode: give at least one file with --files");
  if (o.k < 1 || o.repeat < 1) throw ConfigError("bench decode: --k and --repeat must be >= 1");
  data::VideoReaderOptions ro;
  ro.threads = o.threads;
  if (o.short_edge > 0) ro.resize = data::ResizeSpec::shortest_edge(o.short_edge);

  if (o.csv)
    std::printf(
        "file,codec,src,out,frames,trajectories,k,frames_per_s,frames_per_cpu_s,ms_per_traj,decoded_per_traj,"
        "seeks_per_traj\n");
  else
    std::printf("%-44s %-5s %9s %9s %6s %7s %9s %9s %8s %8s\n", "file", "codec", "source", "output", "frames",
                "fps", "fps/cpu", "ms/traj", "dec/traj", "seek/trj");
  for (size_t f = 0; f < o.files.size(); ++f) {
    const std::string& path = o.files[f];
    data::VideoReader probe(path, ro);  // also warms the page cache
    const auto plan = sample_plan(probe.num_frames(), o.k, o.repeat, o.seed, f);
    probe.frames(plan[0]);

    int64_t decoded = 0, seeks = 0;
    const double cpu0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& idx : plan) {
      data::VideoReader r(path, ro);  // the loader opens per sample too
      at::Tensor batch = r.frames(idx);
      decoded += r.stats().frames_decoded;
      seeks += r.stats().seeks;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    const double n = static_cast<double>(o.k) * o.repeat;
    const std::string src =
        std::to_string(probe.source_width()) + "x" + std::to_string(probe.source_height());
    const std::string out = std::to_string(probe.width()) + "x" + std::to_string(probe.height());
    if (o.csv)
      std::printf("%s,%s,%s,%s,%lld,%d,%d,%.1f,%.1f,%.3f,%.1f,%.2f\n", path.c_str(),
                  probe.codec_name().c_str(), src.c_str(), out.c_str(),
                  static_cast<long long>(probe.num_frames()), o.repeat, o.k, n / wall, n / cpu,
                  1e3 * wall / o.repeat, double(decoded) / o.repeat, double(seeks) / o.repeat);
    else {
      std::string name = path.size() > 44 ? "..." + path.substr(path.size() - 41) : path;
      std::printf("%-44s %-5s %9s %9s %6lld %7.1f %9.1f %8.2f %8.1f %8.2f\n", name.c_str(),
                  probe.codec_name().c_str(), src.c_str(), out.c_str(),
                  static_cast<long long>(probe.num_frames()), n / wall, n / cpu, 1e3 * wall / o.repeat,
                  double(decoded) / o.repeat, double(seeks) / o.repeat);
    }
    std::fflush(stdout);
  }
  if (!o.csv)
    std::printf("(%d trajectories/file × K=%d frames, open + decode + %s, %d decoder thread(s), %s)\n",
                o.repeat, o.k,
                o.short_edge > 0 ? ("short edge " + std::to_string(o.short_edge)).c_str() : "native size",
                o.threads, data::ffmpeg_version().c_str());
  return 0;
}

}  // namespace

Benchmark decode_benchmark() {
  return {"decode", "Video decode throughput for the trainer's sampling (K frames per random sub-clip)",
          [](CLI::App& sub, int& exit_code) {
            auto o = std::make_shared<Options>();
            sub.add_option("--files", o->files, "video files to read")->required();
            sub.add_option("--k", o->k, "frames per trajectory")->capture_default_str();
            sub.add_option("--short-edge", o->short_edge, "resize short edge (0 = native)")
                ->capture_default_str();
            sub.add_option("--repeat", o->repeat, "trajectories per file")->capture_default_str();
            sub.add_option("--threads", o->threads, "decoder threads (0 = auto)")->capture_default_str();
            sub.add_option("--seed", o->seed, "sampling seed")->capture_default_str();
            sub.add_flag("--csv", o->csv, "machine-readable output");
            sub.callback([o, &exit_code] { exit_code = run_bench_decode(*o); });
          }};
}

}  // namespace robometer::bench
