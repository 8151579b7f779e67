#include <gtest/gtest.h>

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "model_test_util.h"
#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/model/checkpointing.h"
#include "robometer/model/lora.h"
#include "robometer/model/reward_model.h"

using namespace robometer;
using namespace robometer::model;
using robometer::test::ImageSpec;

namespace {

// Live/peak CPU bytes as reported by c10's CPU allocator to a thread-local memory reporter
// (the mechanism of the PyTorch profiler's memory tracking).
struct MemoryMeter : public c10::MemoryReportingInfoBase {
  int64_t live = 0, peak = 0;
  void record(int64_t delta) {
    live += delta;
    peak = std::max(peak, live);
  }
  // LibTorch 1.13 passes the totals as int64_t, 2.x as size_t; one of these overrides it.
  void reportMemoryUsage(void*, int64_t alloc_size, int64_t, int64_t, c10::Device) { record(alloc_size); }
  void reportMemoryUsage(void*, int64_t alloc_size, size_t, size_t, c10::Device) { record(alloc_size); }
  bool memoryProfilingEnabled() const override { return true; }
};

RewardModelConfig small_config() {
  RewardModelConfig rc;
  rc.backbone = tiny_qwen3vl_config();
  rc.backbone.text.num_hidden_layers = 6;
  rc.backbone.text.hidden_size = 128;
  rc.backbone.text.intermediate_size = 384;
  rc.backbone.vision.out_hidden_size = 128;
  rc.backbone.vision.depth = 4;
  rc.backbone.vision.deepstack_visual_indexes = {1, 2};
  rc.train_vision = true;
  rc.head_dropout = 0.0;
  return rc;
}

ModelInputs inputs_for(const Qwen3VLConfig& c) {
  torch::manual_seed(11);
  std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{8, 8}, ImageSpec{8, 8}, ImageSpec{8, 8}},
                                              {ImageSpec{8, 8}, ImageSpec{8, 8}}};
  return test::make_inputs(
      c, imgs,
      {test::make_sample_tokens(c, imgs[0], 20, 10, 0), test::make_sample_tokens(c, imgs[1], 12, 6, 1)});
}

struct RunResult {
  std::map<std::string, at::Tensor> grads;
  int64_t peak_bytes = 0;
  int64_t after_forward_bytes = 0;
};

RunResult run(const std::string& mode, bool lora) {
  torch::manual_seed(5);
  auto rc = small_config();
  rc.checkpointing = CheckpointPlan::parse(mode);
  RewardModel m(rc);
  if (lora) {
    LoraConfig lc;
    lc.r = 4;
    lc.dropout = 0.2;  // dropout inside checkpointed blocks: the RNG replay must match
    apply_lora(*m, lc, /*freeze_base=*/false);
    robometer::compat::NoGradGuard ng;
    for (const auto& item : m->named_parameters())
      if (item.key().find(".lora_B.") != std::string::npos) item.value().normal_(0, 0.05);
  }
  m->train();
  auto in = inputs_for(rc.backbone);
  RunResult r;
  auto meter = std::make_shared<MemoryMeter>();
  {
    c10::DebugInfoGuard guard(c10::DebugInfoKind::PROFILER_STATE, meter);
    torch::manual_seed(7);
    auto out = m->forward(in);
    auto loss = out.progress_logits.pow(2).sum() + out.success_logits.sum() + out.preference_logit.sum();
    r.after_forward_bytes = meter->live;
    loss.backward();
  }
  r.peak_bytes = meter->peak;
  for (const auto& item : m->named_parameters())
    if (item.value().grad().defined()) r.grads[item.key()] = item.value().grad().clone();
  return r;
}

}  // namespace

TEST(ModelCheckpointing, SameGradientsLessMemory) {
  auto plain = run("none", false);
  auto ckpt = run("full", false);
  ASSERT_EQ(plain.grads.size(), ckpt.grads.size());
  ASSERT_GT(plain.grads.count("model.visual.blocks.0.attn.qkv.weight"), 0u);
  for (const auto& [k, g] : plain.grads) {
    ASSERT_TRUE(ckpt.grads.count(k)) << k;
    EXPECT_LT(test::max_rel_err(ckpt.grads.at(k), g), 1e-5) << k;
  }
  std::printf(
      "activation checkpointing (6-layer text h128 + 4-block vision, 2 samples, 5 images):\n"
      "  saved after forward: %.2f MB plain vs %.2f MB checkpointed\n"
      "  peak during forward+backward: %.2f MB plain vs %.2f MB checkpointed\n",
      plain.after_forward_bytes / 1e6, ckpt.after_forward_bytes / 1e6, plain.peak_bytes / 1e6,
      ckpt.peak_bytes / 1e6);
  EXPECT_GT(plain.after_forward_bytes, 0) << "memory reporting is not active";
  EXPECT_LT(ckpt.after_forward_bytes, plain.after_forward_bytes / 2);
  EXPECT_LT(ckpt.peak_bytes, plain.peak_bytes);
}

