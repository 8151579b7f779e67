// The data layer's options as a run config implies them, shared by training and evaluation (the
// per-source rules and filters they share with `robometer data stats`: source_filters.h).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "robometer/config/run_config.h"
#include "robometer/data/sampler.h"
#include "robometer/data/source_filters.h"
#include "robometer/data/trajectory_index.h"
#include "robometer/data/video_reader.h"

namespace robometer::data {

ResizeSpec resize_spec(const config::ResizeConfig& r);

// data.* -> SamplerOptions (frames, ratios, cutoffs, categories, mixing, partial-success rules).
SamplerOptions sampler_options(const config::DataConfig& d);

}  // namespace robometer::data
