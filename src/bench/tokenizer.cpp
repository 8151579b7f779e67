// `robometer bench tokenizer` (moved out of cmd_tokenize.cpp): load time, encode throughput,
// and processor cost of the 8-frame progress query and the 8+8-frame pair at 240x320.
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "robometer/bench/benchmarks.h"
#include "robometer/core/error.h"
#include "robometer/model/processor.h"
#include "robometer/model/tokenizer.h"

namespace robometer::bench {
namespace {

int run_bench(const std::string& tokenizer_path, int reps) {
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::filesystem::path path =
      tokenizer_path.empty() ? model::locate_tokenizer_json() : std::filesystem::path(tokenizer_path);
  if (path.empty()) throw ConfigError("bench tokenizer: no tokenizer.json found (--tokenizer PATH)");
  // Where a load's time goes: parsing the JSON (no cache), then through the binary cache (the
  // first such load writes it if it is missing or stale, the second reads it).
  auto timed_load = [&](const char* what, model::TokenizerCache mode) {
    const auto t = clock::now();
    model::Tokenizer loaded = model::Tokenizer::robometer_from_file(path, mode);
    const double total = ms(clock::now() - t);
    const auto& s = loaded.load_stats();
    std::printf(
        "load %-26s %8.1f ms  (read+hash %.1f, %s %.1f, vocab maps %.1f, merges %.1f, regex %.1f%s)\n", what,
        total, s.read_ms, s.from_cache ? "cache read" : "JSON parse", s.parse_ms, s.vocab_ms, s.merges_ms,
        s.regex_ms,
        s.cache_write_ms > 0 ? (", cache write " + std::to_string(s.cache_write_ms)).c_str() : "");
    return std::make_pair(total, std::move(loaded));
  };
  const double json_ms = timed_load("tokenizer.json, no cache", model::TokenizerCache::Off).first;
  (void)timed_load("tokenizer.json, cache", model::TokenizerCache::Use);
  auto [cached_ms, tok] = timed_load("from cache", model::TokenizerCache::Use);
  std::printf("load: cached / JSON = %.2f (cache: %s)\n", cached_ms / json_ms,
              tok.load_stats().from_cache ? tok.load_stats().cache_path.c_str() : "not usable here");
  auto t0 = clock::now();

  // Fresh words each rep so the per-word cache does not hide the BPE cost.
  std::string text;
  for (int i = 0; i < 2000; ++i)
    text += "The robot number " + std::to_string(i * 7919) + " picks up cup_" + std::to_string(i) +
            " and moves it. ";
  t0 = clock::now();
  const auto ids = tok.encode(text);
  const double cold = ms(clock::now() - t0);
  t0 = clock::now();
  for (int r = 0; r < reps; ++r) (void)tok.encode(text);
  const double warm = ms(clock::now() - t0) / reps;
  std::printf("encode %zu bytes -> %zu ids: cold %.1f ms (%.1f MB/s), cached %.1f ms (%.1f MB/s)\n",
              text.size(), ids.size(), cold, text.size() / cold / 1e3, warm, text.size() / warm / 1e3);

  const model::Processor proc(tok);
  const at::Tensor frames = at::randint(0, 256, {8, 240, 320, 3}, at::kByte);
  t0 = clock::now();
  for (int r = 0; r < reps; ++r) (void)proc.progress_inputs({{"pick up the cup", frames}});
  std::printf("progress_inputs 8 x 240x320      %8.1f ms\n", ms(clock::now() - t0) / reps);
  t0 = clock::now();
  for (int r = 0; r < reps; ++r) (void)proc.pair_inputs({{"pick up the cup", frames, frames}});
  std::printf("pair_inputs 8+8 x 240x320        %8.1f ms\n", ms(clock::now() - t0) / reps);
  return 0;
}

}  // namespace

Benchmark tokenizer_benchmark() {
  return {"tokenizer", "Tokenizer load/encode speed and processor cost per query",
          [](CLI::App& sub, int& exit_code) {
            auto path = std::make_shared<std::string>();
            auto reps = std::make_shared<int>(5);
            sub.add_option("--tokenizer", *path, "tokenizer.json");
            sub.add_option("--reps", *reps, "repetitions")->check(CLI::PositiveNumber);
            sub.callback([path, reps, &exit_code] { exit_code = run_bench(*path, *reps); });
          }};
}

}  // namespace robometer::bench
