// `robometer bench score`: dense-mode rewards/s (one K-frame prefix query per video frame,
// batched) of a randomly initialised model. --config takes a run YAML (default configs/tiny.yaml)
// or a backbone config.json (e.g. configs/models/qwen3vl_4b.json, bf16 on CUDA).
#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "robometer/bench/benchmarks.h"
#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/eval/scorer.h"
#include "robometer/export/load.h"

namespace robometer::bench {
namespace {
namespace fs = std::filesystem;

struct Options {
  std::string config = "configs/tiny.yaml", device = "auto";
  int frames = 32, size = 64, k = 8, batch_size = 8, repeats = 2;
};

int run(const Options& o) {
  const at::Device device = eval::pick_device(o.device);
  eval::LoadedModel m;
  if (fs::path(o.config).extension() == ".json") {
    config::RunConfig cfg;
    cfg.model.config_json = o.config;
    cfg.model.dtype = device.is_cuda() ? "bfloat16" : "float32";
    m.config = cfg;
    m.bundle = model::build_model(cfg.model, device, 0);
  } else {
    m = eval::load_untrained(o.config, device);
  }
  m.bundle.model->eval();
  eval::Scorer scorer(m.bundle, {o.k, o.batch_size});
  at::manual_seed(0);
  const at::Tensor video = at::randint(0, 256, {o.frames, o.size, o.size, 3}, at::kByte);
  scorer.dense(video.slice(0, 0, std::min(o.frames, o.batch_size)), "warm up");  // first-call costs
  if (device.is_cuda()) torch::cuda::synchronize();
  double best = 1e30;
  for (int r = 0; r < o.repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto res = scorer.dense(video, "pick up the cube and place it in the bowl");
    if (device.is_cuda()) torch::cuda::synchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
    if (res.progress.size() != static_cast<size_t>(o.frames)) throw Error("bench score: wrong output length");
  }
  std::printf(
      "bench score: %s on %s, %d frames %dx%d, K=%d, batch %d: %.3f s per video, %.2f rewards/s (best of "
      "%d)\n",
      o.config.c_str(), device.str().c_str(), o.frames, o.size, o.size, o.k, o.batch_size, best,
      o.frames / best, o.repeats);
  return 0;
}

}  // namespace

Benchmark score_benchmark() {
  return {
      "score", "Dense-mode reward scoring throughput (rewards/s)", [](CLI::App& sub, int& exit_code) {
        auto o = std::make_shared<Options>();
        sub.add_option("--config", o->config, "run YAML or backbone config.json")->capture_default_str();
        sub.add_option("--frames", o->frames, "video length (= rewards per video)")->capture_default_str();
        sub.add_option("--size", o->size, "frame height = width")->capture_default_str();
        sub.add_option("--k", o->k, "frames per query")->capture_default_str();
        sub.add_option("--batch-size", o->batch_size, "queries per forward")->capture_default_str();
        sub.add_option("--repeats", o->repeats, "timed runs")->capture_default_str();
        sub.add_option("--device", o->device, "auto | cpu | cuda")->capture_default_str();
        sub.callback([o, &exit_code] { exit_code = run(*o); });
      }};
}

}  // namespace robometer::bench
