// Offline evaluation of a reward model on held-out manifests (spec §5.1), shared by
// `robometer eval` and the trainer's periodic evaluation.
//
// Protocol robometer_cpp (per data source, up to max_trajectories trajectories, spread evenly over the
// source's list). Every trajectory is first capped to S = min(N, max_stored_frames) stored
// frames (the training rule, labels.h), and all frame indices below live in that space.
//   VOC:        P = voc_prefixes end points e_k = rint(linspace(0, S-1, P)); the prefix 0..e_k
//               is linspace-subsampled / padded to K frames and scored; the prediction is the
//               LAST clip position (frame e_k) and the ground truth is Robometer's progress label
//               of that clip at that position (progress_labels). Pearson + Spearman per
//               successful trajectory, averaged (metrics.h).
//               The original's compile_results.py takes clip position k for the k-th prefix
//               (PR #21); we do not (recorded as "prefix_aggregation": "last_frame").
//   Ranking:    whole trajectory, K-frame linspace, last-frame progress vs the quality rank
//               (Kendall τ-a per task).
//   Success:    a trajectory is POSITIVE iff its quality label is "successful"; its score is
//               P(success) at the last frame of the whole-trajectory clip; positive iff score >=
//               success_threshold (TPR / TNR / F1). Succ–fail difference on last-frame progress.
//   Preference: preference_pairs pairs from the training sampler in eval mode (chosen always A)
//               with a fixed seed; every second pair is shown swapped (B first) so that a model
//               that always answers "A" scores 50 %, then accuracy per pair kind (strategy).
//   Confusion:  for sources with >= 2 tasks: up to confusion_videos videos (one per task first,
//               successful preferred) × up to confusion_videos task instructions of the source,
//               reward = last-frame progress, diagonal score of the per-video normalised matrix.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "robometer/config/run_config.h"
#include "robometer/data/sampler.h"
#include "robometer/data/trajectory_index.h"
#include "robometer/data/video_reader.h"
#include "robometer/eval/metrics.h"
#include "robometer/model/factory.h"

namespace robometer::eval {

struct EvalOptions {
  int frames = 8;  // K
  int max_stored_frames = 32;
  int voc_prefixes = 5;
  int max_trajectories = 0;  // per data source; 0 = all
  double success_threshold = 0.5;
  int preference_pairs = 32;  // total; 0 = skip
  int confusion_videos = 8;   // per source; 0 = skip
  int batch_size = 8;         // queries per forward
  uint64_t seed = 0;          // eval_options: train.seed's evaluation stream
  data::ResizeSpec resize = data::ResizeSpec::shortest_edge(240);
  bool autorotate = true;         // data.autorotate
  data::SamplerOptions sampling;  // pair construction (is_eval forced on)
  MetricsOptions metrics;
  // eval.protocol "original" (robometer's eval samplers + compile_results.py): VOC end points
  // int(linspace(0, S-1, P)) (floor), prediction and label at clip position k of the k-th prefix,
  // whole-trajectory clips right-padded to K, every task of a source in the confusion matrix,
  // preference pairs with the chosen trajectory as A. "robometer_cpp": the protocol above.
  EvalProtocol protocol = EvalProtocol::RobometerCpp;
  bool keep_trajectories = false;  // add "trajectories": per-trajectory gt/pred to the JSON
};

// The options a run config implies (data.* frame/resize/sampler settings, eval.*).
EvalOptions eval_options(const config::RunConfig& cfg);

// Runs the model over `index` and returns compute_metrics' JSON plus
// {"protocol": {...}, "timing_s": ...}. Throws Error on unreadable videos.
nlohmann::json evaluate(model::ModelBundle& bundle, const data::TrajectoryIndex& index,
                        const EvalOptions& opts);

}  // namespace robometer::eval
