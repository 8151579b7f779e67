// Pair construction (spec §2.6): strategies, eligibility, swap rule, A/B placement, weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/test_util.h"
#include "data/trajectory_fixture.h"
#include "robometer/core/error.h"
#include "robometer/data/labels.h"
#include "robometer/data/sampler.h"

using namespace robometer::data;

namespace {

using robometer::test::traj;

// Two sources: "lab" (tasks pick, place; place has a failure) and "sim" (task push).
std::shared_ptr<TrajectoryIndex> demo_index() {
  return std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{
      traj("p1", "pick", "lab", 64), traj("p2", "pick", "lab", 40), traj("q1", "place", "lab", 32),
      traj("q2", "place", "lab", 20, Quality::Failure), traj("s1", "push", "sim", 32),
      traj("s2", "push", "sim", 12)});
}

SamplerOptions only(Strategy s) {
  SamplerOptions o;
  o.strategy_ratios = {0, 0, 0, 0};
  o.strategy_ratios[static_cast<size_t>(s)] = 1;
  return o;
}

bool strictly_increasing(const std::vector<int64_t>& v, int64_t n) {
  for (int64_t i = 1; i < n; ++i)
    if (v[static_cast<size_t>(i)] <= v[static_cast<size_t>(i - 1)]) return false;
  return true;
}

void expect_padded(const ClipPlan& c, int K) {
  ASSERT_EQ(static_cast<int>(c.stored_indices.size()), K);
  ASSERT_EQ(static_cast<int>(c.progress.size()), K);
  for (int64_t i = c.valid_frames; i < K; ++i) {  // right padding repeats the last frame + label
    EXPECT_EQ(c.stored_indices[static_cast<size_t>(i)],
              c.stored_indices[static_cast<size_t>(c.valid_frames - 1)]);
    EXPECT_EQ(c.progress[static_cast<size_t>(i)], c.progress[static_cast<size_t>(c.valid_frames - 1)]);
  }
}

}  // namespace

TEST(Sampler, ForwardChosenClip) {
  auto idx = demo_index();
  PairSampler s(idx, only(Strategy::Rewind));
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    PairPlan p = s.sample(rng);
    const ClipPlan& c = p.chosen;
    expect_padded(c, 8);
    EXPECT_TRUE(strictly_increasing(c.stored_indices, c.valid_frames));
    EXPECT_EQ(c.progress[0], 0.0);  // relative to the clip's first frame
    EXPECT_EQ(c.progress_mask, 1.f);
    EXPECT_GE(c.valid_frames, 3);
    const int64_t S = std::min<int64_t>(idx->at(c.trajectory).num_frames, 32);
    for (int64_t i : c.stored_indices) EXPECT_LT(i, S);
  }
}

TEST(Sampler, RewindGoesUpThenDown) {
  // Exact construction: s = 2 < e = 5 < m = 9 in 32 stored frames gives the segment
  // 2..9 then 8..5 (12 frames); linspace(0, 11, 8) = 0, 1.57, 3.14, 4.71, 6.29, 7.86, 9.43, 11
  // -> positions 0, 2, 3, 5, 6, 8, 9, 11 -> frames 2, 4, 5, 7, 8, 8, 7, 5.
  auto idx = demo_index();
  PairSampler s(idx, only(Strategy::Rewind));
  ClipPlan c = s.clip_from_segment(idx->find("q1"), ClipOrder::Rewind, segment_indices(32, 2, 5, 9), false);
  EXPECT_EQ(c.stored_indices, (std::vector<int64_t>{2, 4, 5, 7, 8, 8, 7, 5}));
  // Progress: s = 2, denominator 32 - 2 - 1 = 29.
  EXPECT_DOUBLE_EQ(c.progress[4], 6.0 / 29);
  EXPECT_DOUBLE_EQ(c.progress[7], 3.0 / 29);

  // Random rewinds: the frames rise to a peak and fall back, never below the first frame
  // (linspace may drop the peak or the short way back, as in the original).
  int came_back = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    PairPlan p = s.sample(rng);
    EXPECT_EQ(p.strategy, Strategy::Rewind);
    const ClipPlan& r = p.rejected;
    EXPECT_EQ(r.order, ClipOrder::Rewind);
    EXPECT_EQ(r.trajectory, p.chosen.trajectory);
    const auto& v = r.stored_indices;
    const auto n = static_cast<size_t>(r.valid_frames);
    const size_t peak =
        static_cast<size_t>(std::max_element(v.begin(), v.begin() + static_cast<long>(n)) - v.begin());
    for (size_t i = 1; i <= peak; ++i) EXPECT_LE(v[i - 1], v[i]);
    for (size_t i = peak + 1; i < n; ++i) EXPECT_GE(v[i - 1], v[i]);
    for (size_t i = 1; i < n; ++i) EXPECT_GT(v[i], v[0]);  // s is the lowest frame
    came_back += v[n - 1] < v[peak];
    EXPECT_EQ(r.progress[0], 0.0);
    EXPECT_EQ(*std::max_element(r.progress.begin(), r.progress.end()), r.progress[peak]);
  }
  EXPECT_GT(came_back, 25);
}

