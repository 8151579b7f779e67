#include "robometer/eval/evaluator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"
#include "robometer/data/loader.h"
#include "robometer/data/options_from_config.h"
#include "robometer/data/run_options.h"
#include "robometer/eval/scorer.h"

namespace robometer::eval {

EvalOptions eval_options(const config::RunConfig& cfg) {
  EvalOptions o;
  const auto& d = cfg.data;
  o.frames = d.frames_per_trajectory;
  o.max_stored_frames = d.max_stored_frames;
  o.voc_prefixes = cfg.eval.voc_prefixes;
  o.max_trajectories = cfg.eval.max_trajectories;
  o.success_threshold = cfg.eval.success_threshold;
  o.seed = data::sampling_seed_from_config(cfg, /*is_eval=*/true);
  o.resize = data::resize_spec(cfg.eval.resize);  // native by default, as the original scores
  o.autorotate = cfg.data.autorotate;
  o.sampling = data::sampler_options_from_config(cfg);
  o.metrics.success_threshold = cfg.eval.success_threshold;
  o.protocol = parse_eval_protocol(cfg.eval.protocol);
  o.metrics.protocol = o.protocol;
  if (o.protocol == EvalProtocol::Original)
    o.confusion_videos = std::numeric_limits<int>::max();  // every task
  return o;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Decodes the S stored frames of a trajectory (the training cap), uint8 [S, H, W, 3].
at::Tensor stored_frames(const data::Trajectory& t, const EvalOptions& o) {
  data::VideoReaderOptions ro;
  ro.resize = o.resize;
  ro.autorotate = o.autorotate;
  ro.window_from_s = t.video.from_s;
  ro.window_to_s = t.video.to_s;
  data::VideoReader reader(t.video.path, ro);
  const auto idx = data::stored_frame_indices(reader.num_frames(), o.max_stored_frames);
  return reader.frames(idx);
}

// Up to n items of `ids`, spread evenly (all when n <= 0 or n >= size).
std::vector<int64_t> spread(const std::vector<int64_t>& ids, int n) {
  if (n <= 0 || n >= static_cast<int>(ids.size())) return ids;
  std::vector<int64_t> out;
  for (int64_t p : data::linspace_positions(static_cast<int64_t>(ids.size()), n)) out.push_back(ids[p]);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double cutoff_of(const EvalOptions& o, const std::string& source) {
  const auto it = o.sampling.success_cutoffs.find(source);
  return it != o.sampling.success_cutoffs.end() ? it->second : o.sampling.default_success_cutoff;
}

}  // namespace

nlohmann::json evaluate(model::ModelBundle& bundle, const data::TrajectoryIndex& index,
                        const EvalOptions& opts) {
  if (opts.frames < 1 || opts.voc_prefixes < 1)
    throw ConfigError("eval: frames and voc_prefixes must be >= 1");
  const auto t0 = std::chrono::steady_clock::now();
  Scorer scorer(bundle, {opts.frames, opts.batch_size});
  const int K = opts.frames;
  const bool original = opts.protocol == EvalProtocol::Original;

  std::vector<TrajectoryScores> trajs;
  std::vector<ConfusionEntry> confusion;
  for (const auto& source : index.sources()) {
    const auto chosen = spread(index.by_source(source), opts.max_trajectories);
    const double cutoff = cutoff_of(opts, source);
    // Confusion-matrix candidates: one video per task (successful first), then the rest.
    std::vector<int64_t> conf_videos;
    const auto& tasks = index.tasks_of_source(source);
    if (opts.confusion_videos > 0 && tasks.size() >= 2) {
      std::set<std::string> covered;
      for (int pass = 0; pass < 2; ++pass)
        for (int64_t i : chosen) {
          const auto& t = index.at(i);
          if (static_cast<int>(conf_videos.size()) >= opts.confusion_videos) break;
          if (covered.count(t.task) || (pass == 0 && t.quality != data::Quality::Successful)) continue;
          covered.insert(t.task);
          conf_videos.push_back(i);
        }
    }
    // The instructions are those of the chosen videos, so that each video is also scored
    // under its own instruction (the diagonal).
    std::vector<std::string> conf_tasks;
    for (int64_t v : conf_videos) conf_tasks.push_back(index.at(v).task);

    for (int64_t i : chosen) {
      const auto& t = index.at(i);
      const at::Tensor frames = stored_frames(t, opts);
      const int64_t S = frames.size(0);
      TrajectoryScores ts;
      ts.id = t.id;
      ts.task = t.task;
      ts.data_source = t.data_source;
      ts.quality = t.quality;
      if (t.partial_success) ts.partial_success = *t.partial_success;

      // P prefixes + the whole trajectory, scored in one batched call.
      const auto ends = voc_end_points(S, opts.voc_prefixes, original);
      std::vector<model::ProgressQuery> queries;
      std::vector<std::vector<int64_t>> positions;
      for (int64_t e : ends) {
        positions.push_back(prefix_positions(e, K));
        queries.push_back({t.task, select_frames(frames, positions.back())});
      }
      auto whole = data::linspace_positions(S, K);
      if (original)  // pad_trajectory_to_max_frames_np: right-padded by repeating the last frame
        while (static_cast<int>(whole.size()) < K) whole.push_back(whole.back());
      queries.push_back({t.task, select_frames(frames, whole)});
      const auto outs = scorer.score_clips(queries);
      for (const auto& o : outs)
        for (const auto* v : {&o.progress, &o.success})
          for (double x : *v)
            if (!std::isfinite(x))
              throw Error("eval: the model predicted a non-finite value (" + std::to_string(x) +
                          ") for trajectory '" + t.id + "' of " + t.video.path +
                          "; the checkpoint's weights are likely diverged");
      for (size_t k = 0; k < ends.size(); ++k) {
        const auto gt = data::progress_labels(S, positions[k], cutoff, t.partial_success);
        // original: compile_results.py takes clip position min(k, len-1) for label and
        // prediction; ours the prefix's last frame (see metrics.h PrefixAggregation).
        const size_t at = original ? std::min(k, gt.size() - 1) : gt.size() - 1;
        ts.gt_progress.push_back(gt[at]);
        ts.pred_progress.push_back(outs[k].progress[std::min(at, outs[k].progress.size() - 1)]);
        ts.pred_success.push_back(outs[k].success.back());
        ts.prefix_ends.push_back(ends[k]);
      }
      ts.final_progress = outs.back().progress.back();
      ts.final_success = outs.back().success.back();
      trajs.push_back(std::move(ts));

      if (std::find(conf_videos.begin(), conf_videos.end(), i) != conf_videos.end()) {
        std::vector<model::ProgressQuery> cq;
        for (const auto& task : conf_tasks) cq.push_back({task, queries.back().frames});
        const auto co = scorer.score_clips(cq);
        for (size_t j = 0; j < conf_tasks.size(); ++j)
          confusion.push_back({t.task, conf_tasks[j], co[j].progress.back()});
      }
    }
  }

  // Preference pairs from the training sampler (eval mode: chosen first), half shown swapped.
  std::vector<PreferenceOutcome> pairs;
  if (opts.preference_pairs > 0) {
    std::shared_ptr<const data::TrajectoryIndex> shared(&index, [](const data::TrajectoryIndex*) {});
    data::SamplerOptions so = opts.sampling;
    so.is_eval = true;
    so.frames_per_clip = K;
    so.max_stored_frames = opts.max_stored_frames;
    data::PairSampler sampler(shared, so);
    std::vector<model::PairQuery> queries;
    for (int n = 0; n < opts.preference_pairs; ++n) {
      data::Rng rng(data::hash_seed({opts.seed, static_cast<uint64_t>(n)}));
      data::PairPlan plan = sampler.sample(rng);
      data::PairSample s = data::assemble_pair(index, plan, opts.resize, opts.autorotate);
      const bool a_is_chosen = s.preference > 0.5f;
      const bool swap = !original && (n % 2) == 1;  // original: the chosen trajectory is always A
      PreferenceOutcome po;
      po.data_source = s.a.data_source;
      po.kind = data::strategy_name(s.strategy);
      po.first_is_better = swap ? !a_is_chosen : a_is_chosen;
      pairs.push_back(po);
      queries.push_back({s.task, swap ? s.b.frames : s.a.frames, swap ? s.a.frames : s.b.frames});
    }
    const auto probs = scorer.preferences(queries);
    for (size_t n = 0; n < pairs.size(); ++n) pairs[n].prob_first_better = probs[n];
  }

  MetricsOptions mo = opts.metrics;
  mo.success_threshold = opts.success_threshold;
  mo.prefix_aggregation = original ? PrefixAggregation::ClipPosition : PrefixAggregation::LastFrame;
  mo.protocol = opts.protocol;
  nlohmann::json out = compute_metrics(trajs, pairs, mo, confusion);
  out["protocol"] = {
      {"name", eval_protocol_name(opts.protocol)},
      {"frames", K},
      {"max_stored_frames", opts.max_stored_frames},
      {"voc_prefixes", opts.voc_prefixes},
      {"voc_prediction", original ? "clip position k of prefix k" : "last frame of each prefix"},
      {"voc_end_points", original ? "floor(linspace(0, S-1, P))" : "rint(linspace(0, S-1, P))"},
      {"max_trajectories_per_source", opts.max_trajectories},
      {"preference_pairs", static_cast<int64_t>(pairs.size())},
      {"confusion_entries", static_cast<int64_t>(confusion.size())},
      {"success_label", "quality == successful; score = last-frame P(success)"},
      {"success_threshold", opts.success_threshold}};
  if (opts.keep_trajectories) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& t : trajs)
      arr.push_back({{"id", t.id},
                     {"task", t.task},
                     {"data_source", t.data_source},
                     {"quality", data::quality_name(t.quality)},
                     {"gt_progress", t.gt_progress},
                     {"pred_progress", t.pred_progress},
                     {"pred_success", t.pred_success},
                     {"prefix_ends", t.prefix_ends},
                     {"stored_frames", t.prefix_ends.empty() ? 0 : t.prefix_ends.back() + 1},
                     {"final_progress", *t.final_progress},
                     {"final_success", *t.final_success}});
    out["trajectories"] = arr;
  }
  out["timing_s"] = seconds_since(t0);
  return out;
}

}  // namespace robometer::eval
