// Robometer's pair construction (spec §2.6, after the original StrategyFirstDataset + PrefSampler):
// draw a strategy by its ratio, a data source (uniform or by weight), a trajectory eligible for
// that strategy, then build the chosen clip (forward sub-clip) and the rejected clip (rewind,
// reverse, a same-task suboptimal/failed trajectory, or a different task's trajectory).
//
// The sampler only decides frame indices and labels (a PairPlan); the loader decodes the frames.
// Every random decision comes from the Rng passed in, so a plan is a pure function of the seed.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "robometer/data/rng.h"
#include "robometer/data/sample.h"
#include "robometer/data/trajectory_index.h"

namespace robometer::data {

// How the trajectory of a pair is drawn (the original's data.dataset_type).
enum class Mixing {
  // RBMDataset (the original's default): a trajectory, in proportion to its source's size (times
  // the source weight), then the strategy by ratio with rebalancing (PrefSampler).
  Rbm,
  // StrategyFirstDataset: the strategy by ratio, then a source (uniform or by weight), then a
  // trajectory eligible for the strategy.
  StrategyFirst,
};

struct SamplerOptions {
  Mixing mixing = Mixing::StrategyFirst;  // code default; configs default to rbm (base.yaml)
  int frames_per_clip = 8;                // K: clips are linspace-subsampled to K, then right-padded to K
  int max_stored_frames = 32;             // the original preprocessing cap (see stored_frame_indices)
  // [rewind, suboptimal, different_task, reverse] (the order of enum Strategy); zero disables.
  std::array<double, 4> strategy_ratios{1, 1, 1, 1};
  std::map<std::string, double> source_weights;   // per data source; overrides manifest weights
  std::map<std::string, double> success_cutoffs;  // per data source c; others use the default
  double default_success_cutoff = 1.0;            // the original max_success
  double min_success = 0.5;                       // success frames with g < this are negatives
  std::set<std::string> preference_only_sources;  // progress never supervised on these
  // is_suboptimal_fail_ds: strategy_first draws its suboptimal pairs from these sources (all
  // sources when none of them is present, as the original).
  std::set<std::string> suboptimal_fail_sources;
  // partial_success gives progress supervision on sources whose name contains this (the
  // original: "roboreward"); "" = every source whose trajectories carry partial_success.
  std::string partial_success_progress_match;
  double different_task_same_source_prob = 0.5;  // traj_same_source_prob
  double partial_success_threshold = 0.2;        // min |Δ partial_success| for a pair
  // predict_last_frame_partial_progress (off in the original's default): only adds a per-frame
  // progress mask (1 where the clip shows the trajectory's last stored frame) for graded clips.
  // The labels [0, ..., 0, p] of a clip ending at the last frame with p < 1 are always used.
  bool last_frame_partial_progress = false;
  bool is_eval = false;  // chosen always A (else A/B with p = 0.5)
};

// How a clip walks through its trajectory's stored frames.
enum class ClipOrder {
  Forward,  // 3 sorted random frames s < m < e; the contiguous range s..e
  Rewind,   // s < e < m: s..m forwards, then m-1..e backwards
  Reverse,  // e < m < s: s..e backwards
  Whole,    // all stored frames (the original's path for a drawn non-successful trajectory)
};
const char* clip_order_name(ClipOrder o);

struct ClipPlan {
  int64_t trajectory = -1;  // position in the TrajectoryIndex
  ClipOrder order = ClipOrder::Forward;
  int64_t num_stored = 0;               // S = min(num_frames, max_stored_frames)
  std::vector<int64_t> stored_indices;  // K entries (after linspace and padding), in [0, S)
  std::vector<int64_t> video_indices;   // the same frames as video frame numbers
  std::vector<double> progress;         // K: g_t
  std::vector<double> success;          // K: y_t
  std::vector<double> success_mask;     // K: inclusion in the success loss
  float progress_mask = 0.f;
  std::vector<double> progress_frame_mask;  // K: per-frame progress mask (predict_last_frame_mask)
  int64_t valid_frames = 0;                 // frames before right padding
};

struct PairPlan {
  ClipPlan chosen, rejected;
  Strategy strategy = Strategy::Rewind;
  bool chosen_first = true;  // chosen is trajectory A (preference label 1)
  std::string task;          // the prompt's instruction: the chosen trajectory's task
  int attempts = 1;          // trajectories tried before this pair was built
};

class PairSampler {
 public:
  // Throws ConfigError on invalid options (K < 3, no positive ratio, probabilities outside [0,1],
  // cutoffs outside (0,1]) or an empty index.
  PairSampler(std::shared_ptr<const TrajectoryIndex> index, SamplerOptions opts);

