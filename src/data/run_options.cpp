#include "robometer/data/run_options.h"

namespace robometer::data {

ResizeSpec resize_spec(const config::ResizeConfig& r) {
  if (r.mode == "none") return ResizeSpec::none();
  if (r.mode == "exact") return ResizeSpec::exact(r.width, r.height);
  return ResizeSpec::shortest_edge(r.short_edge, r.keep_square);
}

SamplerOptions sampler_options(const config::DataConfig& d) {
  SamplerOptions o;
  o.frames_per_clip = d.frames_per_trajectory;
  o.max_stored_frames = d.max_stored_frames;
  o.strategy_ratios = {d.strategy_ratios.rewind, d.strategy_ratios.suboptimal,
                       d.strategy_ratios.different_task, d.strategy_ratios.reverse};
  o.success_cutoffs = d.success_cutoffs;
  for (const auto& [source, category] : d.source_categories) {
    if (category.find("preference_only") != std::string::npos) o.preference_only_sources.insert(source);
    if (category.find("suboptimal_fail") != std::string::npos) o.suboptimal_fail_sources.insert(source);
  }
  o.preference_only_sources.insert(d.preference_only_sources.begin(), d.preference_only_sources.end());
  o.partial_success_progress_match = d.partial_success_progress_match;
  o.different_task_same_source_prob = d.different_task_same_source_prob;
  o.last_frame_partial_progress = d.predict_last_frame_partial_progress;
  o.mixing = d.mixing == "strategy_first" ? Mixing::StrategyFirst : Mixing::Rbm;
  return o;
}

}  // namespace robometer::data