TEST(ModelCheckpointing, LoraDropoutReplaysTheSameMasks) {
  auto plain = run("none", true);
  for (const char* mode : {"full", "selective", "3"}) {
    auto ckpt = run(mode, true);
    ASSERT_EQ(plain.grads.size(), ckpt.grads.size()) << mode;
    // A replayed wrong mask moves gradients by O(1); 1e-4 leaves room for summation-order noise
    // (the pip wheel's MKL on the GPU machine gave 1.1e-5 where OpenBLAS here gives < 1e-6).
    for (const auto& [k, g] : plain.grads)
      EXPECT_LT(test::max_rel_err(ckpt.grads.at(k), g), 1e-4) << mode << " " << k;
  }
}

// Every mode gives the gradients of `none` for every parameter (fp32), and the modes order by
// what they keep after the forward: full < first-N < selective < none.
TEST(ModelCheckpointing, EveryModeSameGradientsMemoryOrdered) {
  auto plain = run("none", false);
  ASSERT_GT(plain.grads.size(), 0u);
  std::map<std::string, RunResult> runs;
  for (const char* mode : {"full", "selective", "3"}) {
    runs[mode] = run(mode, false);
    const auto& r = runs[mode];
    ASSERT_EQ(r.grads.size(), plain.grads.size()) << mode;
    for (const auto& [k, g] : plain.grads) {
      ASSERT_TRUE(r.grads.count(k)) << mode << " " << k;
      EXPECT_LT(test::max_rel_err(r.grads.at(k), g), 1e-5) << mode << " " << k;
    }
  }
  std::printf("saved after forward / peak (MB), 6-layer text h128 + 4-block vision:\n");
  std::printf("  none      %7.2f / %7.2f\n", plain.after_forward_bytes / 1e6, plain.peak_bytes / 1e6);
  for (const auto& [mode, r] : runs)
    std::printf("  %-9s %7.2f / %7.2f\n", mode.c_str(), r.after_forward_bytes / 1e6, r.peak_bytes / 1e6);
  EXPECT_LT(runs["full"].after_forward_bytes, runs["3"].after_forward_bytes);
  EXPECT_LT(runs["3"].after_forward_bytes, plain.after_forward_bytes);
  EXPECT_LT(runs["full"].after_forward_bytes, runs["selective"].after_forward_bytes);
  EXPECT_LT(runs["selective"].after_forward_bytes, plain.after_forward_bytes);
}

TEST(ModelCheckpointing, PlanParsesModesAndAliases) {
  using M = CheckpointPlan::Mode;
  EXPECT_EQ(CheckpointPlan::parse("none").mode, M::None);
  EXPECT_EQ(CheckpointPlan::parse("false").mode, M::None);
  EXPECT_EQ(CheckpointPlan::parse("true").mode, M::Full);
  EXPECT_EQ(CheckpointPlan::parse("Full").mode, M::Full);
  EXPECT_EQ(CheckpointPlan::parse("selective").mode, M::Selective);
  const auto n = CheckpointPlan::parse("12");
  EXPECT_EQ(n.mode, M::Layers);
  EXPECT_EQ(n.layers, 12);
  EXPECT_TRUE(n.full_at(11));
  EXPECT_FALSE(n.full_at(12));
  EXPECT_EQ(n.str(), "12");
  EXPECT_FALSE(CheckpointPlan::parse("0").any());
  EXPECT_EQ(CheckpointPlan::parse("true").str(), "full");
  try {
    CheckpointPlan::parse("sometimes");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model.activation_checkpointing = 'sometimes'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("selective"), std::string::npos) << msg;
  }
  EXPECT_THROW(CheckpointPlan::parse("-1"), ConfigError);
  EXPECT_THROW(CheckpointPlan::parse(""), ConfigError);
}

// The attention backward the selective replay runs (from the saved output and log-sum-exp)
// equals autograd through the eager attention (whose softmax runs in fp32), causal and masked.
TEST(ModelCheckpointing, SavedOutputAttentionBackwardMatchesAutograd) {
  torch::manual_seed(3);
  for (int variant = 0; variant < 2; ++variant) {
    auto q = torch::randn({2, 4, 7, 8}, torch::dtype(torch::kFloat64)).requires_grad_(true);
    auto k = torch::randn({2, 4, 7, 8}, torch::dtype(torch::kFloat64)).requires_grad_(true);
    auto v = torch::randn({2, 4, 7, 8}, torch::dtype(torch::kFloat64)).requires_grad_(true);
    at::Tensor mask;
    if (variant == 1) mask = torch::rand({2, 1, 7, 7}).gt(0.3).logical_or(torch::eye(7, torch::kBool));
    const bool causal = variant == 0;
    auto ref = compat::sdpa(q, k, v, mask, causal, 0.3);
    auto go = torch::randn_like(ref);
    auto g = torch::autograd::grad({ref}, {q, k, v}, {go});
    compat::SdpaSaved saved;
    {
      compat::NoGradGuard ng;
      saved = compat::sdpa_forward_lse(q, k, v, mask, causal, 0.3);
    }
    EXPECT_LT(test::max_rel_err(saved.out, ref.detach()), 1e-6) << variant;
    auto [gq, gk, gv] =
        compat::sdpa_backward(go, q.detach(), k.detach(), v.detach(), mask, causal, 0.3, saved);
    EXPECT_LT(test::max_rel_err(gq, g[0]), 1e-6) << variant;
    EXPECT_LT(test::max_rel_err(gk, g[1]), 1e-6) << variant;
    EXPECT_LT(test::max_rel_err(gv, g[2]), 1e-6) << variant;
  }
}