TEST(Sampler, ReverseIsDecreasing) {
  PairSampler s(demo_index(), only(Strategy::Reverse));
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    PairPlan p = s.sample(rng);
    EXPECT_EQ(p.strategy, Strategy::Reverse);
    const ClipPlan& r = p.rejected;
    expect_padded(r, 8);
    for (int64_t i = 1; i < r.valid_frames; ++i) {
      EXPECT_GT(r.stored_indices[static_cast<size_t>(i - 1)], r.stored_indices[static_cast<size_t>(i)]);
      EXPECT_GT(r.progress[static_cast<size_t>(i - 1)], r.progress[static_cast<size_t>(i)]);
    }
    EXPECT_EQ(r.progress[static_cast<size_t>(r.valid_frames - 1)], 0.0);  // ends at its lowest frame
  }
}

TEST(Sampler, DifferentTaskHasZeroLabels) {
  auto idx = demo_index();
  PairSampler s(idx, only(Strategy::DifferentTask));
  int different = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    PairPlan p = s.sample(rng);
    // A drawn failure (q2) still becomes a same-task pair (the original checks quality first).
    if (p.strategy != Strategy::DifferentTask) {
      EXPECT_EQ(idx->at(p.rejected.trajectory).id, "q2");
      continue;
    }
    ++different;
    EXPECT_EQ(p.task, idx->at(p.chosen.trajectory).task);
    EXPECT_NE(idx->at(p.rejected.trajectory).task, p.task);
    EXPECT_EQ(idx->at(p.rejected.trajectory).quality, Quality::Successful);
    for (double g : p.rejected.progress) EXPECT_EQ(g, 0.0);
    for (double y : p.rejected.success) EXPECT_EQ(y, 0.0);
    for (double m : p.rejected.success_mask) EXPECT_EQ(m, 1.0);  // g = 0 < 0.5: all negatives
  }
  EXPECT_GT(different, 35);
}

TEST(Sampler, DifferentTaskSameSourceProbability) {
  auto idx = demo_index();
  SamplerOptions o = only(Strategy::DifferentTask);
  o.source_weights = {{"lab", 1.0}, {"sim", 0.0}};  // chosen always from "lab"
  o.different_task_same_source_prob = 1.0;
  PairSampler same(idx, o);
  o.different_task_same_source_prob = 0.0;
  PairSampler any(idx, o);
  int other_source = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Rng r1(seed), r2(seed);
    PairPlan a = same.sample(r1);
    EXPECT_EQ(idx->at(a.chosen.trajectory).data_source, "lab");
    EXPECT_EQ(idx->at(a.rejected.trajectory).data_source, "lab");
    PairPlan b = any.sample(r2);
    other_source += idx->at(b.rejected.trajectory).data_source == "sim";
  }
  // With p = 0 the other task is drawn among {place|pick, push}: "sim" about half the time.
  EXPECT_GT(other_source, 50);
  EXPECT_LT(other_source, 150);
}

TEST(Sampler, SuboptimalPairsAFailureOfTheSameTask) {
  auto idx = demo_index();
  PairSampler s(idx, only(Strategy::Suboptimal));
  std::set<std::string> chosen_ids;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Rng rng(seed);
    PairPlan p = s.sample(rng);
    EXPECT_EQ(p.strategy, Strategy::Suboptimal);
    const Trajectory& c = idx->at(p.chosen.trajectory);
    const Trajectory& r = idx->at(p.rejected.trajectory);
    EXPECT_EQ(c.task, "place");
    EXPECT_EQ(r.id, "q2");
    EXPECT_EQ(c.quality, Quality::Successful);
    EXPECT_EQ(p.rejected.progress_mask, 0.f);
    for (double y : p.rejected.success) EXPECT_EQ(y, 0.0);
    for (double m : p.rejected.success_mask) EXPECT_EQ(m, 1.0);
    chosen_ids.insert(c.id);
    // Swap rule: when the failure is drawn first, both are shown whole (K frames spanning all).
    if (p.chosen.order == ClipOrder::Whole) {
      EXPECT_EQ(p.rejected.order, ClipOrder::Whole);
      EXPECT_EQ(p.rejected.stored_indices.front(), 0);
      EXPECT_EQ(p.rejected.stored_indices.back(), 19);
    }
  }
  EXPECT_EQ(chosen_ids, (std::set<std::string>{"q1"}));
}

