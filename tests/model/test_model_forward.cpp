#include <gtest/gtest.h>

#include "model_test_util.h"
#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/model/reward_model.h"

using namespace robometer;
using namespace robometer::model;
using robometer::test::ImageSpec;

namespace {

RewardModel tiny_model(bool train_vision = false) {
  torch::manual_seed(0);
  RewardModelConfig rc;
  rc.backbone = tiny_qwen3vl_config();
  rc.train_vision = train_vision;
  RewardModel m(rc);
  m->eval();
  return m;
}

}  // namespace

TEST(ModelForward, ShapesAndRanges) {
  auto m = tiny_model();
  const auto& c = m->config().backbone;
  std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{4, 6}, ImageSpec{4, 4}}, {ImageSpec{2, 4}}};
  auto s0 = test::make_sample_tokens(c, imgs[0], 3, 2, 0);
  auto s1 = test::make_sample_tokens(c, imgs[1], 2, 1, 1);
  auto in = test::make_inputs(c, imgs, {s0, s1});
  robometer::compat::NoGradGuard ng;
  auto out = m->forward(in);
  EXPECT_EQ(out.progress_logits.sizes(), (at::IntArrayRef{2, 2, 10}));
  EXPECT_EQ(out.progress.sizes(), (at::IntArrayRef{2, 2}));
  EXPECT_EQ(out.success_logits.sizes(), (at::IntArrayRef{2, 2}));
  EXPECT_EQ(out.preference_logit.sizes(), (at::IntArrayRef{2}));
  EXPECT_TRUE(out.prog_valid[1][1].item<bool>() == false);
  EXPECT_TRUE(out.progress.ge(0).all().item<bool>());
  EXPECT_TRUE(out.progress.le(1).all().item<bool>());
  EXPECT_TRUE(at::isfinite(out.progress_logits).all().item<bool>());

  auto bb = m->model->forward(in, {}, true);
  EXPECT_EQ(bb.last_hidden_state.sizes(), (at::IntArrayRef{2, in.input_ids.size(1), 64}));
  EXPECT_EQ(bb.image_embeds.size(0), 6 + 4 + 2);
  EXPECT_EQ(bb.deepstack.size(), 2u);
  EXPECT_EQ(bb.layer_outputs.size(), 3u);
}

TEST(ModelForward, ExpectedProgressIsBinExpectation) {
  auto m = tiny_model();
  auto h = at::randn({1, 5, 64});
  auto out = m->heads(h, at::tensor({1, 3}, at::kLong).view({1, 2}), at::tensor({4}, at::kLong));
  auto p = at::softmax(out.progress_logits, -1);
  auto manual = (p * at::arange(10, at::kFloat) / 9.0).sum(-1);
  EXPECT_TRUE(at::allclose(out.progress, manual, 1e-6, 1e-6));
}

TEST(ModelForward, CausalLaterTokenDoesNotChangeEarlierStates) {
  auto m = tiny_model();
  const auto& c = m->config().backbone;
  std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{4, 6}, ImageSpec{2, 2}}};
  auto s = test::make_sample_tokens(c, imgs[0], 3, 4, 0);
  auto pix =
      std::vector<at::Tensor>{at::randn({24, c.vision.patch_dim()}), at::randn({4, c.vision.patch_dim()})};
  auto a = test::make_inputs(c, imgs, {s}, pix);
  auto s2 = s;
  const size_t j = s2.ids.size() - 3;  // a text token after both images
  s2.ids[j] = (s2.ids[j] + 1) % 100 + 10;
  auto b = test::make_inputs(c, imgs, {s2}, pix);
  robometer::compat::NoGradGuard ng;
  auto ha = m->model->forward(a).last_hidden_state;
  auto hb = m->model->forward(b).last_hidden_state;
  EXPECT_TRUE(ha.narrow(1, 0, j).equal(hb.narrow(1, 0, j)));
  EXPECT_FALSE(at::allclose(ha.narrow(1, j, 1), hb.narrow(1, j, 1)));
}

