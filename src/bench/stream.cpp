// `robometer bench stream`: streaming rewards (model/stream_session.h) of a randomly initialised
// model: ms per new frame at episode lengths T (flat in T: one KV-cached step per frame),
// rewards/s with S concurrent sessions (one packed forward per step over S new frames), and
// dense-mode scoring (bench score's figure) measured in the same run for the ratio.
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "robometer/bench/benchmarks.h"
#include "robometer/core/error.h"
#include "robometer/eval/scorer.h"
#include "robometer/export/load.h"
#include "robometer/model/stream_session.h"

namespace robometer::bench {
namespace {
namespace fs = std::filesystem;

struct Options {
  std::string config = "configs/tiny.yaml", device = "auto", lengths = "8,64,256", sessions = "1,8,64";
  int size = 64, steps = 8, dense_frames = 32, k = 8, batch_size = 8;
  bool padded = false;
};

std::vector<int> parse_list(const std::string& s, const char* flag) {
  std::vector<int> v;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      v.push_back(std::stoi(item));
    } catch (const std::exception&) {
      throw ConfigError(std::string(flag) + ": '" + s + "' is not a comma-separated list of integers");
    }
    if (v.back() < 1) throw ConfigError(std::string(flag) + ": values must be >= 1");
  }
  if (v.empty()) throw ConfigError(std::string(flag) + ": empty list");
  return v;
}

double seconds_since(std::chrono::steady_clock::time_point t0, const at::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const Options& o) {
  const auto lengths = parse_list(o.lengths, "--lengths");
  const auto concurrency = parse_list(o.sessions, "--sessions");
  const at::Device device = eval::pick_device(o.device);
  eval::LoadedModel m;
  if (fs::path(o.config).extension() == ".json") {
    m.config.model.config_json = o.config;
    m.config.model.dtype = device.is_cuda() ? "bfloat16" : "float32";
    m.bundle = model::build_model(m.config.model, device, 0);
  } else {
    m = eval::load_untrained(o.config, device);
  }
  m.bundle.model->eval();
  const std::string task = "pick up the cube and place it in the bowl";
  at::manual_seed(0);
  const int longest = *std::max_element(lengths.begin(), lengths.end());
  const at::Tensor video =
      at::randint(0, 256, {std::max(longest, o.dense_frames), o.size, o.size, 3}, at::kByte);
  model::StreamModel stream(m.bundle);
  std::printf("bench stream: %s on %s, frames %dx%d\n", o.config.c_str(), device.str().c_str(), o.size,
              o.size);

  // 1. One session, one frame per step: the cost of frame T, averaged over frames T-w+1..T.
  {
    auto warm = stream.open(task);
    for (int i = 0; i < 4; ++i) stream.append({warm.get()}, {video.slice(0, i, i + 1)});
    auto s = stream.open(task);
    std::vector<double> ms(static_cast<size_t>(longest));
    std::vector<int64_t> tokens(static_cast<size_t>(longest));
    for (int t = 0; t < longest; ++t) {
      const auto t0 = std::chrono::steady_clock::now();
      stream.append({s.get()}, {video.slice(0, t, t + 1)});
      ms[static_cast<size_t>(t)] = 1e3 * seconds_since(t0, device);
      tokens[static_cast<size_t>(t)] = s->tokens();
    }
    for (int T : lengths) {
      const int w = std::min(T, 8);
      double sum = 0;
      for (int t = T - w; t < T; ++t) sum += ms[static_cast<size_t>(t)];
      std::printf("  ms per frame at T = %4d: %8.3f  (mean of frames %d..%d; %lld tokens cached at T)\n", T,
                  sum / w, T - w + 1, T, static_cast<long long>(tokens[static_cast<size_t>(T - 1)]));
    }
  }

  // 2. S sessions, each step one new frame for every session in one packed forward; attention
  // per session (the default) and over the caches padded into one batch (the alternative).
  model::StreamOptions padded_opts;
  padded_opts.padded_attention = true;
  model::StreamModel padded(m.bundle, padded_opts);
  auto rewards_per_s = [&](model::StreamModel& sm, int S) {
    std::vector<std::unique_ptr<model::StreamSession>> owned;
    std::vector<model::StreamSession*> ptrs;
    for (int i = 0; i < S; ++i) {
      owned.push_back(sm.open(task));
      ptrs.push_back(owned.back().get());
    }
    auto step = [&](int t) {
      const at::Tensor f = video.slice(0, t % video.size(0), t % video.size(0) + 1);
      sm.append(ptrs, std::vector<at::Tensor>(static_cast<size_t>(S), f));
    };
    step(0);  // the prompt head + first frame: not a steady-state step
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 1; t <= o.steps; ++t) step(t);
    return static_cast<double>(S) * o.steps / seconds_since(t0, device);
  };
  double best_stream = 0;
  for (int S : concurrency) {
    const double rps = rewards_per_s(stream, S);
    const double rps_padded = o.padded ? rewards_per_s(padded, S) : 0.0;
    best_stream = std::max(best_stream, rps);
    std::printf("  %3d concurrent sessions: %9.1f rewards/s (%.2f ms per step of %d frames)", S, rps,
                1e3 * S / rps, S);
    if (o.padded) std::printf("; padded caches: %9.1f rewards/s", rps_padded);
    std::printf("\n");
  }

  // 3. Dense mode over a video of dense_frames frames, as `bench score` measures it.
  eval::Scorer scorer(m.bundle, {o.k, o.batch_size});
  const at::Tensor clip = video.slice(0, 0, o.dense_frames);
  scorer.dense(clip.slice(0, 0, std::min(o.dense_frames, o.batch_size)), task);  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  scorer.dense(clip, task);
  const double dense_rps = o.dense_frames / seconds_since(t0, device);
  std::printf("  dense mode (K = %d, batch %d, %d frames): %9.1f rewards/s\n", o.k, o.batch_size,
              o.dense_frames, dense_rps);
  std::printf("  ratio best stream / dense: %.1fx\n", best_stream / dense_rps);
  return 0;
}

}  // namespace

Benchmark stream_benchmark() {
  return {"stream", "Streaming rewards: ms per frame vs episode length, rewards/s vs sessions, vs dense",
          [](CLI::App& sub, int& exit_code) {
            auto o = std::make_shared<Options>();
            sub.add_option("--config", o->config, "run YAML or backbone config.json")->capture_default_str();
            sub.add_option("--lengths", o->lengths, "episode lengths T to report")->capture_default_str();
            sub.add_option("--sessions", o->sessions, "concurrent session counts")->capture_default_str();
            sub.add_option("--steps", o->steps, "timed steps per session count")->capture_default_str();
            sub.add_option("--size", o->size, "frame height = width")->capture_default_str();
            sub.add_option("--dense-frames", o->dense_frames, "video length for the dense figure")
                ->capture_default_str();
            sub.add_option("--k", o->k, "frames per dense query")->capture_default_str();
            sub.add_option("--batch-size", o->batch_size, "dense queries per forward")->capture_default_str();
            sub.add_option("--device", o->device, "auto | cpu | cuda")->capture_default_str();
            sub.add_flag("--padded", o->padded, "also measure attention over padded caches");
            sub.callback([o, &exit_code] { exit_code = run(*o); });
          }};
}

}  // namespace robometer::bench