TEST(Sampler, DrawnFailureBecomesRejected) {
  auto idx = demo_index();
  PairSampler s(idx, SamplerOptions{});
  Rng rng(3);
  auto p = s.sample_for(idx->find("q2"), Strategy::Rewind, rng);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->strategy, Strategy::Suboptimal);
  EXPECT_EQ(idx->at(p->rejected.trajectory).id, "q2");
  EXPECT_EQ(idx->at(p->chosen.trajectory).id, "q1");
  EXPECT_EQ(p->chosen.order, ClipOrder::Whole);
  // q1 has 32 stored frames -> linspace to 8: 0,4,9,13,18,22,27,31.
  EXPECT_EQ(p->chosen.stored_indices, (std::vector<int64_t>{0, 4, 9, 13, 18, 22, 27, 31}));
}

TEST(Sampler, RebalancesAwayFromImpossibleStrategies) {
  // No failures anywhere: suboptimal is impossible, so [1,1,0,0] always ends as rewind.
  auto idx = std::make_shared<TrajectoryIndex>(
      std::vector<Trajectory>{traj("a", "t1", "src", 30), traj("b", "t2", "src", 30)});
  SamplerOptions o;
  o.strategy_ratios = {1, 1, 0, 0};
  PairSampler s(idx, o);
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Rng rng(seed);
    EXPECT_EQ(s.sample(rng).strategy, Strategy::Rewind);
  }
  // Only the impossible strategy: a clear error, not a hang.
  PairSampler impossible(idx, only(Strategy::Suboptimal));
  Rng rng(1);
  EXPECT_THROW(impossible.sample(rng), robometer::Error);
}

TEST(Sampler, StrategyRatiosAreRespected) {
  PairSampler s(demo_index(), SamplerOptions{});
  std::map<Strategy, int> count;
  for (uint64_t seed = 0; seed < 800; ++seed) {
    Rng rng(seed);
    count[s.sample(rng).strategy]++;
  }
  for (auto st : {Strategy::Rewind, Strategy::Suboptimal, Strategy::DifferentTask, Strategy::Reverse}) {
    EXPECT_GT(count[st], 120) << strategy_name(st);  // 1:1:1:1 -> ~200 each
    EXPECT_LT(count[st], 280) << strategy_name(st);
  }
}

TEST(Sampler, ChosenPlacementTrainVsEval) {
  auto idx = demo_index();
  SamplerOptions o;
  PairSampler train(idx, o);
  o.is_eval = true;
  PairSampler eval(idx, o);
  int first = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Rng r1(seed), r2(seed);
    first += train.sample(r1).chosen_first;
    EXPECT_TRUE(eval.sample(r2).chosen_first);
  }
  EXPECT_GT(first, 150);
  EXPECT_LT(first, 250);
}

TEST(Sampler, SameSeedSamePlan) {
  PairSampler s(demo_index(), SamplerOptions{});
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng a(seed), b(seed);
    PairPlan x = s.sample(a), y = s.sample(b);
    EXPECT_EQ(x.chosen.stored_indices, y.chosen.stored_indices);
    EXPECT_EQ(x.rejected.stored_indices, y.rejected.stored_indices);
    EXPECT_EQ(x.rejected.trajectory, y.rejected.trajectory);
    EXPECT_EQ(x.chosen_first, y.chosen_first);
  }
}

TEST(Sampler, StoredCapMapsToVideoFrames) {
  auto idx = demo_index();
  PairSampler s(idx, SamplerOptions{});
  Rng rng(0);
  // p1 has 64 video frames -> stored frame j is video frame 2j.
  auto c = s.make_clip(idx->find("p1"), ClipOrder::Forward, rng);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->num_stored, 32);
  for (size_t k = 0; k < c->stored_indices.size(); ++k)
    EXPECT_EQ(c->video_indices[k], 2 * c->stored_indices[k]);
}