TEST(ModelForward, RightPaddedBatchEqualsSingles) {
  auto m = tiny_model();
  const auto& c = m->config().backbone;
  std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{4, 6}, ImageSpec{4, 4}}, {ImageSpec{2, 4}}};
  auto s0 = test::make_sample_tokens(c, imgs[0], 3, 2, 0);
  auto s1 = test::make_sample_tokens(c, imgs[1], 2, 1, 1);
  std::vector<at::Tensor> pix = {at::randn({24, c.vision.patch_dim()}), at::randn({16, c.vision.patch_dim()}),
                                 at::randn({8, c.vision.patch_dim()})};
  auto batch = test::make_inputs(c, imgs, {s0, s1}, pix);
  auto one = test::make_inputs(c, {imgs[0]}, {s0}, {pix[0], pix[1]});
  auto two = test::make_inputs(c, {imgs[1]}, {s1}, {pix[2]});
  robometer::compat::NoGradGuard ng;
  auto hb = m->model->forward(batch).last_hidden_state;
  auto h0 = m->model->forward(one).last_hidden_state;
  auto h1 = m->model->forward(two).last_hidden_state;
  EXPECT_LT(test::max_rel_err(hb[0].narrow(0, 0, s0.ids.size()), h0[0]), 1e-5);
  EXPECT_LT(test::max_rel_err(hb[1].narrow(0, 0, s1.ids.size()), h1[0]), 1e-5);
  auto ob = m->forward(batch);
  auto o1 = m->forward(two);
  EXPECT_LT(test::max_rel_err(ob.progress_logits[1][0], o1.progress_logits[0][0]), 1e-5);
  EXPECT_LT(test::max_rel_err(ob.preference_logit[1], o1.preference_logit[0]), 1e-5);
}

TEST(ModelForward, VisionAttendsWithinEachImageOnly) {
  auto m = tiny_model();
  const auto& c = m->config().backbone;
  auto p0 = at::randn({24, c.vision.patch_dim()});
  auto p1 = at::randn({16, c.vision.patch_dim()});
  auto g0 = at::tensor({1, 4, 6}, at::kLong).view({1, 3});
  auto g1 = at::tensor({1, 4, 4}, at::kLong).view({1, 3});
  robometer::compat::NoGradGuard ng;
  auto both = m->model->visual->forward(at::cat({p0, p1}), at::cat({g0, g1}));
  auto a = m->model->visual->forward(p0, g0);
  auto b = m->model->visual->forward(p1, g1);
  EXPECT_LT(test::max_rel_err(both.embeds, at::cat({a.embeds, b.embeds})), 1e-5);
  for (size_t i = 0; i < both.deepstack.size(); ++i)
    EXPECT_LT(test::max_rel_err(both.deepstack[i], at::cat({a.deepstack[i], b.deepstack[i]})), 1e-5);
}

// With a grid equal to the learned table's side the bilinear sample points are the table's
// own entries, so the interpolation is the table reordered into 2x2 merge blocks.
TEST(ModelForward, PositionInterpolationOnNativeGridIsThePermutedTable) {
  auto m = tiny_model();
  auto table = m->model->visual->pos_embed->weight.detach();  // 16 x 32: a 4x4 grid
  robometer::compat::NoGradGuard ng;
  auto pe = m->model->visual->interpolated_pos_embed(at::tensor({1, 4, 4}, at::kLong).view({1, 3}));
  // merge order: block (0,0): rows 0-1, cols 0-1 -> table indices 0,1,4,5; block (0,1): 2,3,6,7; ...
  std::vector<int64_t> order = {0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15};
  EXPECT_LT(test::max_rel_err(pe, table.index_select(0, at::tensor(order, at::kLong))), 1e-6);
}

TEST(ModelForward, BadInputsAreErrors) {
  auto m = tiny_model();
  const auto& c = m->config().backbone;
  std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{4, 6}}};
  auto s = test::make_sample_tokens(c, imgs[0], 3, 2, 0);
  auto in = test::make_inputs(c, imgs, {s});
  robometer::compat::NoGradGuard ng;
  auto bad = in;
  bad.pixel_values = in.pixel_values.narrow(0, 0, 20);
  EXPECT_THROW(m->forward(bad), Error);
  bad = in;
  bad.input_ids = in.input_ids.clone();
  bad.input_ids[0][0] = 100000;
  EXPECT_THROW(m->forward(bad), Error);
  bad = in;
  bad.image_grid_thw = at::tensor({1, 3, 8}, at::kLong).view({1, 3});
  EXPECT_THROW(m->forward(bad), Error);
}
