// `robometer bench memory`: the per-GPU memory plan of a recipe (default the 4B one) for
// dist.shard none / optimizer / gradients / parameters on 1, 8 and 64 GPUs, or one
// --world/--shard pair: weights, gradients, fp32 master, AdamW moments, communication buffers and
// activations at the recipe's batch and checkpointing, and which cards (24/48/80 GB) it fits.
// Arithmetic only (see memory_plan.h); the parameter counts come from building the model.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "robometer/bench/benchmarks.h"
#include "robometer/bench/memory_plan.h"
#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/train/optimizer.h"

namespace robometer::bench {
namespace {

struct Options {
  std::string config = "configs/robometer_4b.yaml";
  std::vector<std::string> overrides;
  int world = 0;                          // 0: 1, 8 and 64
  std::string shard;                      // "": every mode
  int frame_height = 0, frame_width = 0;  // 0: from data.resize (short_edge: 4:3 frames)
};

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// A card fits a plan when the plan leaves 10 % of it to the CUDA context, the caching
// allocator's fragmentation and the vision tower's transient forward.
constexpr double kUsable = 0.9;
constexpr int kCards[] = {24, 48, 80};

int run_bench_memory(const Options& o) {
  auto cfg = config::load_run_config(o.config, o.overrides, config::MissingPaths::Warn).config;
  PairShape pair;
  pair.frames = cfg.data.frames_per_trajectory;
  const auto& rs = cfg.data.resize;
  if (rs.mode == "exact") {
    pair.height = rs.height, pair.width = rs.width;
  } else if (rs.mode == "short_edge") {
    pair.height = rs.short_edge, pair.width = (rs.short_edge * 4 + 2) / 3;  // a 4:3 camera
  }
  if (o.frame_height > 0) pair.height = o.frame_height;
  if (o.frame_width > 0) pair.width = o.frame_width;
  const ParamCensus c = parameter_census(cfg.model, pair);
  const int64_t tokens = c.pair_tokens, h = pair.height, w = pair.width;

  PlanInputs base;
  base.weight_bytes = cfg.model.dtype == "bfloat16" ? 2 : 4;
  base.fp32_master = train::AdamWConfig{}.fp32_master;
  base.bucket_mb = cfg.dist.bucket_mb;
  base.batch = cfg.train.batch_size;
  base.tokens_per_sample = tokens;
  base.checkpointing = model::CheckpointPlan::parse(cfg.model.activation_checkpointing);
  base.activation_bytes = cfg.train.compute_dtype == "float32" ? 4 : 2;

  std::printf(
      "# %s: %.3f B parameters, %.3f B trainable (%lld decoder layers of %.1f M, largest trainable tensor "
      "%.1f M)\n",
      o.config.c_str(), c.total / 1e9, c.trainable / 1e9, static_cast<long long>(c.text_layers),
      c.layer_total / 1e6, c.largest_trainable / 1e6);
  std::printf(
      "# batch %lld pairs/GPU x %lld tokens (2 x %d frames of %lldx%lld), compute %s, activation "
      "checkpointing %s, weights %s\n",
      static_cast<long long>(base.batch), static_cast<long long>(tokens), cfg.data.frames_per_trajectory,
      static_cast<long long>(h), static_cast<long long>(w), cfg.train.compute_dtype.c_str(),
      base.checkpointing.str().c_str(), cfg.model.dtype.c_str());
  std::printf("# GiB per GPU; fits: the total within %.0f %% of the card\n\n", kUsable * 100);
  std::printf(
      "| GPUs | dist.shard | weights | grads | fp32 master | AdamW moments | buffers | activations | total | "
      "fits |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");

  std::vector<int> worlds = o.world > 0 ? std::vector<int>{o.world} : std::vector<int>{1, 8, 64};
  std::vector<std::string> modes =
      !o.shard.empty() ? std::vector<std::string>{o.shard}
                       : std::vector<std::string>{"none", "optimizer", "gradients", "parameters"};
  for (int world : worlds) {
    for (const auto& mode : modes) {
      if (world == 1 && mode != modes.front() && o.shard.empty()) continue;  // one rank: nothing to shard
      PlanInputs in = base;
      in.world = world;
      in.shard = mode;
      const MemoryPlan m = plan_memory(c, in);
      std::string fits;
      for (int card : kCards)
        if (m.total() <= kUsable * card * kGiB)
          fits += (fits.empty() ? "" : ", ") + std::to_string(card) + " GB";
      if (fits.empty()) fits = "none of 24/48/80 GB";
      std::printf("| %d | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | **%.1f** | %s |\n", world,
                  world == 1 ? "(any)" : mode.c_str(), m.weights / kGiB, m.grads / kGiB, m.master / kGiB,
                  m.moments / kGiB, m.buffers / kGiB, m.activations / kGiB, m.total() / kGiB, fits.c_str());
    }
  }
  return 0;
}

}  // namespace

Benchmark memory_benchmark() {
  return {"memory", "Per-GPU memory plan of a recipe for each dist.shard mode and world size (arithmetic)",
          [](CLI::App& sub, int& exit_code) {
            auto o = std::make_shared<Options>();
            sub.add_option("--config", o->config, "run config (YAML)")->capture_default_str();
            sub.add_option("--set", o->overrides, "config override key=value (repeatable)");
            sub.add_option("--world", o->world, "GPUs (default: 1, 8 and 64)");
            sub.add_option("--shard", o->shard, "none|optimizer|gradients|parameters (default: all)")
                ->check(CLI::IsMember({"none", "optimizer", "gradients", "parameters"}));
            sub.add_option("--frame-height", o->frame_height, "frame height (default: from data.resize)");
            sub.add_option("--frame-width", o->frame_width, "frame width (default: 4:3 of data.resize)");
            sub.callback([o, &exit_code] { exit_code = run_bench_memory(*o); });
          }};
}

}  // namespace robometer::bench
