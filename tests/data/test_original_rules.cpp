// The original's per-source rules, labels, mixing and filters, with expected values worked out
// by hand from the original code (robometer/robometer @ c7f38e2); each test names the function.
#include <gtest/gtest.h>

#include <map>

#include "common/test_util.h"
#include "data/trajectory_fixture.h"
#include "robometer/config/loader.h"
#include "robometer/data/labels.h"
#include "robometer/data/run_options.h"
#include "robometer/data/sampler.h"

using namespace robometer::data;
namespace config = robometer::config;

namespace {

using robometer::test::traj;

config::RunConfig base_config(const std::vector<std::string>& overrides = {}) {
  return config::load_run_config((robometer::test::source_dir() / "configs/base.yaml").string(), overrides)
      .config;
}

std::vector<int64_t> range(int64_t from, int64_t to) {  // inclusive
  std::vector<int64_t> v;
  for (int64_t i = from; i <= to; ++i) v.push_back(i);
  return v;
}

}  // namespace

// dataset_success_cutoff.txt "oxe_droid,0.95", read by helpers.load_dataset_success_percent and
// used by _compute_absolute_first_frame_progress / compute_success_labels. A DROID trajectory of
// 40 frames is stored as S = 32 frames; a forward segment 0..29 subsampled to 8 frames is
// rint(linspace(0, 29, 8)) = 0,4,8,12,17,21,25,29. Cutoff 0.95: C = int(0.95*32) = 30, g = i/29,
// so frame 29 has g = 1 >= 0.95 (a success frame). With the old default 1.0 (C = 32, g = i/31)
// it would be 29/31 = 0.935 and no frame a success.
TEST(OriginalRules, DroidGetsSuccessLabelsFromCutoff095) {
  const auto cfg = base_config();
  SamplerOptions o = sampler_options(cfg.data);
  ASSERT_EQ(o.success_cutoffs.at("oxe_droid"), 0.95);
  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{traj("d", "pick", "oxe_droid", 40)});
  PairSampler s(idx, o);
  const ClipPlan c = s.clip_from_segment(0, ClipOrder::Forward, range(0, 29), false);
  const std::vector<int64_t> want_idx{0, 4, 8, 12, 17, 21, 25, 29};
  EXPECT_EQ(c.stored_indices, want_idx);
  for (size_t k = 0; k < 8; ++k) {
    EXPECT_NEAR(c.progress[k], std::min(1.0, want_idx[k] / 29.0), 1e-12) << k;
    EXPECT_EQ(c.success[k], k == 7 ? 1.0 : 0.0) << k;
  }
  EXPECT_EQ(c.progress_mask, 1.f);

  // The user's entry wins for its source; the rest of the shipped table stays.
  const auto user = base_config({"data.success_cutoffs={oxe_droid: 1.0}"});
  EXPECT_EQ(user.data.success_cutoffs.at("oxe_droid"), 1.0);
  EXPECT_EQ(user.data.success_cutoffs.at("oxe_berkeley_rpt_converted_externally_to_rlds"), 0.76);
  EXPECT_EQ(user.data.success_cutoffs.at("oxe_nyu_rot_dataset_converted_externally_to_rlds"), 0.7);
  PairSampler u(idx, sampler_options(user.data));
  const ClipPlan cu = u.clip_from_segment(0, ClipOrder::Forward, range(0, 29), false);
  EXPECT_NEAR(cu.progress[7], 29.0 / 31.0, 1e-12);
  EXPECT_EQ(cu.success[7], 0.0);
}

// dataset_category.py DATA_SOURCE_CATEGORY["preference_only"] (is_preference_only_ds, used by
// collators/rbm_heads.py should_compute_progress -> 0.0) and ["suboptimal_fail"].
TEST(OriginalRules, ShippedCategoriesAndUserOverride) {
  const auto cfg = base_config();
  EXPECT_EQ(source_rules(cfg.data, "oxe_bc_z").category(), "preference_only");
  EXPECT_EQ(source_rules(cfg.data, "epic").category(), "preference_only");
  EXPECT_EQ(source_rules(cfg.data, "roboarena").category(), "preference_only+suboptimal_fail");
  EXPECT_EQ(source_rules(cfg.data, "fino_net").category(), "suboptimal_fail");
  EXPECT_EQ(source_rules(cfg.data, "oxe_droid").category(), "default");
  const SamplerOptions o = sampler_options(cfg.data);
  EXPECT_TRUE(o.preference_only_sources.count("galaxea_part3_r1_lite"));
  EXPECT_TRUE(o.suboptimal_fail_sources.count("soar_rfm"));
  EXPECT_FALSE(o.preference_only_sources.count("soar_rfm"));

  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{traj("b", "t", "oxe_bc_z", 30)});
  EXPECT_EQ(PairSampler(idx, o).clip_from_segment(0, ClipOrder::Forward, range(0, 9), false).progress_mask,
            0.f);
  const auto user = base_config({"data.source_categories={oxe_bc_z: none}"});
  EXPECT_EQ(source_rules(user.data, "oxe_bc_z").category(), "default");
  EXPECT_EQ(source_rules(user.data, "epic").category(), "preference_only");
  EXPECT_EQ(PairSampler(idx, sampler_options(user.data))
                .clip_from_segment(0, ClipOrder::Forward, range(0, 9), false)
                .progress_mask,
            1.f);
  robometer::test::expect_throw_contains([] { base_config({"data.source_categories={x: bogus}"}); },
                                         {"data.source_categories.x", "bogus"});
}

