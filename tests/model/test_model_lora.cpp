#include <gtest/gtest.h>

#include "model_test_util.h"
#include "robometer/core/compat.h"
#include "robometer/model/lora.h"
#include "robometer/model/reward_model.h"
#include "robometer/model/weights.h"

using namespace robometer;
using namespace robometer::model;
using robometer::test::ImageSpec;

namespace {

struct Fixture {
  RewardModel m{nullptr};
  ModelInputs in;
  Fixture() {
    torch::manual_seed(1);
    RewardModelConfig rc;
    rc.backbone = tiny_qwen3vl_config();
    m = RewardModel(rc);
    m->eval();
    const auto& c = rc.backbone;
    std::vector<std::vector<ImageSpec>> imgs = {{ImageSpec{4, 6}, ImageSpec{2, 2}}};
    in = test::make_inputs(c, imgs, {test::make_sample_tokens(c, imgs[0], 3, 2, 0)});
  }
  at::Tensor hidden() {
    robometer::compat::NoGradGuard ng;
    return m->model->forward(in).last_hidden_state;
  }
};

}  // namespace

TEST(ModelLora, FreshAdapterIsIdentityAndOnlyAdaptersTrain) {
  Fixture f;
  auto before = f.hidden();
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  const int64_t n = apply_lora(*f.m, lc);
  EXPECT_EQ(n, 3 * 7);  // 3 decoder layers x (q,k,v,o,gate,up,down)
  EXPECT_TRUE(f.hidden().equal(before));
  for (const auto& item : f.m->named_parameters()) {
    const bool is_adapter = item.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(item.value().requires_grad(), is_adapter) << item.key();
  }
  // PEFT-style names for the adapter file.
  StateDictOptions so;
  so.trainable_only = true;
  so.peft_names = true;
  auto sd = state_dict(*f.m, so);
  ASSERT_EQ(sd.size(), 2u * 21);
  // Default: PEFT wrapped Qwen3VLModel (the original's setup_utils.py load path).
  EXPECT_EQ(sd[0].first, "base_model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight");
  EXPECT_EQ(sd[0].second.sizes(), (at::IntArrayRef{4, 64}));
  so.peft_base = PeftBase::ForConditionalGeneration;  // the unsloth path wraps the LM-head model
  EXPECT_EQ(state_dict(*f.m, so)[0].first,
            "base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight");
}

TEST(ModelLora, MergedEqualsUnmergedAndUnmergeRestores) {
  Fixture f;
  auto w0 = f.m->model->language_model->layers->ptr<TextDecoderLayerImpl>(0)
                ->self_attn->q_proj->weight.detach()
                .clone();
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dropout = 0.1;  // eval mode: no dropout
  apply_lora(*f.m, lc);
  {
    robometer::compat::NoGradGuard ng;  // a trained adapter: B != 0
    for (const auto& item : f.m->named_parameters())
      if (item.key().find(".lora_B.") != std::string::npos) item.value().normal_(0, 0.05);
  }
  auto base = Fixture().hidden();
  auto unmerged = f.hidden();
  EXPECT_GT(test::max_rel_err(unmerged, base), 1e-3);  // the adapter does something
  merge_lora(*f.m);
  auto merged = f.hidden();
  EXPECT_LT(test::max_rel_err(merged, unmerged), 1e-5);
  unmerge_lora(*f.m);
  auto w1 =
      f.m->model->language_model->layers->ptr<TextDecoderLayerImpl>(0)->self_attn->q_proj->weight.detach();
  EXPECT_LT(test::max_rel_err(w1, w0), 1e-6);
  EXPECT_LT(test::max_rel_err(f.hidden(), unmerged), 1e-5);
}

TEST(ModelLora, BackwardReachesOnlyAdapters) {
  Fixture f;
  LoraConfig lc;
  lc.r = 2;
  apply_lora(*f.m, lc);
  f.m->train();
  auto out = f.m->forward(f.in);
  (out.progress_logits.sum() + out.preference_logit.sum()).backward();
  int64_t with_grad = 0;
  for (const auto& item : f.m->named_parameters()) {
    if (item.value().requires_grad()) {
      EXPECT_TRUE(item.value().grad().defined()) << item.key();
      ++with_grad;
    } else {
      EXPECT_FALSE(item.value().grad().defined()) << item.key();
    }
  }
  EXPECT_EQ(with_grad, 42);
}