TEST(Sampler, ShortTrajectoryIsPadded) {
  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{traj("a", "t", "s", 5)});
  PairSampler s(idx, SamplerOptions{});
  Rng rng(0);
  auto c = s.make_clip(0, ClipOrder::Whole, rng);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->valid_frames, 5);
  EXPECT_EQ(c->stored_indices, (std::vector<int64_t>{0, 1, 2, 3, 4, 4, 4, 4}));
  // S = 5, s = 0, denominator 5 - 0 - 1 = 4: 0, .25, .5, .75, 1, then 1 repeated.
  EXPECT_EQ(c->progress, (std::vector<double>{0, .25, .5, .75, 1, 1, 1, 1}));
  EXPECT_EQ(c->success, (std::vector<double>{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(c->success_mask, (std::vector<double>{1, 1, 0, 0, 1, 1, 1, 1}));
  // Too short for a random sub-clip.
  auto tiny = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{traj("a", "t", "s", 2)});
  PairSampler t(tiny, SamplerOptions{});
  EXPECT_FALSE(t.make_clip(0, ClipOrder::Forward, rng));
}

TEST(Sampler, PreferenceOnlyAndCutoffOptions) {
  auto idx = demo_index();
  SamplerOptions o = only(Strategy::Rewind);
  o.preference_only_sources = {"sim"};
  o.success_cutoffs = {{"lab", 0.5}};
  PairSampler s(idx, o);
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Rng rng(seed);
    PairPlan p = s.sample(rng);
    const Trajectory& c = idx->at(p.chosen.trajectory);
    EXPECT_EQ(p.chosen.progress_mask, c.data_source == "sim" ? 0.f : 1.f);
    EXPECT_EQ(s.success_cutoff(c.data_source), c.data_source == "lab" ? 0.5 : 1.0);
    for (size_t k = 0; k < 8; ++k)  // y = 1[g >= c]
      EXPECT_EQ(p.chosen.success[k], p.chosen.progress[k] >= s.success_cutoff(c.data_source) ? 1.0 : 0.0);
  }
}

TEST(Sampler, PartialSuccessChosenIsTheBetterOne) {
  auto a = traj("a", "t", "graded", 20, Quality::Failure);
  a.partial_success = 0.25f;
  auto b = traj("b", "t", "graded", 20, Quality::Failure);
  b.partial_success = 0.75f;
  auto c = traj("c", "u", "graded", 20);
  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{a, b, c});
  PairSampler s(idx, only(Strategy::Suboptimal));
  int seen = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    Rng rng(seed);
    auto p = s.sample_for(seed % 2 ? 0 : 1, Strategy::Suboptimal, rng);
    ASSERT_TRUE(p);
    EXPECT_EQ(idx->at(p->chosen.trajectory).id, "b");
    EXPECT_EQ(idx->at(p->rejected.trajectory).id, "a");
    EXPECT_EQ(p->rejected.progress_mask, 1.f);  // graded trajectories keep progress
    ++seen;
  }
  EXPECT_EQ(seen, 60);
}

