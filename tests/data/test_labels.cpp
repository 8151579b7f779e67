// Hand-computed cases for every frame-selection and label rule (spec §2.1-2.3, §3.3).
#include <gtest/gtest.h>

#include "robometer/data/labels.h"

using namespace robometer::data;
using V = std::vector<int64_t>;

TEST(Labels, LinspaceMatchesNumpyRint) {
  // np.linspace(0, 31, 8) = 0, 4.43, 8.86, 13.29, 17.71, 22.14, 26.57, 31 -> rint.
  EXPECT_EQ(linspace_positions(32, 8), (V{0, 4, 9, 13, 18, 22, 27, 31}));
  // np.linspace(0, 9, 3) = 0, 4.5, 9: rint rounds 4.5 to the even 4.
  EXPECT_EQ(linspace_positions(10, 3), (V{0, 4, 9}));
  // np.linspace(0, 3, 3) = 0, 1.5, 3: 1.5 -> 2 (even).
  EXPECT_EQ(linspace_positions(4, 3), (V{0, 2, 3}));
  // Fewer items than wanted: all of them (padding happens later).
  EXPECT_EQ(linspace_positions(5, 8), (V{0, 1, 2, 3, 4}));
  EXPECT_EQ(linspace_positions(8, 8), (V{0, 1, 2, 3, 4, 5, 6, 7}));
  // k = 1 keeps the last item (original special case).
  EXPECT_EQ(linspace_positions(6, 1), (V{5}));
}

TEST(Labels, StoredFrameCapIsFloorOfUniformSpacing) {
  // int(i * 64 / 32) = 2i: every other frame, the last frame (63) is not kept.
  V even;
  for (int i = 0; i < 32; ++i) even.push_back(2 * i);
  EXPECT_EQ(stored_frame_indices(64, 32), even);
  // int(i * 40 / 32) = floor(1.25 i): 0,1,2,3,5,6,7,8,10,... last (i=31) = floor(38.75) = 38.
  V s = stored_frame_indices(40, 32);
  ASSERT_EQ(s.size(), 32u);
  EXPECT_EQ((V{s[0], s[1], s[2], s[3], s[4], s[5]}), (V{0, 1, 2, 3, 5, 6}));
  EXPECT_EQ(s[31], 38);
  // At or under the cap: identity.
  EXPECT_EQ(stored_frame_indices(3, 32), (V{0, 1, 2}));
  EXPECT_TRUE(stored_frame_indices(0, 32).empty());
}

TEST(Labels, SegmentIndices) {
  EXPECT_EQ(segment_indices(10, 2, 6), (V{2, 3, 4, 5, 6}));                 // forward
  EXPECT_EQ(segment_indices(10, 7, 2), (V{7, 6, 5, 4, 3, 2}));              // reverse
  EXPECT_EQ(segment_indices(10, 1, 3, 6), (V{1, 2, 3, 4, 5, 6, 5, 4, 3}));  // rewind s<e<m
  EXPECT_EQ(segment_indices(2, 1, 0), (V{0, 1}));                           // 2 frames: both
  EXPECT_EQ(segment_indices(1, 0, 0), (V{0}));
}

TEST(Labels, ProgressRelativeToFirstFrameWithCutoff) {
  // S = 32, c = 1: C = 32, s = 4, denominator 32 - 4 - 1 = 27.
  auto g = progress_labels(32, {4, 8, 12, 31}, 1.0);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_DOUBLE_EQ(g[0], 0.0);
  EXPECT_DOUBLE_EQ(g[1], 4.0 / 27);
  EXPECT_DOUBLE_EQ(g[2], 8.0 / 27);
  EXPECT_DOUBLE_EQ(g[3], 1.0);  // 27 / 27
  // c = 0.75: C = floor(24) = 24, denominator 24 - 4 - 1 = 19; 27/19 > 1 is capped.
  g = progress_labels(32, {4, 8, 12, 31}, 0.75);
  EXPECT_DOUBLE_EQ(g[1], 4.0 / 19);
  EXPECT_DOUBLE_EQ(g[2], 8.0 / 19);
  EXPECT_DOUBLE_EQ(g[3], 1.0);
  // Denominator floor: S = 10, c = 0.2 -> C = 2, s = 5: max(1, 2 - 5 - 1) = 1.
  g = progress_labels(10, {5, 6}, 0.2);
  EXPECT_DOUBLE_EQ(g[0], 0.0);
  EXPECT_DOUBLE_EQ(g[1], 1.0);
}

