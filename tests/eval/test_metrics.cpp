// Evaluation metrics: hand-computed cases (arithmetic in the comments) and a scipy oracle on
// seeded random data (tests/eval/scipy_oracle.py, Debian python3-scipy).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <random>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/eval/metrics.h"

namespace robometer::eval {
namespace {

using data::Quality;
using nlohmann::json;

TrajectoryScores traj(const std::string& task, Quality q, double last, const std::string& src = "src") {
  TrajectoryScores t;
  t.id = task + "_" + std::to_string(last);
  t.task = task;
  t.data_source = src;
  t.quality = q;
  t.final_progress = last;
  return t;
}

// ---------------------------------------------------------------- correlations by hand

TEST(Correlation, PearsonByHand) {
  // x=[1,2,3], y=[1,2,4]: mean 2 and 7/3; dx=[-1,0,1], dy=[-4/3,-1/3,5/3]
  // sxy = 4/3+5/3 = 3, sxx = 2, syy = (16+1+25)/9 = 14/3  ->  r = 3/sqrt(28/3) = sqrt(27/28)
  auto r = pearson({1, 2, 3}, {1, 2, 4});
  ASSERT_TRUE(r);
  EXPECT_NEAR(*r, std::sqrt(27.0 / 28.0), 1e-12);
  EXPECT_NEAR(*pearson({0, 1}, {5, 3}), -1.0, 1e-12);  // two points: ±1
}

TEST(Correlation, UndefinedOnConstantOrShort) {
  EXPECT_FALSE(pearson({1, 2, 3}, {0.3, 0.3, 0.3}));
  EXPECT_FALSE(pearson({2, 2}, {1, 5}));
  EXPECT_FALSE(pearson({1}, {1}));
  EXPECT_FALSE(pearson({}, {}));
  EXPECT_FALSE(spearman({1, 2, 3}, {7, 7, 7}));
  EXPECT_FALSE(kendall_tau_a({1}, {1}));
  EXPECT_THROW(pearson({1, 2}, {1, 2, 3}), Error);
  EXPECT_THROW(kendall_tau_a({1, 2}, {1}), Error);
}

// A NaN prediction is an error naming the metric, never a silent NaN or a fake tie.
TEST(Correlation, NonFiniteInputsAreErrors) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  robometer::test::expect_throw_contains(
      [&] {
        pearson({0, .5, 1}, {.1, nan, .9});
      },
      {"pearson", "position 1"});
  robometer::test::expect_throw_contains([&] { spearman({0, .5, 1}, {.1, nan, .9}); }, {"non-finite"});
  robometer::test::expect_throw_contains([&] { kendall_tau_a({0, 1}, {nan, 1}); }, {"kendall", "position 0"});
  robometer::test::expect_throw_contains(
      [&] {
        binary_detection({.2, nan}, {true, false}, .5);
      },
      {"binary_detection", "position 1"});
}

TEST(Correlation, AverageRanksWithTies) {
  // sorted: 5 (rank 1), 10 (rank 2), 20, 20 (ranks 3 and 4 -> 3.5 each)
  EXPECT_EQ(average_ranks({10, 20, 20, 5}), (std::vector<double>{2, 3.5, 3.5, 1}));
  EXPECT_EQ(average_ranks({1, 1, 1}), (std::vector<double>{2, 2, 2}));
}

TEST(Correlation, SpearmanByHand) {
  // ranks x=[1,2,3,4], y=[1,3,2,4]; d=[0,1,1,0], sum d^2 = 2: rho = 1 - 6*2/(4*15) = 0.8
  EXPECT_NEAR(*spearman({1, 2, 3, 4}, {10, 30, 20, 40}), 0.8, 1e-12);
  // ties: y ranks [1.5,1.5,3]; x ranks [1,2,3]. Pearson of those: mean 2 both;
  // dx=[-1,0,1], dy=[-.5,-.5,1]: sxy=.5+1=1.5, sxx=2, syy=1.5 -> 1.5/sqrt(3) = sqrt(3)/2
  EXPECT_NEAR(*spearman({1, 2, 3}, {4, 4, 9}), std::sqrt(3.0) / 2, 1e-12);
}

TEST(Correlation, KendallTauAByHandWithTies) {
  // x=[1,2,3,4], y=[1,1,2,3]: 6 pairs; (1,2) tied in y -> neither; the other 5 concordant
  // tau-a = 5/6 (tau-b would be 5/sqrt(6*5) = 0.913)
  const auto c = kendall_counts({1, 2, 3, 4}, {1, 1, 2, 3});
  EXPECT_EQ(c.concordant, 5);
  EXPECT_EQ(c.discordant, 0);
  EXPECT_EQ(c.pairs, 6);
  EXPECT_NEAR(*kendall_tau_a({1, 2, 3, 4}, {1, 1, 2, 3}), 5.0 / 6.0, 1e-12);
  // x=[1,2,3], y=[3,1,2]: (1,2) D, (1,3) D, (2,3) C -> (1-2)/3
  EXPECT_NEAR(*kendall_tau_a({1, 2, 3}, {3, 1, 2}), -1.0 / 3.0, 1e-12);
  // every pair tied in x -> 0, not undefined
  EXPECT_NEAR(*kendall_tau_a({1, 1, 1}, {1, 2, 3}), 0.0, 1e-12);
}

// ---------------------------------------------------------------- prefix aggregation

TEST(PrefixAggregation, LastFrameVersusOriginalClipPosition) {
  // prefix 0 is one frame padded to 4; prefix 1 two frames; prefix 2 the whole clip
  const std::vector<std::vector<double>> clips = {{.2, .2, .2, .2}, {.1, .5, .5, .5}, {.1, .3, .6, .8}};
  EXPECT_EQ(aggregate_prefix_clips(clips), (std::vector<double>{.2, .5, .8}));
  // the original takes clip position k: clips[0][0], clips[1][1], clips[2][2]
  EXPECT_EQ(aggregate_prefix_clips(clips, PrefixAggregation::ClipPosition),
            (std::vector<double>{.2, .5, .6}));
  // more prefixes than clip positions: clamped to the last position like min(k, len-1)
  EXPECT_EQ(aggregate_prefix_clips({{1}, {2}}, PrefixAggregation::ClipPosition), (std::vector<double>{1, 2}));
  EXPECT_THROW(aggregate_prefix_clips({{}}), Error);
}

// ---------------------------------------------------------------- VOC

TEST(RewardAlignment, MeanOverTrajectoriesExcludingUndefined) {
  std::vector<TrajectoryScores> ts(4);
  ts[0].quality = Quality::Successful;
  ts[0].gt_progress = {0, .5, 1};
  ts[0].pred_progress = {.1, .4, .9};  // sxy = 1.1-.7 = .4, sxx = .5, syy = .98-1.96/3 = .98/3
  ts[1].quality = Quality::Successful;
  ts[1].gt_progress = {0, .5, 1};
  ts[1].pred_progress = {.3, .3, .3};  // constant: undefined, excluded and counted
  ts[2].quality = Quality::Failure;    // ignored when successful_only
  ts[2].gt_progress = {0, .1, .2};
  ts[2].pred_progress = {.9, .5, .1};
  ts[3].quality = Quality::Successful;
  ts[3].gt_progress = {0, .5, 1};
  ts[3].pred_progress = {1, .5, 0};  // r = rho = -1
  const double r0 = .4 / std::sqrt(.5 * .98 / 3);
  VocResult v = reward_alignment(ts);
  EXPECT_EQ(v.trajectories, 3);
  EXPECT_EQ(v.pearson_undefined, 1);
  EXPECT_EQ(v.spearman_undefined, 1);
  EXPECT_NEAR(*v.pearson, (r0 - 1) / 2, 1e-12);
  EXPECT_NEAR(*v.spearman, (1 - 1) / 2.0, 1e-12);
  // with failures: ts[2] has r = -1 (gt linear, prediction linear decreasing)
  v = reward_alignment(ts, false);
  EXPECT_EQ(v.trajectories, 4);
  EXPECT_NEAR(*v.pearson, (r0 - 1 - 1) / 3, 1e-12);
  // all undefined -> nullopt, not 0
  EXPECT_FALSE(reward_alignment({ts[1]}).pearson);
  ts[0].pred_progress.pop_back();
  EXPECT_THROW(reward_alignment(ts), Error);
}

// ---------------------------------------------------------------- policy ranking

std::vector<TrajectoryScores> ranking_fixture() {
  return {// task A: gold [2,1,0,0], pred [.9,.5,.6,.1]
          traj("A", Quality::Successful, .9), traj("A", Quality::Suboptimal, .5),
          traj("A", Quality::Failure, .6), traj("A", Quality::Failure, .1),
          // task B: S .4 below F .7
          traj("B", Quality::Successful, .4), traj("B", Quality::Failure, .7),
          // task C: a single trajectory cannot be ranked
          traj("C", Quality::Successful, .8)};
}

TEST(PolicyRanking, KendallTauAPerTaskByHand) {
  const RankingResult r = policy_ranking(ranking_fixture(), false);
  // A: pairs S-U C, S-F1 C, S-F2 C, U-F1 D (.5<.6), U-F2 C, F1-F2 gold tie -> (4-1)/6 = 0.5
  // B: (0-1)/1 = -1.  Mean over ranked tasks: (0.5 - 1)/2 = -0.25
  EXPECT_EQ(r.tasks, 3);
  EXPECT_EQ(r.tasks_ranked, 2);
  EXPECT_NEAR(r.per_task_tau_a.at("A"), 0.5, 1e-12);
  EXPECT_NEAR(r.per_task_tau_a.at("B"), -1.0, 1e-12);
  EXPECT_NEAR(*r.kendall_tau_a, -0.25, 1e-12);
  // gold-distinct pairs: A 5 (4 correct), B 1 (0 correct) -> 4/6
  EXPECT_NEAR(*r.ranking_accuracy, 4.0 / 6.0, 1e-12);
  // Original per-label-tuple variant. A: tuples (S,U,F1): S>U C, S>F1 C, U<F1 D -> 1/3;
  // (S,U,F2): 1 -> mean 2/3.  B: -1.  Mean (2/3 - 1)/2 = -1/6
  EXPECT_EQ(r.tasks_label_tuple, 2);
  EXPECT_NEAR(*r.kendall_tau_a_per_label_tuple, -1.0 / 6.0, 1e-12);
}

TEST(PolicyRanking, LabelTupleVariantEqualsBruteForceEnumeration) {
  // Brute force: average tau-a over every (s, u, f) choice, compared to the closed form.
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> U(0, 1);
  std::vector<TrajectoryScores> ts;
  std::vector<double> s, u, f;
  for (int i = 0; i < 4; ++i) {
    s.push_back(std::round(U(rng) * 5) / 5);
    ts.push_back(traj("T", Quality::Successful, s.back()));
  }
  for (int i = 0; i < 3; ++i) {
    u.push_back(std::round(U(rng) * 5) / 5);
    ts.push_back(traj("T", Quality::Suboptimal, u.back()));
  }
  for (int i = 0; i < 5; ++i) {
    f.push_back(std::round(U(rng) * 5) / 5);
    ts.push_back(traj("T", Quality::Failure, f.back()));
  }
  double sum = 0;
  int count = 0;
  for (double a : s)
    for (double b : u)
      for (double c : f) {
        sum += *kendall_tau_a({2, 1, 0}, {a, b, c});
        ++count;
      }
  EXPECT_NEAR(*policy_ranking(ts, false).kendall_tau_a_per_label_tuple, sum / count, 1e-12);
}

TEST(PolicyRanking, PartialSuccessGold) {
  std::vector<TrajectoryScores> ts = {traj("A", Quality::Failure, .2), traj("A", Quality::Failure, .5),
                                      traj("A", Quality::Failure, .4)};
  ts[0].partial_success = 0.1;
  ts[1].partial_success = 0.9;
  ts[2].partial_success = 0.5;
  // gold [.1,.9,.5], pred [.2,.5,.4]: all 3 pairs concordant -> 1
  const RankingResult r = policy_ranking(ts, true);
  EXPECT_NEAR(*r.kendall_tau_a, 1.0, 1e-12);
  EXPECT_FALSE(r.kendall_tau_a_per_label_tuple);
  // with quality labels all three are failures: nothing to rank, the task is skipped (not 0)
  const RankingResult q = policy_ranking(ts, false);
  EXPECT_FALSE(q.kendall_tau_a);
  EXPECT_EQ(q.tasks_ranked, 0);
  EXPECT_EQ(q.tasks, 1);
}

// ---------------------------------------------------------------- succ-fail difference

TEST(SuccFailDiff, PooledAndPerTask) {
  const SuccFailDiff d = success_failure_difference(ranking_fixture());
  // pooled: successes [.9,.4,.8] mean .7; failures [.6,.1,.7] mean 1.4/3 -> .7 - 1.4/3
  EXPECT_NEAR(*d.pooled, .7 - 1.4 / 3, 1e-12);
  // per task: A .9 - .35 = .55, B .4 - .7 = -.3, C has no failure -> (.55 - .3)/2 = .125
  EXPECT_NEAR(*d.per_task_mean, .125, 1e-12);
  EXPECT_EQ(d.successful, 3);
  EXPECT_EQ(d.failures, 3);
  EXPECT_FALSE(success_failure_difference({traj("A", Quality::Successful, 1)}).pooled);
}

// ---------------------------------------------------------------- success detection

TEST(SuccessDetection, CountsAndRates) {
  // preds at 0.5: [1,1,0,1,0] vs labels [1,1,1,0,0] -> TP 2, FN 1, FP 1, TN 1
  const auto d = binary_detection({.9, .5, .2, .7, .4}, {true, true, true, false, false});
  EXPECT_EQ(d.tp, 2);
  EXPECT_EQ(d.fn, 1);
  EXPECT_EQ(d.fp, 1);
  EXPECT_EQ(d.tn, 1);
  EXPECT_NEAR(*d.tpr, 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(*d.tnr, 0.5, 1e-12);
  EXPECT_NEAR(*d.f1, 4.0 / 6.0, 1e-12);  // 2TP/(2TP+FP+FN) = 4/6
  EXPECT_NEAR(*d.accuracy, 0.6, 1e-12);
  EXPECT_EQ(binary_detection({.9, .5}, {true, true}, 0.6).tp, 1);  // threshold respected
}

TEST(SuccessDetection, EdgeCases) {
  // no positives, none predicted: TPR and F1 undefined, TNR = 1
  auto d = binary_detection({.1, .2}, {false, false});
  EXPECT_FALSE(d.tpr);
  EXPECT_FALSE(d.f1);
  EXPECT_NEAR(*d.tnr, 1.0, 1e-12);
  // no negatives, nothing predicted positive: TPR 0, F1 0, TNR undefined
  d = binary_detection({.1, .2}, {true, true});
  EXPECT_NEAR(*d.tpr, 0.0, 1e-12);
  EXPECT_NEAR(*d.f1, 0.0, 1e-12);
  EXPECT_FALSE(d.tnr);
  // no positives but false alarms: F1 = 0 (defined), TPR undefined
  d = binary_detection({.9}, {false});
  EXPECT_NEAR(*d.f1, 0.0, 1e-12);
  EXPECT_FALSE(d.tpr);
  d = binary_detection({}, {});
  EXPECT_FALSE(d.accuracy);
  EXPECT_THROW(binary_detection({.1}, {}), Error);
}

TEST(SuccessDetection, TrajectoryLevelUsesLastSuccessProb) {
  auto a = traj("A", Quality::Successful, 1);
  a.pred_success = {.1, .2, .8};  // last .8 -> predicted success
  auto b = traj("A", Quality::Failure, 0);
  b.pred_success = {.9, .3};                    // last .3 -> predicted failure
  auto c = traj("A", Quality::Suboptimal, .5);  // no success head output: skipped
  const auto d = success_detection({a, b, c});
  EXPECT_EQ(d.tp + d.fp + d.tn + d.fn, 2);
  EXPECT_EQ(d.tp, 1);
  EXPECT_EQ(d.tn, 1);
}

// ---------------------------------------------------------------- preference

TEST(Preference, AccuracyByKind) {
  const std::vector<PreferenceOutcome> pairs = {
      {"s", "same_task_quality", .8, true},   // right
      {"s", "same_task_quality", .3, true},   // wrong
      {"s", "same_task_quality", .6, false},  // wrong
      {"s", "different_task", .9, true},      // right
      {"s", "different_task", .2, false},     // right
  };
  const auto acc = preference_accuracy(pairs);
  EXPECT_NEAR(*acc.at("same_task_quality").accuracy(), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(*acc.at("different_task").accuracy(), 1.0, 1e-12);
  EXPECT_EQ(acc.at("all").total, 5);
  EXPECT_NEAR(*acc.at("all").accuracy(), 3.0 / 5.0, 1e-12);
  EXPECT_FALSE(AccuracyCount{}.accuracy());
}

// ---------------------------------------------------------------- confusion matrix

TEST(Confusion, NormalisedDiagonalByHand) {
  // R[video][instruction] = [[.8,.2],[.4,.4]]
  const std::vector<std::vector<double>> R = {{.8, .2}, {.4, .4}};
  // per video (rows): .8/1.0 = .8 and .4/.8 = .5 -> .65
  auto c = confusion_matrix_score(R);
  EXPECT_NEAR(*c.diagonal_score, .65, 1e-12);
  // per instruction (columns): .8/1.2 and .4/.6, both 2/3
  EXPECT_NEAR(*confusion_matrix_score(R, ConfusionNormalization::PerInstruction).diagonal_score, 2.0 / 3.0,
              1e-12);
  // original's raw metrics: diag mean (.8+.4)/2 = .6, off-diagonal mean (.2+.4)/2 = .3
  EXPECT_NEAR(c.avg_diagonal, .6, 1e-12);
  EXPECT_NEAR(*c.avg_off_diagonal, .3, 1e-12);
  EXPECT_NEAR(*c.diagonal_minus_off_diagonal, .3, 1e-12);
  // zero row: excluded and counted
  c = confusion_matrix_score(std::vector<std::vector<double>>{{0, 0}, {.5, .5}});
  EXPECT_EQ(c.zero_sum_excluded, 1);
  EXPECT_NEAR(*c.diagonal_score, .5, 1e-12);
  EXPECT_THROW(confusion_matrix_score(std::vector<std::vector<double>>{{1, 2}, {3}}), Error);
}

TEST(Confusion, EntriesAreAveragedPerCell) {
  // video A under A: .9 and .7 -> .8; the rest as in the matrix test above
  const auto c = confusion_matrix_score(std::vector<ConfusionEntry>{
      {"A", "A", .9}, {"A", "A", .7}, {"A", "B", .2}, {"B", "A", .4}, {"B", "B", .4}});
  EXPECT_EQ(c.tasks, (std::vector<std::string>{"A", "B"}));
  EXPECT_NEAR(c.matrix[0][0], .8, 1e-12);
  EXPECT_NEAR(*c.diagonal_score, .65, 1e-12);
}

// ---------------------------------------------------------------- report

TEST(Report, PerSourceAndOverall) {
  auto ts = ranking_fixture();
  auto other = ranking_fixture();
  for (auto& t : other) {
    t.data_source = "other";
    t.final_progress = 1.0 - *t.final_progress;  // reverses every order: A -> -0.5, B -> +1
  }
  ts.insert(ts.end(), other.begin(), other.end());
  const std::vector<PreferenceOutcome> pairs = {{"src", "different_task", .9, true},
                                                {"other", "rewind", .1, true}};
  const json m = compute_metrics(ts, pairs, {}, {{"A", "A", 1}, {"A", "B", 0}, {"B", "A", 0}, {"B", "B", 1}});
  EXPECT_NEAR(m["by_data_source"]["src"]["policy_ranking"]["kendall_tau_a"].get<double>(), -0.25, 1e-12);
  EXPECT_NEAR(m["by_data_source"]["other"]["policy_ranking"]["kendall_tau_a"].get<double>(), 0.25, 1e-12);
  // overall ranks per (source, task): tasks A, B of both sources -> (.5 - 1 - .5 + 1)/4 = 0
  EXPECT_NEAR(m["overall"]["policy_ranking"]["kendall_tau_a"].get<double>(), 0.0, 1e-12);
  EXPECT_EQ(m["overall"]["policy_ranking"]["tasks_ranked"].get<int>(), 4);
  EXPECT_NEAR(m["overall"]["source_mean"]["kendall_tau_a"].get<double>(), 0.0, 1e-12);
  EXPECT_TRUE(m["overall"]["voc"]["pearson"].is_null());  // no per-frame data: undefined, not 0
  EXPECT_NEAR(m["overall"]["preference"]["all"]["accuracy"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(m["by_data_source"]["other"]["preference"]["rewind"]["accuracy"].get<double>(), 0.0, 1e-12);
  EXPECT_NEAR(m["overall"]["confusion"]["diagonal_score"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(m["overall"]["num_trajectories"].get<int>(), 14);

  const std::string md = render_markdown(m);
  EXPECT_NE(md.find("| src | 7 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| other | 7 |"), std::string::npos) << md;
  EXPECT_NE(md.find("-0.250"), std::string::npos) << md;
  EXPECT_NE(md.find("pref rewind"), std::string::npos) << md;
  EXPECT_NE(md.find("**overall**"), std::string::npos) << md;
  EXPECT_NE(md.find("–"), std::string::npos) << md;  // undefined VOC shown as a dash
  EXPECT_NE(md.find("(per_video normalised): 1.000"), std::string::npos) << md;
  EXPECT_EQ(m["options"]["prefix_aggregation"], "last_frame");
  MetricsOptions original;
  original.prefix_aggregation = PrefixAggregation::ClipPosition;
  original.confusion_normalization = ConfusionNormalization::PerInstruction;
  const json m2 =
      compute_metrics(ts, {}, original, {{"A", "A", .8}, {"A", "B", .2}, {"B", "A", .4}, {"B", "B", .4}});
  EXPECT_EQ(m2["options"]["prefix_aggregation"], "clip_position");
  EXPECT_NEAR(m2["overall"]["confusion"]["diagonal_score"].get<double>(), 2.0 / 3.0, 1e-12);
}

// ---------------------------------------------------------------- eval.protocol original

// samplers/eval/reward_alignment.py: end_indices = np.linspace(0, num_frames - 1, n), then
// int(end_idx). S = 32, P = 5: linspace = 0, 7.75, 15.5, 23.25, 31 -> floor 0, 7, 15, 23, 31
// (ours rint, half to even: 0, 8, 16, 23, 31). P > S: list(range(num_frames)).
TEST(OriginalProtocol, VocEndPointsFloor) {
  EXPECT_EQ(voc_end_points(32, 5, true), (std::vector<int64_t>{0, 7, 15, 23, 31}));
  EXPECT_EQ(voc_end_points(32, 5, false), (std::vector<int64_t>{0, 8, 16, 23, 31}));
  EXPECT_EQ(voc_end_points(3, 5, true), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(voc_end_points(10, 4, true), (std::vector<int64_t>{0, 3, 6, 9}));  // 0, 3, 6, 9 exactly
}

// compile_results.py run_reward_alignment_eval_per_trajectory: `traj_pearson = float(...) if not
// np.isnan(traj_pearson) else 0.0`, every trajectory kept. One perfect trajectory (r = 1) and one
// with a constant prediction (undefined): original mean (1 + 0)/2 = 0.5, ours 1 (1 excluded).
TEST(OriginalProtocol, UndefinedCorrelationCountsAsZero) {
  TrajectoryScores a = traj("t", Quality::Successful, 1.0), b = traj("u", Quality::Successful, 1.0);
  a.gt_progress = {0, .5, 1};
  a.pred_progress = {.1, .4, .9};
  b.gt_progress = {0, .5, 1};
  b.pred_progress = {.3, .3, .3};
  const VocResult orig = reward_alignment({a, b}, true, true), ours = reward_alignment({a, b}, true, false);
  EXPECT_NEAR(*orig.pearson, (*pearson(a.gt_progress, a.pred_progress) + 0.0) / 2, 1e-12);
  EXPECT_EQ(orig.pearson_undefined, 1);
  EXPECT_NEAR(*ours.pearson, *pearson(a.gt_progress, a.pred_progress), 1e-12);
  MetricsOptions o;
  o.protocol = EvalProtocol::Original;
  const json m = compute_metrics({a, b}, {}, o);
  EXPECT_NEAR(m["overall"]["headline"]["voc_pearson"].get<double>(), *orig.pearson, 1e-12);
  EXPECT_EQ(m["options"]["protocol"], "original");
}

// _compute_policy_ranking_metrics_partial_success "ranking_acc_rba", used for sources whose name
// contains "roboreward" or "roboarena" (run_policy_ranking_eval). One task, partial_success /
// last-frame reward: (0.0, 0.2), (0.5, 0.2), (1.0, 0.9). Pairs with different ps: (0,.5): true
// 0>.5 = F, pred .2>.2 = F -> correct (a predicted tie counts when ps_i < ps_j); (0,1): F, F ->
// correct; (.5,1): F, F -> correct: 3/3 = 1. Reversed order (.5 first, 0 second): true T, pred
// F -> wrong, so the same rewards give 2/3.
TEST(OriginalProtocol, PartialSuccessSourcesByNameRankWithRankingAccRba) {
  auto g = [](double ps, double r, const std::string& src) {
    TrajectoryScores t = traj("t", Quality::Failure, r, src);
    t.partial_success = ps;
    t.id = src + std::to_string(ps);
    return t;
  };
  EXPECT_NEAR(*ranking_acc_rba({g(0, .2, "x"), g(.5, .2, "x"), g(1, .9, "x")}), 1.0, 1e-12);
  EXPECT_NEAR(*ranking_acc_rba({g(.5, .2, "x"), g(0, .2, "x"), g(1, .9, "x")}), 2.0 / 3.0, 1e-12);
  MetricsOptions o;
  o.protocol = EvalProtocol::Original;
  const json m = compute_metrics({g(0, .2, "roboreward_test"), g(.5, .2, "roboreward_test"),
                                  g(1, .9, "roboreward_test"), g(0, .2, "lab"), g(1, .9, "lab")},
                                 {}, o);
  const auto& rr = m["by_data_source"]["roboreward_test"];
  EXPECT_EQ(rr["policy_ranking"]["gold"], "partial_success");
  EXPECT_EQ(rr["headline"]["policy_ranking_metric"], "ranking_acc_rba");
  EXPECT_NEAR(rr["headline"]["policy_ranking"].get<double>(), 1.0, 1e-12);
  EXPECT_EQ(m["by_data_source"]["lab"]["policy_ranking"]["gold"], "quality_label");  // not by name
  EXPECT_EQ(m["by_data_source"]["lab"]["headline"]["policy_ranking_metric"], "kendall_tau_a_per_label_tuple");
}

// run_confusion_matrix_eval: trace / n - (sum - trace) / (n*n - n) of the raw mean matrix
// ("normalized_trace_minus_offdiag"). R = [[.9, .2], [.4, .7]]: (1.6/2) - (0.6/2) = 0.5.
TEST(OriginalProtocol, ConfusionHeadlineIsDiagonalMinusOffDiagonal) {
  const std::vector<ConfusionEntry> e = {{"A", "A", .9}, {"A", "B", .2}, {"B", "A", .4}, {"B", "B", .7}};
  const std::vector<TrajectoryScores> ts = {traj("A", Quality::Successful, .9),
                                            traj("B", Quality::Successful, .7)};
  MetricsOptions o;
  o.protocol = EvalProtocol::Original;
  const json m = compute_metrics(ts, {}, o, e);
  EXPECT_EQ(m["overall"]["headline"]["confusion_metric"], "diagonal_minus_off_diagonal");
  EXPECT_NEAR(m["overall"]["headline"]["confusion"].get<double>(), 0.5, 1e-12);
  const json ours = compute_metrics(ts, {}, {}, e);
  EXPECT_EQ(ours["overall"]["headline"]["confusion_metric"], "diagonal_score");
  // per video: .9/1.1 and .7/1.1 -> mean 8/11
  EXPECT_NEAR(ours["overall"]["headline"]["confusion"].get<double>(), 8.0 / 11.0, 1e-12);
}

// ---------------------------------------------------------------- scipy oracle

std::string find_python_with_scipy() {
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    const std::string cmd = std::string(py) + " -c 'import scipy' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return "";
}

TEST(ScipyOracle, RandomArraysMatchTo1e9) {
  const std::string py = find_python_with_scipy();
  if (py.empty()) GTEST_SKIP() << "python3 with scipy not found (Debian: apt-get install python3-scipy)";
  test::TempDir dir;
  std::mt19937_64 rng(20261126);
  std::uniform_real_distribution<double> U(-1, 1);
  std::vector<std::pair<std::vector<double>, std::vector<double>>> cases;
  std::vector<bool> tie_free;
  for (int c = 0; c < 60; ++c) {
    const int n = 2 + static_cast<int>(rng() % 40);
    const bool ties = c % 3 == 0;  // a third with coarse values -> ties in x and y
    std::vector<double> x(n), y(n);
    for (int i = 0; i < n; ++i) {
      x[i] = U(rng);
      y[i] = 0.6 * x[i] + 0.4 * U(rng);
      if (ties) {
        x[i] = std::round(x[i] * 3) / 3;
        y[i] = std::round(y[i] * 4) / 4;
      }
    }
    cases.emplace_back(x, y);
    tie_free.push_back(!ties);
  }
  cases.push_back({{1, 2, 3, 4}, {5, 5, 5, 5}});  // constant: undefined everywhere but tau-a = 0
  tie_free.push_back(false);

  json in;
  in["cases"] = json::array();
  for (const auto& [x, y] : cases) in["cases"].push_back({{"x", x}, {"y", y}});
  const auto in_path = dir / "in.json", out_path = dir / "out.json";
  std::ofstream(in_path) << in.dump();
  const std::string script = (test::source_dir() / "tests/eval/scipy_oracle.py").string();
  const std::string cmd = py + " " + script + " " + in_path.string() + " " + out_path.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  json out;
  std::ifstream(out_path) >> out;
  ASSERT_EQ(out["cases"].size(), cases.size());

  auto expect = [](const json& ref, const std::optional<double>& got, const char* what, size_t i) {
    if (ref.is_null()) {
      EXPECT_FALSE(got) << what << " case " << i;
    } else {
      ASSERT_TRUE(got) << what << " case " << i;
      EXPECT_NEAR(*got, ref.get<double>(), 1e-9) << what << " case " << i;
    }
  };
  int compared_tau_b = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [x, y] = cases[i];
    const json& r = out["cases"][i];
    expect(r["pearson"], pearson(x, y), "pearson", i);
    expect(r["spearman"], spearman(x, y), "spearman", i);
    expect(r["tau_a"], kendall_tau_a(x, y), "tau_a", i);
    if (tie_free[i]) {  // without ties tau-a == tau-b, scipy's own number
      expect(r["tau_b"], kendall_tau_a(x, y), "tau_b", i);
      ++compared_tau_b;
    }
  }
  EXPECT_GT(compared_tau_b, 30);
}

}  // namespace
}  // namespace robometer::eval
