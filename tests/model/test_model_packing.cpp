// Packed inputs (model::pack_inputs): the batch's sequences end to end in one row, each
// attending only to itself. Per sequence, the heads' outputs and every parameter gradient must
// equal those of the right-padded batch.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model_test_util.h"
#include "robometer/core/error.h"
#include "robometer/model/reward_model.h"

using namespace robometer;
using namespace robometer::model;
using robometer::test::ImageSpec;

namespace {

RewardModel tiny_trainable_model(CheckpointPlan plan) {
  torch::manual_seed(0);
  RewardModelConfig rc;
  rc.backbone = tiny_qwen3vl_config();
  rc.train_vision = true;  // gradients through the tower too
  rc.checkpointing = plan;
  RewardModel m(rc);
  m->eval();  // no dropout: both runs must see the same function
  return m;
}

struct Run {
  RewardOutputs out;
  std::vector<at::Tensor> grads;
};

// A loss that touches every head output at every valid position, with fixed weights.
Run forward_backward(RewardModel& m, const ModelInputs& in) {
  for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
  Run r;
  r.out = m->forward(in);
  const auto valid = r.out.prog_valid.to(at::kFloat);
  at::Tensor w = at::arange(r.out.progress_logits.numel(), at::kFloat).view_as(r.out.progress_logits).sin();
  auto loss = (r.out.progress_logits * w * valid.unsqueeze(-1)).sum() +
              (r.out.success_logits * valid * 0.7).sum() + (r.out.preference_logit * 1.3).sum();
  loss.backward();
  for (auto& p : m->parameters())
    r.grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
  return r;
}

void expect_packed_equals_padded(CheckpointPlan plan) {
  auto m = tiny_trainable_model(plan);
  const auto& c = m->config().backbone;
  // Three sequences of different lengths: different image grids, numbers of images and text.
  std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{4, 6}, ImageSpec{4, 4}},
                                              {ImageSpec{2, 4}},
                                              {ImageSpec{2, 2}, ImageSpec{4, 2}, ImageSpec{2, 6}}};
  const auto s0 = test::make_sample_tokens(c, imgs[0], 3, 2, 0);
  const auto s1 = test::make_sample_tokens(c, imgs[1], 9, 1, 1);
  const auto s2 = test::make_sample_tokens(c, imgs[2], 1, 5, 2);
  const ModelInputs padded = test::make_inputs(c, imgs, {s0, s1, s2});
  const ModelInputs packed = pack_inputs(padded);

  const int64_t real = static_cast<int64_t>(s0.ids.size() + s1.ids.size() + s2.ids.size());
  ASSERT_EQ(packed.input_ids.sizes(), (at::IntArrayRef{1, real}));
  ASSERT_LT(real, padded.input_ids.numel()) << "the test needs sequences of different lengths";
  EXPECT_FALSE(packed.attention_mask.defined());
  EXPECT_EQ(packed_lengths(packed),
            (std::vector<int64_t>{static_cast<int64_t>(s0.ids.size()), static_cast<int64_t>(s1.ids.size()),
                                  static_cast<int64_t>(s2.ids.size())}));

  const Run a = forward_backward(m, padded);
  const Run b = forward_backward(m, packed);
  ASSERT_EQ(a.out.progress_logits.sizes(), b.out.progress_logits.sizes());
  EXPECT_TRUE(a.out.prog_valid.equal(b.out.prog_valid));
  const auto valid = a.out.prog_valid;
  EXPECT_LT(test::max_rel_err(b.out.progress_logits.index({valid}), a.out.progress_logits.index({valid})),
            1e-5);
  EXPECT_LT(test::max_rel_err(b.out.success_logits.index({valid}), a.out.success_logits.index({valid})),
            1e-5);
  EXPECT_LT(test::max_rel_err(b.out.preference_logit, a.out.preference_logit), 1e-5);

  const auto named = m->named_parameters();
  ASSERT_EQ(a.grads.size(), named.size());
  int checked = 0;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    if (a.grads[i].abs().max().item<double>() == 0) {
      EXPECT_EQ(b.grads[i].abs().max().item<double>(), 0) << named[i].key();
      continue;
    }
    EXPECT_LT(test::max_rel_err(b.grads[i], a.grads[i]), 1e-5) << named[i].key();
    ++checked;
  }
  EXPECT_GT(checked, 20);  // the decoder, the tower and the heads all got gradients
}

}  // namespace

TEST(ModelPacking, PackedForwardAndGradientsEqualThePaddedBatchPerSequence) {
  expect_packed_equals_padded({});
}

TEST(ModelPacking, PackedEqualsPaddedUnderSelectiveCheckpointing) {
  CheckpointPlan plan;
  plan.mode = CheckpointPlan::Mode::Selective;
  expect_packed_equals_padded(plan);
}

TEST(ModelPacking, PackingRefusesInputsThatAreNotRightPadded) {
  auto m = tiny_trainable_model({});
  const auto& c = m->config().backbone;
  std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{2, 2}}, {ImageSpec{2, 4}}};
  ModelInputs in = test::make_inputs(
      c, imgs,
      {test::make_sample_tokens(c, imgs[0], 1, 1, 0), test::make_sample_tokens(c, imgs[1], 4, 1, 1)});
  in.attention_mask[0][0] = 0;  // a hole before real tokens
  try {
    pack_inputs(in);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample 0 is not right-padded"), std::string::npos) << e.what();
  }
}
