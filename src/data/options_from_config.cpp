#include "robometer/data/options_from_config.h"

#include "robometer/data/run_options.h"

namespace robometer::data {

namespace {
constexpr uint64_t kEvalSeedSalt = 0x5eed0000ULL;
}

ResizeSpec resize_spec_from_config(const config::RunConfig& cfg) { return resize_spec(cfg.data.resize); }

SamplerOptions sampler_options_from_config(const config::RunConfig& cfg) {
  SamplerOptions o = sampler_options(cfg.data);
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
