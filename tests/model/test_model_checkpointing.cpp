#include <gtest/gtest.h>

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "model_test_util.h"
#include "robometer/core/compat.h"
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

RunResult run(bool ckpt, bool lora) {
  torch::manual_seed(5);
  auto rc = small_config();
  rc.checkpoint_text = ckpt;
  rc.checkpoint_vision = ckpt;
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
  auto plain = run(false, false);
  auto ckpt = run(true, false);
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
  auto plain = run(false, true);
  auto ckpt = run(true, true);
  ASSERT_EQ(plain.grads.size(), ckpt.grads.size());
  // A replayed wrong mask moves gradients by O(1); 1e-4 leaves room for summation-order noise
  // (the pip wheel's MKL on the GPU machine gave 1.1e-5 where OpenBLAS here gives < 1e-6).
  for (const auto& [k, g] : plain.grads) EXPECT_LT(test::max_rel_err(ckpt.grads.at(k), g), 1e-4) << k;
}