// helpers.compute_progress_from_segment with partial_success = 0.4 != 1 and the last stored
// frame (19 of S = 20) in the segment 10..19: every label 0 except that frame, which gets 0.4;
// linspace(10 frames -> 8) = positions 0,1,3,4,5,6,8,9 -> frames 10,11,13,14,15,16,18,19.
// should_compute_progress: failure quality, but partial_success and "roboreward" in the source
// -> 1.0. compute_success_labels: failure -> all 0. predict_last_frame_partial_progress off
// (config.yaml default): predict_last_frame_mask all 1; on: 1 only at the last frame.
TEST(OriginalRules, RoboRewardPartialSuccessClipEndingAtLastFrame) {
  auto t = traj("r", "open drawer", "roboreward_bridge", 20, Quality::Failure);
  t.partial_success = 0.4f;
  auto g = traj("g", "open drawer", "my_graded_lab", 20, Quality::Failure);
  g.partial_success = 0.4f;
  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{t, g});
  for (bool flag : {false, true}) {
    auto cfg =
        base_config({"data.predict_last_frame_partial_progress=" + std::string(flag ? "true" : "false")});
    PairSampler s(idx, sampler_options(cfg.data));
    const ClipPlan c = s.clip_from_segment(0, ClipOrder::Forward, range(10, 19), false);
    EXPECT_EQ(c.stored_indices, (std::vector<int64_t>{10, 11, 13, 14, 15, 16, 18, 19}));
    for (size_t k = 0; k < 8; ++k) {
      EXPECT_NEAR(c.progress[k], k == 7 ? 0.4 : 0.0, 1e-6) << k;
      EXPECT_EQ(c.success[k], 0.0);
      EXPECT_EQ(c.progress_frame_mask[k], (!flag || k == 7) ? 1.0 : 0.0) << flag << " " << k;
    }
    EXPECT_EQ(c.progress_mask, 1.f);
    // A graded source not named like RoboReward: the quality rule (failure -> 0).
    EXPECT_EQ(s.clip_from_segment(1, ClipOrder::Forward, range(10, 19), false).progress_mask, 0.f);
    // Not reaching the last frame: the plain formula (cutoff 1.0 for this source: C = 20,
    // g = (i-5)/14), and with the flag nothing is supervised.
    const ClipPlan early = s.clip_from_segment(1, ClipOrder::Forward, range(5, 12), false);
    for (size_t k = 0; k < 8; ++k) {
      EXPECT_NEAR(early.progress[k], (early.stored_indices[k] - 5) / 14.0, 1e-12);
      EXPECT_EQ(early.progress_frame_mask[k], flag ? 0.0 : 1.0);
    }
  }
  // A short graded clip (S = 6 < K): right padding repeats frame 5 and its label 0.4, but the
  // original's mask marks only the real position (indices is not padded).
  auto shorty = traj("s", "x", "roboreward_bridge", 6, Quality::Failure);
  shorty.partial_success = 0.4f;
  auto sidx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{shorty});
  PairSampler s(sidx, sampler_options(base_config({"data.predict_last_frame_partial_progress=true"}).data));
  const ClipPlan c = s.clip_from_segment(0, ClipOrder::Whole, range(0, 5), false);
  const std::vector<double> want_p{0, 0, 0, 0, 0, 0.4, 0.4, 0.4}, want_m{0, 0, 0, 0, 0, 1, 0, 0};
  for (size_t k = 0; k < 8; ++k) {
    EXPECT_NEAR(c.progress[k], want_p[k], 1e-6) << k;
    EXPECT_EQ(c.progress_frame_mask[k], want_m[k]) << k;
  }
}

// RBMDataset.__getitem__ draws a trajectory of the concatenated dataset, so a source with 30
// trajectories is drawn 3x as often as one with 10 (P = 0.75); StrategyFirstDataset draws the
// source uniformly (P = 0.5).
TEST(OriginalRules, RbmMixingDrawsSourcesInProportionToSize) {
  std::vector<Trajectory> ts;
  for (int i = 0; i < 30; ++i)
    ts.push_back(traj("a" + std::to_string(i), "ta" + std::to_string(i % 3), "big", 20));
  for (int i = 0; i < 10; ++i)
    ts.push_back(traj("b" + std::to_string(i), "tb" + std::to_string(i % 2), "small", 20));
  auto idx = std::make_shared<TrajectoryIndex>(ts);
  for (Mixing m : {Mixing::Rbm, Mixing::StrategyFirst}) {
    SamplerOptions o;
    o.mixing = m;
    o.different_task_same_source_prob = 1.0;  // keeps both sides of a pair in one source
    PairSampler s(idx, o);
    int big = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) {
      Rng rng(hash_seed({17, static_cast<uint64_t>(i)}));
      big += idx->at(s.sample(rng).chosen.trajectory).data_source == "big";
    }
    const double want = m == Mixing::Rbm ? 0.75 : 0.5;
    EXPECT_NEAR(big / static_cast<double>(n), want, 0.03) << (m == Mixing::Rbm ? "rbm" : "strategy_first");
  }
}

