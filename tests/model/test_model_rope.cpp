#include <gtest/gtest.h>

#include "model_test_util.h"
#include "robometer/core/error.h"
#include "robometer/model/rotary.h"

using namespace robometer;
using namespace robometer::model;
using robometer::test::ImageSpec;

// Hand-worked get_rope_index example (tiny config, spatial merge 2).
// Sample 0 (17 tokens): t0 t1 VS [img A: grid 1x4x6 -> 2x3 = 6 tokens] VE prog VS [img B: 1x2x2 -> 1 token]
// VE prog t pref
//   t0,t1,VS            -> 0,1,2 (all three axes)
//   img A: starts after 3 text tokens, st_idx 0: t = 0+3 = 3; h = row+3 in {3,4}; w = col+3 in {3,4,5}
//          (t,h,w) = (3,3,3)(3,3,4)(3,3,5)(3,4,3)(3,4,4)(3,4,5); segment max 5
//   VE prog VS          -> 6,7,8
//   img B: text_len 3, st_idx 6 -> (9,9,9); segment max 9
//   VE prog t pref      -> 10,11,12,13
// Sample 1 (6 tokens, right-padded to 17): t VS [img: 1x2x2] VE prog pref
//   t,VS -> 0,1; img -> (2,2,2); VE prog pref -> 3,4,5; padding -> 1 (HF fills 1).
TEST(ModelRope, HandWorkedTwoImagePrompt) {
  auto c = tiny_qwen3vl_config();
  auto s0 = test::make_sample_tokens(c, {ImageSpec{4, 6}, ImageSpec{2, 2}}, 2, 1, 0);
  auto s1 = test::make_sample_tokens(c, {ImageSpec{2, 2}}, 1, 0, 1);
  ASSERT_EQ(s0.ids.size(), 17u);
  ASSERT_EQ(s1.ids.size(), 6u);
  auto in = test::make_inputs(c, {{ImageSpec{4, 6}, ImageSpec{2, 2}}, {ImageSpec{2, 2}}}, {s0, s1});
  auto pos = mrope_position_ids(in.input_ids, in.attention_mask, in.image_grid_thw, c);
  ASSERT_EQ(pos.sizes(), (at::IntArrayRef{3, 2, 17}));
  std::vector<std::vector<int64_t>> e0 = {{0, 1, 2, 3, 3, 3, 3, 3, 3, 6, 7, 8, 9, 10, 11, 12, 13},
                                          {0, 1, 2, 3, 3, 3, 4, 4, 4, 6, 7, 8, 9, 10, 11, 12, 13},
                                          {0, 1, 2, 3, 4, 5, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}};
  std::vector<int64_t> e1 = {0, 1, 2, 3, 4, 5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  for (int d = 0; d < 3; ++d)
    for (int j = 0; j < 17; ++j) {
      EXPECT_EQ(pos[d][0][j].item<int64_t>(), e0[d][j]) << "axis " << d << " pos " << j;
      EXPECT_EQ(pos[d][1][j].item<int64_t>(), e1[j]) << "axis " << d << " pos " << j;
    }
}

TEST(ModelRope, TextOnlyIsArange) {
  auto c = tiny_qwen3vl_config();
  auto ids = at::arange(10, 20, at::kLong).view({1, 10});
  auto pos = mrope_position_ids(ids, at::ones({1, 10}, at::kLong), {}, c);
  for (int d = 0; d < 3; ++d) EXPECT_TRUE(pos[d][0].equal(at::arange(10, at::kLong)));
}

TEST(ModelRope, GridMismatchIsAnError) {
  auto c = tiny_qwen3vl_config();
  auto s0 = test::make_sample_tokens(c, {ImageSpec{4, 6}}, 2, 1, 0);
  auto in = test::make_inputs(c, {{ImageSpec{4, 6}}}, {s0});
  auto wrong = at::tensor({1, 2, 2}, at::kLong).view({1, 3});
  EXPECT_THROW(mrope_position_ids(in.input_ids, in.attention_mask, wrong, c), Error);
  auto two = at::tensor({1, 4, 6, 1, 2, 2}, at::kLong).view({2, 3});
  EXPECT_THROW(mrope_position_ids(in.input_ids, in.attention_mask, two, c), Error);
}

// Interleaved M-RoPE: frequency slot j takes its angle from axis T, H or W by j % 3 within
// 3*section, else T. With t=1, h=2, w=3 the angle of slot j is pos_axis * inv_freq[j].
TEST(ModelRope, InterleavedSlotsUseTheRightAxis) {
  auto c = tiny_qwen3vl_config();  // head_dim 16 -> 8 slots, sections {2,3,3}
  auto pos = at::tensor({1, 2, 3}, at::kLong).view({3, 1, 1});
  auto [cos, sin] = text_mrope_cos_sin(pos, c.text, at::kDouble);
  const double theta = c.text.rope_theta;
  // slots: 0 T,1 H,2 W,3 T,4 H,5 W,6 T,7 H  (H: j%3==1, j<9; W: j%3==2, j<9)
  const int axis[8] = {0, 1, 2, 0, 1, 2, 0, 1};
  for (int j = 0; j < 8; ++j) {
    const double inv = 1.0 / std::pow(theta, (2.0 * j) / 16.0);
    const double ang = (axis[j] + 1) * inv;
    EXPECT_NEAR(sin[0][0][j].item<double>(), std::sin(ang), 1e-6) << "slot " << j;
    EXPECT_NEAR(cos[0][0][j + 8].item<double>(), std::cos(ang), 1e-6) << "slot " << j;
  }
}