TEST(Labels, ProgressOfRewindAndReverseClips) {
  // Rewind 1..6..3 in S = 10: s = 1, denominator 10 - 1 - 1 = 8; rises to 5/8 then falls.
  auto g = progress_labels(10, {1, 2, 3, 4, 5, 6, 5, 4, 3}, 1.0);
  std::vector<double> want{0, 1. / 8, 2. / 8, 3. / 8, 4. / 8, 5. / 8, 4. / 8, 3. / 8, 2. / 8};
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_DOUBLE_EQ(g[i], want[i]) << i;
  // Reverse 7..2: s = min = 2, denominator 10 - 2 - 1 = 7: 5/7 down to 0.
  g = progress_labels(10, {7, 6, 5, 4, 3, 2}, 1.0);
  for (int i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(g[static_cast<size_t>(i)], (5.0 - i) / 7) << i;
}

TEST(Labels, PartialSuccessPutsTheGradeOnTheLastFrameOnly) {
  // Last stored frame (9) present: zeros except there.
  auto g = progress_labels(10, {3, 6, 9}, 1.0, 0.5f);
  EXPECT_EQ(g, (std::vector<double>{0.0, 0.0, 0.5}));
  // Last frame absent: the ordinary formula (s = 3, denominator 6): 0, 3/6, 5/6.
  g = progress_labels(10, {3, 6, 8}, 1.0, 0.5f);
  EXPECT_DOUBLE_EQ(g[1], 0.5);
  EXPECT_DOUBLE_EQ(g[2], 5.0 / 6);
  // partial_success = 1: ordinary formula too: s = 3, denominator 6 -> 0, 0.5, 1.
  g = progress_labels(10, {3, 6, 9}, 1.0, 1.0f);
  EXPECT_EQ(g, (std::vector<double>{0.0, 0.5, 1.0}));
}

TEST(Labels, SuccessLabelsAndInclusion) {
  // y = 1[g >= c] with c = 0.95.
  std::vector<double> g{0.0, 0.5, 0.95, 1.0};
  EXPECT_EQ(success_labels(g, 0.95, Quality::Successful), (std::vector<double>{0, 0, 1, 1}));
  EXPECT_EQ(success_labels(g, 0.95, Quality::Failure), (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ(success_labels(g, 0.95, Quality::Suboptimal), (std::vector<double>{0, 0, 0, 0}));

  // Inclusion with min_success 0.5, c = 1: g < 0.5 or y = 1; 0.5 <= g < 1 skipped.
  std::vector<double> p{0.0, 0.4, 0.5, 0.8, 1.0};
  auto y = success_labels(p, 1.0, Quality::Successful);
  EXPECT_EQ(y, (std::vector<double>{0, 0, 0, 0, 1}));
  EXPECT_EQ(success_inclusion(p, y, Quality::Successful, 0.5), (std::vector<double>{1, 1, 0, 0, 1}));
  // Failure trajectories: every frame is a negative.
  auto yf = success_labels(p, 1.0, Quality::Failure);
  EXPECT_EQ(success_inclusion(p, yf, Quality::Failure, 0.5), (std::vector<double>{1, 1, 1, 1, 1}));
}

TEST(Labels, ProgressMask) {
  EXPECT_EQ(progress_mask(Quality::Successful, false, false), 1.f);
  EXPECT_EQ(progress_mask(Quality::Failure, false, false), 0.f);
  EXPECT_EQ(progress_mask(Quality::Suboptimal, false, false), 0.f);
  EXPECT_EQ(progress_mask(Quality::Successful, true, false), 0.f);  // preference-only source
  EXPECT_EQ(progress_mask(Quality::Failure, true, true), 0.f);      // preference-only wins
  EXPECT_EQ(progress_mask(Quality::Failure, false, true), 1.f);     // graded (partial success)
}

TEST(Labels, TwoHotC51) {
  // g = 0 -> bin 0; g = 1 -> bin 9; g = 0.5 -> b = 4.5: 0.5 / 0.5 on bins 4, 5;
  // g = 0.3 -> b = 2.7: bin 2 gets 3 - 2.7 = 0.3, bin 3 gets 2.7 - 2 = 0.7; g = 1/3 -> b = 3.
  auto q = two_hot({0.0, 1.0, 0.5, 0.3, 1.0 / 3}, 10);
  ASSERT_EQ(q.sizes(), (at::IntArrayRef{5, 10}));
  auto a = q.accessor<float, 2>();
  EXPECT_FLOAT_EQ(a[0][0], 1.f);
  EXPECT_FLOAT_EQ(a[1][9], 1.f);
  EXPECT_FLOAT_EQ(a[2][4], 0.5f);
  EXPECT_FLOAT_EQ(a[2][5], 0.5f);
  EXPECT_NEAR(a[3][2], 0.3f, 1e-6);
  EXPECT_NEAR(a[3][3], 0.7f, 1e-6);
  EXPECT_FLOAT_EQ(a[4][3], 1.f);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(q[i].sum().item<float>(), 1.f, 1e-6) << i;
  // Expected value sum_k q_k * k/9 gives g back.
  auto centres = at::arange(10, at::kFloat) / 9.0;
  EXPECT_NEAR((q[3] * centres).sum().item<float>(), 0.3f, 1e-6);
}
