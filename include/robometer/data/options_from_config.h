// The data components' options from a run config, built here and nowhere else: the trainer, the
// evaluator, the scorer and the CLI all call these (so training and evaluation cannot drift
// apart in how they resize, sample or seed).
#pragma once
#include <cstdint>

#include "robometer/config/run_config.h"
#include "robometer/data/loader.h"
#include "robometer/data/sampler.h"
#include "robometer/data/video_reader.h"

namespace robometer::data {

// data.resize as a ResizeSpec.
ResizeSpec resize_spec_from_config(const config::RunConfig& cfg);

// data.* pair construction: K, stored-frame cap, strategy ratios, cutoffs, preference-only
// sources, different-task source probability, last-frame partial progress. is_eval stays false:
// held-out pairs keep the random A/B placement (from a fixed seed), since with the chosen clip
// always first a model that always answers "A" would score 100% preference accuracy.
SamplerOptions sampler_options_from_config(const config::RunConfig& cfg);

// The sampling seed: train.seed, salted for evaluation so that evaluation draws from its own
// stream and sees the same pairs every time.
uint64_t sampling_seed_from_config(const config::RunConfig& cfg, bool is_eval);

// Loader options for this rank: the above plus workers, prefetch, batch size, drop_last (off
// for evaluation), samples per epoch and the bad-video threshold.
LoaderOptions loader_options_from_config(const config::RunConfig& cfg, bool is_eval, int rank,
                                         int world_size);

}  // namespace robometer::data
