// `robometer bench checkpoint-hash`: XXH64 throughput (the per-file content hash COMPLETE
// records), in memory and through a file in the page cache as resume reads it, and what that
// costs for a 4B checkpoint: bf16 weights (~9 GB) plus full AdamW state (fp32 master and two
// moments, ~48 GB).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "robometer/bench/benchmarks.h"
#include "robometer/io/xxhash64.h"

namespace robometer::bench {
namespace {

struct Options {
  int mb = 512;
  int repeat = 3;
};

double seconds(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int run_bench_hash(const Options& o) {
  const size_t bytes = static_cast<size_t>(o.mb) << 20;
  std::vector<unsigned char> buf(bytes);
  for (size_t i = 0; i < bytes; ++i) buf[i] = static_cast<unsigned char>((i * 2654435761u) >> 13);
  double best_mem = 1e30;
  uint64_t h = 0;
  for (int r = 0; r < o.repeat; ++r) {
    const auto t = std::chrono::steady_clock::now();
    h ^= io::xxh64(buf.data(), buf.size());
    best_mem = std::min(best_mem, seconds(t));
  }
  const auto path = std::filesystem::temp_directory_path() /
                    ("robometer_bench_hash_" + std::to_string(::getpid()) + ".bin");
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(bytes));
  }
  double best_file = 1e30;
  for (int r = 0; r < o.repeat; ++r) {
    const auto t = std::chrono::steady_clock::now();
    h ^= io::xxh64_file(path.string());
    best_file = std::min(best_file, seconds(t));
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);
  const double mem_gbs = bytes / best_mem / 1e9, file_gbs = bytes / best_file / 1e9;
  std::printf("bench checkpoint-hash: XXH64 over %d MiB, best of %d (one core)\n", o.mb, o.repeat);
  std::printf("  in memory:            %6.2f GB/s\n", mem_gbs);
  std::printf("  file (page cache):    %6.2f GB/s\n", file_gbs);
  std::printf("  4B bf16 weights  9 GB: %5.1f s to hash at resume and at save\n", 9.0 / file_gbs);
  std::printf("  + AdamW state   57 GB: %5.1f s (full fine-tune: fp32 master + 2 moments)\n",
              57.0 / file_gbs);
  std::printf("  (digest %016llx)\n", static_cast<unsigned long long>(h));
  return 0;
}

}  // namespace

Benchmark checkpoint_hash_benchmark() {
  return {"checkpoint-hash", "Throughput of the checkpoint content hash (XXH64) and its cost at 4B",
          [](CLI::App& sub, int& exit_code) {
            auto o = std::make_shared<Options>();
            sub.add_option("--mb", o->mb, "buffer size in MiB")->capture_default_str();
            sub.add_option("--repeat", o->repeat, "repetitions (best is printed)")->capture_default_str();
            sub.callback([o, &exit_code] { exit_code = run_bench_hash(*o); });
          }};
}

}  // namespace robometer::bench