// StrategyFirstDataset._filter_data_sources_by_strategy: the suboptimal strategy draws from
// is_suboptimal_fail_ds sources; a source with failures that is not listed is not drawn.
TEST(OriginalRules, StrategyFirstSuboptimalUsesTheListedSources) {
  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{
      traj("f1", "grasp", "fino_net", 20), traj("f2", "grasp", "fino_net", 20, Quality::Failure),
      traj("l1", "wipe", "lab", 20), traj("l2", "wipe", "lab", 20, Quality::Failure)});
  SamplerOptions o = sampler_options(base_config({"data.mixing=strategy_first"}).data);
  o.strategy_ratios = {0, 1, 0, 0};
  PairSampler s(idx, o);
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng rng(seed);
    const PairPlan p = s.sample(rng);
    EXPECT_EQ(idx->at(p.chosen.trajectory).data_source, "fino_net") << seed;
  }
}

// BaseDataset._filter_dataset drops frames_shape[0] <= min_frames (5); then
// _filter_task_based_criteria drops every trajectory without partial_success whose task has
// no successful trajectory (tasks of graded trajectories are kept).
TEST(OriginalRules, FiltersShortTrajectoriesAndTasksWithoutSuccess) {
  auto graded = traj("g1", "rate", "roboreward_x", 20, Quality::Failure);
  graded.partial_success = 0.5f;
  std::vector<WeightedManifest> ms(2);
  ms[0].manifest.trajectories = {traj("s5", "pick", "lab", 5), traj("s6", "pick", "lab", 6),
                                 traj("f1", "lost", "lab", 30, Quality::Failure),
                                 traj("f2", "lost", "lab", 30, Quality::Suboptimal)};
  // The only success of "push" has 4 frames: after the frame filter its failure is dropped too.
  ms[1].manifest.trajectories = {traj("p1", "push", "sim", 4),
                                 traj("p2", "push", "sim", 30, Quality::Failure), graded};
  FilterReport r;
  const auto kept = filter_index(std::make_shared<const TrajectoryIndex>(ms), 5, true, &r);
  EXPECT_EQ(r.too_short.at("lab"), 1);
  EXPECT_EQ(r.too_short.at("sim"), 1);
  EXPECT_EQ(r.no_success.at("lab"), 2);
  EXPECT_EQ(r.no_success.at("sim"), 1);
  EXPECT_EQ(r.tasks_without_success, 2);
  EXPECT_EQ(r.kept, 2);
  ASSERT_EQ(kept->size(), 2);
  std::set<std::string> ids{std::string(kept->id(0)), std::string(kept->id(1))};
  EXPECT_EQ(ids, (std::set<std::string>{"s6", "g1"}));
  // The kept index answers by source: "lab" keeps s6, "sim" nothing, the graded source g1.
  EXPECT_EQ(kept->by_source("lab").size(), 1);
  EXPECT_EQ(kept->by_source("sim").size(), 0);
  EXPECT_EQ(kept->by_source("roboreward_x").size(), 1);
  EXPECT_NE(r.summary().find("dropped 2 with too few frames"), std::string::npos) << r.summary();
}

// dataset_upload/helpers.py: `if height != width: scale = shortest_edge_size / min(h, w)`,
// squares (LIBERO 256x256) stored as they are; training reads what RBM stored. At inference the
// original feeds native frames to smart_resize (example_inference_local.py): eval.resize none.
TEST(OriginalRules, FramesSquareKeptAtTrainingNativeAtInference) {
  const auto cfg = base_config();
  const ResizeSpec train = resize_spec(cfg.data.resize);
  int w = 0, h = 0;
  resized_size(train, 256, 256, w, h);
  EXPECT_EQ(w, 256);
  EXPECT_EQ(h, 256);
  resized_size(train, 640, 480, w, h);
  EXPECT_EQ(w, 320);
  EXPECT_EQ(h, 240);
  const ResizeSpec infer = resize_spec(cfg.eval.resize);
  resized_size(infer, 640, 480, w, h);
  EXPECT_EQ(w, 640);
  EXPECT_EQ(h, 480);
  // Ours (every frame to a 240 short edge) stays one key away.
  resized_size(resize_spec(base_config({"data.resize.keep_square=false"}).data.resize), 256, 256, w, h);
  EXPECT_EQ(w, 240);
}
