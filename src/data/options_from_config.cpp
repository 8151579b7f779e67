#include "robometer/data/options_from_config.h"

namespace robometer::data {

namespace {
constexpr uint64_t kEvalSeedSalt = 0x5eed0000ULL;
}

ResizeSpec resize_spec_from_config(const config::RunConfig& cfg) {
  const auto& r = cfg.data.resize;
  if (r.mode == "none") return ResizeSpec::none();
  if (r.mode == "exact") return ResizeSpec::exact(r.width, r.height);
  return ResizeSpec::shortest_edge(r.short_edge);
}

SamplerOptions sampler_options_from_config(const config::RunConfig& cfg) {
  const auto& d = cfg.data;
  SamplerOptions o;
  o.frames_per_clip = d.frames_per_trajectory;
  o.max_stored_frames = d.max_stored_frames;
  o.strategy_ratios = {d.strategy_ratios.rewind, d.strategy_ratios.suboptimal,
                       d.strategy_ratios.different_task, d.strategy_ratios.reverse};
  o.success_cutoffs = d.success_cutoffs;
  o.preference_only_sources = {d.preference_only_sources.begin(), d.preference_only_sources.end()};
  o.different_task_same_source_prob = d.different_task_same_source_prob;
  o.last_frame_partial_progress = d.predict_last_frame_partial_progress;
  o.is_eval = false;
  return o;
}

uint64_t sampling_seed_from_config(const config::RunConfig& cfg, bool is_eval) {
  return static_cast<uint64_t>(cfg.train.seed) + (is_eval ? kEvalSeedSalt : 0);
}

LoaderOptions loader_options_from_config(const config::RunConfig& cfg, bool is_eval, int rank,
                                         int world_size) {
  const auto& d = cfg.data;
  LoaderOptions o;
  o.sampling = sampler_options_from_config(cfg);
  o.num_workers = d.num_workers;
  o.prefetch = d.prefetch;
  o.batch_size = cfg.train.batch_size;
  o.drop_last = !is_eval;
  o.resize = resize_spec_from_config(cfg);
  o.autorotate = d.autorotate;
  o.seed = sampling_seed_from_config(cfg, is_eval);
  o.rank = rank;
  o.world_size = world_size;
  o.samples_per_epoch = d.samples_per_epoch;
  o.max_bad_fraction = d.max_bad_fraction;
  return o;
}

}  // namespace robometer::data
