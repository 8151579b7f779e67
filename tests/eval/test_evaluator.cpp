#include <gtest/gtest.h>

#include "eval_test_util.h"
#include "robometer/data/labels.h"
#include "robometer/data/manifest.h"
#include "robometer/data/synth.h"
#include "robometer/eval/evaluator.h"
#include "robometer/eval/scorer.h"

namespace robometer::eval {
namespace {

// A held-out synth set (no training split) written under `dir`, as a one-source index.
data::TrajectoryIndex synth_eval_index(const test::TempDir& dir, int episodes, int tasks, int min_frames,
                                       int max_frames) {
  data::SynthOptions so;
  so.train_episodes = 0;
  so.eval_episodes = episodes;
  so.tasks = tasks;
  so.min_frames = min_frames;
  so.max_frames = max_frames;
  data::write_synth_dataset(dir.path().string(), so);
  return data::TrajectoryIndex({data::WeightedManifest{data::read_manifest((dir / "eval").string()), 1.0}});
}

TEST(Evaluator, SynthEvalSetProducesEveryMetricWithTheLastFrameProtocol) {
  test::TempDir tmp;
  // 2 tasks x (successful, successful, suboptimal, failure); up to 40 frames: some episodes exceed
  // the 32-frame stored cap.
  const data::TrajectoryIndex index = synth_eval_index(tmp, 8, 2, 12, 40);

  auto cfg = test::tiny_run_config();
  cfg.eval.protocol = "robometer_cpp";
  auto bundle = model::build_model(cfg.model, at::kCPU, 7);
  EvalOptions o = eval_options(cfg);
  o.frames = 4;
  o.voc_prefixes = 3;
  o.preference_pairs = 4;
  o.keep_trajectories = true;
  const auto j = evaluate(bundle, index, o);
  EXPECT_EQ(j["protocol"]["name"], "robometer_cpp");
  EXPECT_EQ(j["options"]["protocol"], "robometer_cpp");

  ASSERT_TRUE(j.contains("overall"));
  EXPECT_EQ(j["overall"]["num_trajectories"], 8);
  EXPECT_EQ(j["protocol"]["preference_pairs"], 4);
  EXPECT_EQ(j["protocol"]["voc_prefixes"], 3);
  // Two tasks: every confusion video (one per task) scored under both instructions.
  EXPECT_EQ(j["protocol"]["confusion_entries"], 4);
  ASSERT_EQ(j["trajectories"].size(), 8u) << j["trajectories"].dump().substr(0, 400);
  for (const auto& t : j["trajectories"]) {
    const auto& traj = index.at(index.find(t["id"].get<std::string>()));
    const int64_t S = std::min<int64_t>(traj.num_frames, 32);
    const auto ends = data::linspace_positions(S, 3);
    ASSERT_EQ(t["gt_progress"].size(), ends.size());
    if (t["quality"] == "successful") {
      // Ground truth at the prefix's LAST frame e: (e - 0) / (S - 1) with cutoff 1.
      for (size_t k = 0; k < ends.size(); ++k)
        EXPECT_NEAR(t["gt_progress"][k].get<double>(), static_cast<double>(ends[k]) / (S - 1), 1e-12);
    }
    for (const auto& p : t["pred_progress"]) {
      EXPECT_GE(p.get<double>(), 0.0);
      EXPECT_LE(p.get<double>(), 1.0);
    }
  }
  // Deterministic: the same call gives the same numbers.
  const auto j2 = evaluate(bundle, index, o);
  EXPECT_EQ(j["trajectories"], j2["trajectories"]);
  EXPECT_EQ(j["overall"]["preference"], j2["overall"]["preference"]);
}

// eval.protocol original (the default): end points int(linspace(0, S-1, P))
// (samplers/eval/reward_alignment.py), label and prediction at clip position min(k, K-1) of the
// k-th prefix (compile_results.py run_reward_alignment_eval_per_trajectory). For a successful
// trajectory (cutoff 1, s = 0) the label at a clip position showing frame i is i / (S-1).
TEST(Evaluator, OriginalProtocolEndPointsAndClipPosition) {
  test::TempDir tmp;
  const data::TrajectoryIndex index = synth_eval_index(tmp, 4, 1, 12, 20);
  auto cfg = test::tiny_run_config();
  ASSERT_EQ(cfg.eval.protocol, "original");
  auto bundle = model::build_model(cfg.model, at::kCPU, 7);
  EvalOptions o = eval_options(cfg);
  o.frames = 4;
  o.voc_prefixes = 5;
  o.preference_pairs = 2;
  o.keep_trajectories = true;
  const auto j = evaluate(bundle, index, o);
  EXPECT_EQ(j["protocol"]["name"], "original");
  EXPECT_EQ(j["options"]["prefix_aggregation"], "clip_position");
  int checked = 0;
  for (const auto& t : j["trajectories"]) {
    if (t["quality"] != "successful") continue;
    const auto& traj = index.at(index.find(t["id"].get<std::string>()));
    const int64_t S = std::min<int64_t>(traj.num_frames, 32);
    const auto ends = voc_end_points(S, 5, true);
    ASSERT_EQ(t["gt_progress"].size(), ends.size());
    for (size_t k = 0; k < ends.size(); ++k) {
      const int64_t frame = prefix_positions(ends[k], 4)[std::min<size_t>(k, 3)];
      EXPECT_NEAR(t["gt_progress"][k].get<double>(), static_cast<double>(frame) / (S - 1), 1e-12) << k;
    }
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(Evaluator, MaxTrajectoriesSpreadsOverTheSource) {
  test::TempDir tmp;
  const data::TrajectoryIndex index = synth_eval_index(tmp, 6, 1, 8, 10);
  auto cfg = test::tiny_run_config();
  auto bundle = model::build_model(cfg.model, at::kCPU, 7);
  EvalOptions o = eval_options(cfg);
  o.frames = 4;
  o.max_trajectories = 3;
  o.preference_pairs = 0;
  const auto j = evaluate(bundle, index, o);
  EXPECT_EQ(j["overall"]["num_trajectories"], 3);
  EXPECT_EQ(j["protocol"]["confusion_entries"], 0);  // one task: no confusion matrix
}

}  // namespace
}  // namespace robometer::eval
