#include <gtest/gtest.h>

#include "../common/test_util.h"
#include "model_test_util.h"
#include "robometer/core/error.h"
#include "robometer/io/safetensors.h"
#include "robometer/model/reward_model.h"
#include "robometer/model/weights.h"

using namespace robometer;
using namespace robometer::model;

namespace {

RewardModelConfig tiny_rc() {
  RewardModelConfig rc;
  rc.backbone = tiny_qwen3vl_config();
  return rc;
}

}  // namespace

TEST(ModelWeights, KeysAreRobometerStateDictNames) {
  RewardModel m(tiny_rc());
  auto sd = state_dict(*m);
  std::set<std::string> keys;
  for (auto& [k, t] : sd) keys.insert(k);
  for (const char* k :
       {"model.visual.patch_embed.proj.weight", "model.visual.pos_embed.weight",
        "model.visual.blocks.0.attn.qkv.weight", "model.visual.blocks.1.mlp.linear_fc2.bias",
        "model.visual.merger.norm.weight", "model.visual.deepstack_merger_list.1.linear_fc1.weight",
        "model.language_model.embed_tokens.weight", "model.language_model.layers.0.self_attn.q_proj.weight",
        "model.language_model.layers.2.self_attn.k_norm.weight",
        "model.language_model.layers.1.mlp.down_proj.weight",
        "model.language_model.layers.1.post_attention_layernorm.weight", "model.language_model.norm.weight",
        "progress_head.0.weight", "progress_head.1.bias", "progress_head.4.weight", "success_head.4.bias",
        "preference_head.0.bias", "frame_pool_attn.weight"})
    EXPECT_TRUE(keys.count(k)) << k;
  EXPECT_EQ(sd.size(), keys.size());
  for (auto& [k, t] : sd) {
    if (k == "model.visual.patch_embed.proj.weight") {
      EXPECT_EQ(t.sizes(), (at::IntArrayRef{32, 3, 2, 16, 16}));
    }
  }
}

TEST(ModelWeights, SafetensorsRoundTripIsBitExact) {
  test::TempDir dir;
  torch::manual_seed(3);
  RewardModel a(tiny_rc());
  auto sd = state_dict(*a);
  io::save_sharded_safetensors(dir.path().string(), sd, /*max_shard_bytes=*/200000);
  torch::manual_seed(4);
  RewardModel b(tiny_rc());
  io::SafetensorsSet set(dir.path().string());
  auto rep = load_weights(*b, set);
  EXPECT_EQ(rep.loaded.size(), sd.size());
  auto sb = state_dict(*b);
  ASSERT_EQ(sb.size(), sd.size());
  for (size_t i = 0; i < sd.size(); ++i) {
    EXPECT_EQ(sb[i].first, sd[i].first);
    EXPECT_TRUE(sb[i].second.equal(sd[i].second)) << sd[i].first;
  }
}

TEST(ModelWeights, StrictModeListsEveryProblem) {
  RewardModel m(tiny_rc());
  auto sd = state_dict(*m);
  io::NamedTensors bad;
  for (auto& [k, t] : sd) {
    if (k == "model.language_model.norm.weight" || k == "progress_head.4.bias") continue;  // missing
    if (k == "success_head.0.weight") {
      bad.emplace_back(k, at::zeros({3, 3}));  // shape mismatch
      continue;
    }
    bad.emplace_back(k, t);
  }
  bad.emplace_back("model.visual.extra.weight", at::zeros({2}));              // unexpected
  bad.emplace_back("lm_head.weight", at::zeros({160, 64}));                   // ignored: no LM head
  bad.emplace_back("base_model.model.lm_head.weight", at::zeros({160, 64}));  // PEFT-prefixed too
  try {
    LoadOptions from;
    from.source = "/ckpt/model.safetensors";
    load_weights(*m, bad, from);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const char* s : {"from /ckpt/model.safetensors", "model.language_model.norm.weight",
                          "progress_head.4.bias", "model.visual.extra.weight", "success_head.0.weight",
                          "2 missing", "1 unexpected", "1 shape mismatch"})
      EXPECT_NE(msg.find(s), std::string::npos) << s << " not in: " << msg;
    EXPECT_EQ(msg.find("lm_head"), std::string::npos) << msg;
  }
  LoadOptions lax;
  lax.strict = false;
  auto rep = load_weights(*m, bad, lax);
  EXPECT_EQ(rep.missing.size(), 2u);
  EXPECT_EQ(rep.unexpected.size(), 1u);
  EXPECT_EQ(rep.shape_mismatch.size(), 1u);
  EXPECT_EQ(rep.ignored, (std::vector<std::string>{"lm_head.weight", "base_model.model.lm_head.weight"}));
}

TEST(ModelWeights, BackboneOnlyCheckpointAndEmbeddingResize) {
  RewardModel m(tiny_rc());
  io::NamedTensors hf;
  for (auto& [k, t] : state_dict(*m)) {
    if (k.rfind("model.", 0) != 0) continue;  // an HF Qwen3-VL checkpoint has no heads
    if (k == "model.language_model.embed_tokens.weight") {
      hf.emplace_back(k, at::randn({150, 64}));  // 10 rows fewer: tokens added after
      continue;
    }
    hf.emplace_back(k, t.to(at::kBFloat16));  // stored in bf16
  }
  LoadOptions o;
  EXPECT_THROW(load_weights(*m, hf, o), Error);
  o.allow_missing_heads = true;
  o.resize_embeddings = true;
  auto rep = load_weights(*m, hf, o);
  EXPECT_EQ(rep.resized_from, 150);
  auto table = m->model->language_model->embed_tokens->weight.detach();
  auto src = std::find_if(hf.begin(), hf.end(), [](auto& p) {
               return p.first == "model.language_model.embed_tokens.weight";
             })->second;
  EXPECT_TRUE(table.narrow(0, 0, 150).equal(src));
  EXPECT_TRUE(at::allclose(table[155], src.mean(0), 1e-6, 1e-6));
  EXPECT_EQ(m->model->language_model->norm->weight.scalar_type(), at::kFloat);
}

TEST(ModelWeights, FreezingByPattern) {
  RewardModelConfig rc = tiny_rc();
  rc.train_vision = true;
  RewardModel m(rc);
  EXPECT_GT(freeze_matching(*m, "^model\\.visual\\."), 0);
  EXPECT_THROW(freeze_matching(*m, "([unclosed"), ConfigError);
  const auto& c = rc.backbone;
  std::vector<std::vector<test::ImageSpec>> imgs = {{test::ImageSpec{4, 6}}};
  auto in = test::make_inputs(c, imgs, {test::make_sample_tokens(c, imgs[0], 2, 1, 0)});
  auto out = m->forward(in);
  (out.progress_logits.sum() + out.success_logits.sum() + out.preference_logit.sum()).backward();
  for (const auto& item : m->named_parameters()) {
    const bool vision = item.key().rfind("model.visual.", 0) == 0;
    const bool unused = item.key() == "frame_pool_attn.weight";
    EXPECT_EQ(item.value().grad().defined(), !vision && !unused) << item.key();
  }
  // Default config freezes the vision tower.
  RewardModel d(tiny_rc());
  for (const auto& p : d->model->visual->parameters()) EXPECT_FALSE(p.requires_grad());
}
