// The fused paths (compat.h) against the eager ones, the vision tower's per-grid tables and
// frozen-tower behaviour, and the LoRA branch's arithmetic. Tests that need a fused op the
// LibTorch build lacks, or a CUDA device, skip with the reason (scripts/gpu/run runs them there).
#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include "model_test_util.h"
#include "robometer/core/compat.h"
#include "robometer/model/checkpointing.h"
#include "robometer/model/lora.h"
#include "robometer/model/reward_model.h"
#include "robometer/model/text_decoder.h"
#include "robometer/model/vision.h"

using namespace robometer;
using namespace robometer::model;
using robometer::test::ImageSpec;

namespace {

// Turns the fused paths on or off for a scope.
struct FusedSwitch {
  bool before = compat::fused_enabled();
  explicit FusedSwitch(bool on) { compat::set_fused_enabled(on); }
  ~FusedSwitch() { compat::set_fused_enabled(before); }
};

#define SKIP_WITHOUT_CUDA()         \
  if (!torch::cuda::is_available()) \
  GTEST_SKIP() << "no CUDA device (scripts/gpu/run runs this on the GPU machine)"

RewardModelConfig tiny_rc(bool train_vision) {
  RewardModelConfig rc;
  rc.backbone = tiny_qwen3vl_config();
  rc.train_vision = train_vision;
  rc.head_dropout = 0.0;
  return rc;
}

ModelInputs tiny_inputs(const Qwen3VLConfig& c) {
  torch::manual_seed(2);
  std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{4, 6}, ImageSpec{4, 6}}, {ImageSpec{4, 4}}};
  return test::make_inputs(
      c, imgs,
      {test::make_sample_tokens(c, imgs[0], 5, 3, 0), test::make_sample_tokens(c, imgs[1], 4, 2, 1)});
}

at::Tensor loss_of(const RewardOutputs& o) {
  return o.progress_logits.pow(2).sum() + o.success_logits.sum() + o.preference_logit.sum();
}

}  // namespace

// ---------------------------------------------------------------- vision tower
TEST(ModelVision, FrozenTowerKeepsNoGraphAndGetsNoGrad) {
  torch::manual_seed(0);
  RewardModel m(tiny_rc(/*train_vision=*/false));
  m->train();
  auto in = tiny_inputs(m->config().backbone);
  auto bb = m->model->forward(in);
  ASSERT_TRUE(bb.image_embeds.defined());
  EXPECT_FALSE(bb.image_embeds.requires_grad());
  EXPECT_EQ(bb.image_embeds.grad_fn(), nullptr);
  for (const auto& d : bb.deepstack) EXPECT_EQ(d.grad_fn(), nullptr);
  loss_of(m->forward(in)).backward();
  int64_t visual = 0;
  for (const auto& p : m->named_parameters()) {
    if (p.key().rfind("model.visual.", 0) != 0) continue;
    ++visual;
    EXPECT_FALSE(p.value().requires_grad()) << p.key();
    EXPECT_FALSE(p.value().grad().defined()) << p.key();
  }
  EXPECT_GT(visual, 0);
  EXPECT_TRUE(
      m->model->language_model->layers->ptr<TextDecoderLayerImpl>(0)->mlp->up_proj->weight.grad().defined());
}

TEST(ModelVision, GridTablesBuiltOncePerGridAndFollowTheTable) {
  torch::manual_seed(0);
  RewardModel m(tiny_rc(true));
  auto& vis = *m->model->visual;
  auto grid = at::tensor({1, 4, 6, 1, 4, 6, 1, 4, 4}, at::kLong).view({3, 3});
  compat::NoGradGuard ng;
  auto a = vis.interpolated_pos_embed(grid);
  auto b = vis.interpolated_pos_embed(grid);
  EXPECT_EQ(vis.cached_pos_grids(), 2u);  // (4,6) and (4,4)
  EXPECT_TRUE(at::equal(a, b));
  // Rows of equal grids are equal, and the table is read anew on every call.
  EXPECT_TRUE(at::equal(a.narrow(0, 0, 24), a.narrow(0, 24, 24)));
  vis.pos_embed->weight.mul_(2);
  auto c = vis.interpolated_pos_embed(grid);
  EXPECT_LT(test::max_rel_err(c, a * 2), 1e-6);
  // The rotary tables: once per grid list.
  auto pix = at::randn({3 * 24 - 8, m->config().backbone.vision.patch_dim()});
  vis.forward(pix, grid);
  vis.forward(pix, grid);
  EXPECT_EQ(vis.cached_rotary_grids(), 1u);
}