  // One preference pair: draw a strategy by ratio (suboptimal only when some trajectory is not
  // successful), then up to 10 trajectories eligible for it (rewind/reverse: successful ones;
  // suboptimal: sources with failures, tasks with both outcomes) built with that strategy; then
  // up to 10 trajectories of any source with the rebalancing loop (10 draws, a strategy dropped
  // after 3 failures). Throws Error when nothing works (e.g. no successful trajectory with at
  // least 3 stored frames). A drawn non-successful trajectory always becomes the rejected side
  // of a same-task pair, both shown whole, when its task has a successful trajectory.
  PairPlan sample(Rng& rng) const;

  // Building blocks, public for tests and for evaluation code.
  // nullopt when the trajectory is too short for the order (fewer than 3 stored frames).
  std::optional<ClipPlan> make_clip(int64_t trajectory, ClipOrder order, Rng& rng,
                                    bool zero_labels = false) const;
  // The same clip for explicitly given segment indices (stored space, before subsampling).
  ClipPlan clip_from_segment(int64_t trajectory, ClipOrder order, const std::vector<int64_t>& segment,
                             bool zero_labels) const;
  std::optional<PairPlan> sample_for(int64_t trajectory, std::optional<Strategy> preferred, Rng& rng) const;

  double success_cutoff(const std::string& source) const;
  double source_weight(const std::string& source) const;
  const TrajectoryIndex& index() const { return *index_; }
  const SamplerOptions& options() const { return opts_; }

 private:
  struct Rejected {
    int64_t rejected;
    int64_t chosen;
    ClipOrder order;
  };
  // A source's rules resolved from the options once (by source id), for the per-pair path.
  struct SourceRules {
    double weight = 1.0;
    double success_cutoff = 1.0;
    bool preference_only = false;
    bool partial_progress = false;     // name matches partial_success_progress_match
    bool has_partial_success = false;  // some trajectory of the source is graded
  };
  // Source ids to draw from, with their weights (same order).
  struct SourceSet {
    std::vector<uint32_t> ids;
    std::vector<double> weights;
  };
  std::optional<PairPlan> try_sources(Rng& rng, const SourceSet& sources, std::optional<Strategy> filter,
                                      std::optional<Strategy> preferred) const;
  TrajectoryIndex::Ids eligible(uint32_t source, std::optional<Strategy> s) const;
  std::optional<PairPlan> create_pair(int64_t chosen, std::optional<Strategy> preferred, Rng& rng) const;
  std::optional<Rejected> execute(Strategy s, int64_t chosen, Rng& rng) const;
  std::optional<int64_t> same_task_unsuccessful(int64_t ref, Rng& rng) const;
  std::optional<int64_t> different_partial_success(int64_t ref, Rng& rng) const;
  std::optional<int64_t> different_task(int64_t ref, Rng& rng) const;
  uint32_t pick_source(Rng& rng, const SourceSet& sources) const;

  std::shared_ptr<const TrajectoryIndex> index_;
  SamplerOptions opts_;
  std::vector<SourceRules> rules_;   // by source id
  SourceSet active_;                 // sources with a positive weight
  SourceSet suboptimal_;             // strategy_first's suboptimal draws: the listed active ones, or all
  std::vector<double> rbm_weights_;  // data.mixing=rbm: active weight x source size
  PairPlan sample_rbm(Rng& rng) const;
};

}  // namespace robometer::data