// A graded clip that reaches the trajectory's last stored frame is labelled [0, ..., 0, p]
// whatever predict_last_frame_partial_progress says (the original compute_progress_from_segment
// always gets partial_success); the flag only adds the per-frame mask that keeps the loss on
// that frame (RBMBaseSampler._get_traj_from_data predict_last_frame_mask).
TEST(Sampler, PartialSuccessLabelsAlwaysLastFrameMaskOnlyWithFlag) {
  auto a = traj("a", "t", "graded", 20, Quality::Failure);
  a.partial_success = 0.25f;
  auto b = traj("b", "t", "graded", 20, Quality::Failure);
  b.partial_success = 0.75f;
  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{a, b});
  for (bool on : {false, true}) {
    SamplerOptions o = only(Strategy::Suboptimal);
    o.last_frame_partial_progress = on;
    PairSampler s(idx, o);
    int ending_on_last = 0, not_ending = 0;
    for (uint64_t seed = 0; seed < 80; ++seed) {
      Rng rng(seed);
      auto p = s.sample_for(seed % 2, Strategy::Suboptimal, rng);
      ASSERT_TRUE(p);
      for (const ClipPlan* c : {&p->chosen, &p->rejected}) {
        const auto& ix = c->stored_indices;
        ASSERT_EQ(c->progress_frame_mask.size(), ix.size());
        const auto last = std::find(ix.begin(), ix.end(), c->num_stored - 1);
        const size_t valid = static_cast<size_t>(c->valid_frames);
        if (last == ix.end()) {
          ++not_ending;
          const std::vector<double> plain = progress_labels(c->num_stored, ix, 1.0);
          for (size_t k = 0; k < ix.size(); ++k) {
            EXPECT_NEAR(c->progress[k], plain[k], 1e-12);
            EXPECT_EQ(c->progress_frame_mask[k], on ? 0.0 : 1.0);  // flag: nothing to supervise
          }
          continue;
        }
        ++ending_on_last;
        const double score = *idx->at(c->trajectory).partial_success;
        const size_t at = static_cast<size_t>(last - ix.begin());
        for (size_t k = 0; k < ix.size(); ++k) {
          // Right padding repeats the last frame and its label; the mask marks only real frames.
          const bool last_frame = k >= at && ix[k] == c->num_stored - 1;
          EXPECT_NEAR(c->progress[k], last_frame ? score : 0.0, 1e-12) << seed << " " << k;
          const double mask = !on ? 1.0 : (last_frame && k < valid ? 1.0 : 0.0);
          EXPECT_EQ(c->progress_frame_mask[k], mask) << seed << " " << k;
        }
      }
    }
    EXPECT_GT(ending_on_last, 5) << "too few clips reach the last stored frame to test anything";
    EXPECT_GT(not_ending, 5);
  }
}

// A data source of weight 0 is never drawn from, also not when it is the only one holding
// failures for a drawn "suboptimal" strategy; all weights 0 is a configuration error.
TEST(Sampler, WeightZeroSourceIsNeverDrawnFrom) {
  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{
      traj("a1", "t", "main", 30), traj("a2", "t", "main", 30), traj("z1", "u", "zero", 30, Quality::Failure),
      traj("z2", "u", "zero", 30, Quality::Failure)});
  SamplerOptions o;
  o.source_weights = {{"zero", 0.0}};
  PairSampler s(idx, o);
  for (uint64_t seed = 0; seed < 500; ++seed) {
    Rng rng(seed);
    const PairPlan p = s.sample(rng);
    EXPECT_EQ(idx->at(p.chosen.trajectory).data_source, "main") << seed;
    EXPECT_EQ(idx->at(p.rejected.trajectory).data_source, "main") << seed;
  }
  o.source_weights = {{"zero", 0.0}, {"main", 0.0}};
  EXPECT_THROW(PairSampler(idx, o), robometer::ConfigError);
}

// The chosen side is always a successful trajectory (spec 2.6): a failure whose task has no
// success must not be rewound/reversed as a positive or win against another failure. Data
// without any successful trajectory is an error, not silently trained on.
TEST(Sampler, FailuresAreNeverTheChosenSide) {
  auto idx = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{
      traj("a1", "t", "A", 30), traj("a2", "t", "A", 30), traj("f1", "u", "B", 30, Quality::Failure),
      traj("f2", "u", "B", 30, Quality::Failure)});
  PairSampler s(idx, SamplerOptions{});
  for (uint64_t seed = 0; seed < 500; ++seed) {
    Rng rng(seed);
    const PairPlan p = s.sample(rng);
    EXPECT_TRUE(idx->is_successful(p.chosen.trajectory)) << seed << " " << strategy_name(p.strategy);
  }
  auto failures_only = std::make_shared<TrajectoryIndex>(std::vector<Trajectory>{
      traj("f1", "u", "B", 30, Quality::Failure), traj("f2", "u", "B", 30, Quality::Failure)});
  PairSampler f(failures_only, SamplerOptions{});
  Rng rng(7);
  robometer::test::expect_throw_contains([&] { f.sample(rng); }, {"successful trajectories"});
}

TEST(Sampler, RejectsBadOptions) {
  auto idx = demo_index();
  SamplerOptions o;
  o.frames_per_clip = 2;
  EXPECT_THROW(PairSampler(idx, o), robometer::ConfigError);
  o = SamplerOptions{};
  o.strategy_ratios = {0, 0, 0, 0};
  EXPECT_THROW(PairSampler(idx, o), robometer::ConfigError);
  o = SamplerOptions{};
  o.success_cutoffs = {{"lab", 0.0}};
  EXPECT_THROW(PairSampler(idx, o), robometer::ConfigError);
}