// ---------------------------------------------------------------- LoRA
TEST(ModelLoraBranch, MatchesTheFormulaInOutputAndGradients) {
  torch::manual_seed(4);
  for (double dropout : {0.0, 0.3}) {
    LoraLinear lin(12, 10, true);
    lin->attach_adapter(4, 8.0, dropout);
    {
      compat::NoGradGuard ng;
      lin->lora_B->weight.normal_(0, 0.1);
    }
    auto x = at::randn({3, 5, 12}).requires_grad_(true);
    lin->eval();  // no dropout in eval, whatever the rate
    auto y = lin->forward(x);
    const double s = lin->scaling();
    auto ref = at::linear(x, lin->weight, lin->bias) +
               at::linear(at::linear(x, lin->lora_A->weight), lin->lora_B->weight) * s;
    EXPECT_LT(test::max_rel_err(y, ref), 1e-6) << dropout;
    auto go = at::randn_like(y);
    auto g1 = torch::autograd::grad({y}, {x, lin->lora_A->weight, lin->lora_B->weight}, {go});
    auto g2 = torch::autograd::grad({ref}, {x, lin->lora_A->weight, lin->lora_B->weight}, {go});
    for (size_t i = 0; i < g1.size(); ++i)
      EXPECT_LT(test::max_rel_err(g1[i], g2[i]), 1e-6) << dropout << " " << i;
    lin->train();
    if (dropout == 0.0) {  // training without dropout: the same function as eval
      EXPECT_TRUE(at::equal(lin->forward(x), y));
    } else {  // with dropout the branch changes, the base projection does not
      torch::manual_seed(9);
      auto yt = lin->forward(x);
      EXPECT_FALSE(at::allclose(yt, y));
    }
  }
}

// ---------------------------------------------------------------- fused ops on CPU (2.x)
TEST(ModelFused, RmsNormFusedEqualsEagerOnCpu) {
#if !ROBOMETER_HAS_RMS_NORM
  GTEST_SKIP() << "LibTorch " << TORCH_VERSION
               << " has no at::rms_norm (2.4+): the eager RMSNorm is the only path";
#else
  torch::manual_seed(1);
  RMSNorm norm(32, 1e-6);
  {
    compat::NoGradGuard ng;
    norm->weight.uniform_(0.5, 1.5);
  }
  auto x = at::randn({4, 7, 32});
  auto eager = norm->forward(x);  // CPU: always the eager path
  auto fused = compat::fused_rms_norm(x, norm->weight, 1e-6);
  EXPECT_LT(test::max_rel_err(fused, eager), 1e-6);
#endif
}

TEST(ModelFused, GqaAttentionEqualsRepeatedHeads) {
  torch::manual_seed(2);
  auto q = at::randn({2, 8, 6, 16}), k = at::randn({2, 2, 6, 16}), v = at::randn({2, 2, 6, 16});
  auto rep = [](const at::Tensor& t) { return t.repeat_interleave(4, 1); };
  auto a = compat::sdpa(q, k, v, {}, true, 0.25);
  auto b = compat::sdpa(q, rep(k), rep(v), {}, true, 0.25);
  EXPECT_TRUE(at::equal(a, b));  // CPU: K/V expanded exactly as HF's repeat_kv
}

// ---------------------------------------------------------------- fused vs eager on CUDA (bf16)
TEST(ModelFusedGpu, RmsNormForwardAndGradients) {
  SKIP_WITHOUT_CUDA();
  if (!ROBOMETER_HAS_RMS_NORM) GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no at::rms_norm";
  torch::manual_seed(1);
  RMSNorm norm(256, 1e-6);
  norm->to(at::kCUDA, at::kBFloat16);
  auto x = at::randn({8, 33, 256}, at::dtype(at::kBFloat16).device(at::kCUDA)).requires_grad_(true);
  auto go = at::randn_like(x);
  std::vector<at::Tensor> out[2];
  for (int fused = 0; fused < 2; ++fused) {
    FusedSwitch sw(fused == 1);
    EXPECT_EQ(compat::use_fused_rms_norm(x), fused == 1);
    auto y = norm->forward(x);
    auto g = torch::autograd::grad({y}, {x, norm->weight}, {go});
    out[fused] = {y, g[0], g[1]};
  }
  for (size_t i = 0; i < 3; ++i) EXPECT_LT(test::max_rel_err(out[1][i], out[0][i]), 2e-2) << i;
}

TEST(ModelFusedGpu, GqaAttentionForwardAndGradients) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(2);
  auto opts = at::dtype(at::kBFloat16).device(at::kCUDA);
  auto q = at::randn({2, 8, 128, 64}, opts).requires_grad_(true);
  auto k = at::randn({2, 2, 128, 64}, opts).requires_grad_(true);
  auto v = at::randn({2, 2, 128, 64}, opts).requires_grad_(true);
  auto go = at::randn({2, 8, 128, 64}, opts);
  std::vector<at::Tensor> out[2];
  for (int fused = 0; fused < 2; ++fused) {
    FusedSwitch sw(fused == 1);
    auto o = compat::sdpa(q, k, v, {}, true, 0.125);
    auto g = torch::autograd::grad({o}, {q, k, v}, {go});
    out[fused] = {o, g[0], g[1], g[2]};
  }
  for (size_t i = 0; i < 4; ++i) EXPECT_LT(test::max_rel_err(out[1][i], out[0][i]), 2e-2) << i;
}

TEST(ModelFusedGpu, SavedOutputAttentionMatchesAutograd) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(3);
  auto opts = at::dtype(at::kBFloat16).device(at::kCUDA);
  auto q = at::randn({2, 4, 96, 64}, opts).requires_grad_(true);
  auto k = at::randn({2, 4, 96, 64}, opts).requires_grad_(true);
  auto v = at::randn({2, 4, 96, 64}, opts).requires_grad_(true);
  auto ref = compat::sdpa(q, k, v, {}, true, 0.125);
  auto go = at::randn_like(ref);
  auto g = torch::autograd::grad({ref}, {q, k, v}, {go});
  compat::SdpaSaved saved;
  {
    compat::NoGradGuard ng;
    saved = compat::sdpa_forward_lse(q, k, v, {}, true, 0.125);
  }
  std::printf("saved-output attention on CUDA: %s kernel\n",
              saved.fused ? "memory-efficient (LSE)" : "eager");
  EXPECT_LT(test::max_rel_err(saved.out, ref.detach()), 2e-2);
  auto [gq, gk, gv] = compat::sdpa_backward(go, q.detach(), k.detach(), v.detach(), {}, true, 0.125, saved);
  EXPECT_LT(test::max_rel_err(gq, g[0]), 3e-2);
  EXPECT_LT(test::max_rel_err(gk, g[1]), 3e-2);
  EXPECT_LT(test::max_rel_err(gv, g[2]), 3e-2);
}

TEST(ModelFusedGpu, VisionFc1GeluFusedEqualsEager) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(4);
  auto vc = tiny_qwen3vl_config().vision;
  VisionMLP mlp(vc);
  mlp->to(at::kCUDA, at::kBFloat16);
  auto x = at::randn({50, vc.hidden_size}, at::dtype(at::kBFloat16).device(at::kCUDA));
  compat::NoGradGuard ng;
  at::Tensor out[2];
  for (int fused = 0; fused < 2; ++fused) {
    FusedSwitch sw(fused == 1);
    EXPECT_EQ(use_fused_fc1_gelu(x), fused == 1);
    out[fused] = mlp->forward(x);
  }
  EXPECT_LT(test::max_rel_err(out[1], out[0]), 2e-2);
}

// The whole model on CUDA in bf16: fused vs eager paths, and selective checkpointing vs none,
// in the loss and every parameter's gradient.
TEST(ModelFusedGpu, ModelLossAndGradientsFusedVsEagerAndSelective) {
  SKIP_WITHOUT_CUDA();
  struct Run {
    double loss;
    std::map<std::string, at::Tensor> grads;
  };
  auto run = [](bool fused, const std::string& mode) {
    FusedSwitch sw(fused);
    torch::manual_seed(0);
    auto rc = tiny_rc(true);
    rc.checkpointing = CheckpointPlan::parse(mode);
    RewardModel m(rc);
    m->to(at::kCUDA, at::kBFloat16);
    m->train();
    auto in = tiny_inputs(rc.backbone);
    for (at::Tensor* t : {&in.input_ids, &in.attention_mask, &in.pixel_values, &in.image_grid_thw,
                          &in.prog_positions, &in.pref_positions})
      if (t->defined()) *t = t->to(at::kCUDA);
    auto loss = loss_of(m->forward(in)).to(at::kFloat);
    loss.backward();
    Run r{loss.item<double>(), {}};
    for (const auto& p : m->named_parameters())
      if (p.value().grad().defined()) r.grads[p.key()] = p.value().grad().to(at::kFloat);
    return r;
  };
  auto eager = run(false, "none");
  for (const auto& [fused, mode] : std::vector<std::pair<bool, std::string>>{
           {true, "none"}, {true, "selective"}, {false, "selective"}, {true, "full"}}) {
    auto r = run(fused, mode);
    EXPECT_NEAR(r.loss, eager.loss, 2e-2 * (1 + std::abs(eager.loss))) << fused << " " << mode;
    ASSERT_EQ(r.grads.size(), eager.grads.size()) << mode;
    double worst = 0;
    for (const auto& [k, g] : eager.grads) worst = std::max(worst, test::max_rel_err(r.grads.at(k), g));
    std::printf("fused %d, checkpointing %s: loss %.5f vs %.5f eager, worst grad rel err %.3g\n", fused,
                mode.c_str(), r.loss, eager.loss, worst);
    EXPECT_LT(worst, 1e-1) << fused << " " << mode;
  }
}
