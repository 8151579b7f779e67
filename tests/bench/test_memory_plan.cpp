// `robometer bench memory`'s arithmetic: the parameter census (built from a one-layer probe of
// the model and extrapolated) equals the real model's numel and trainable numel, and the plan
// divides exactly what each dist.shard mode shards.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "robometer/bench/memory_plan.h"
#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/model/factory.h"

namespace {

robometer::config::RunConfig tiny(const std::vector<std::string>& extra = {}) {
  const auto src = robometer::test::source_dir();
  std::vector<std::string> ov = {"data.train=[]", "data.eval=[]",
                                 "model.config_json=" + (src / "configs" / "models" / "tiny.json").string()};
  ov.insert(ov.end(), extra.begin(), extra.end());
  return robometer::config::load_run_config((src / "configs" / "tiny.yaml").string(), ov).config;
}

int64_t numel(robometer::model::ModelBundle& b, bool trainable_only) {
  int64_t n = 0;
  for (const auto& p : b.model->parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

void expect_census_matches_model(const robometer::config::RunConfig& cfg) {
  const auto c = robometer::bench::parameter_census(cfg.model);
  auto b = robometer::model::build_model(cfg.model, at::Device(at::kCPU), 0);
  EXPECT_EQ(c.total, numel(b, false));
  EXPECT_EQ(c.trainable, numel(b, true));
  EXPECT_EQ(c.total, b.model->num_parameters(false));
  int64_t largest = 0;
  for (const auto& p : b.model->parameters())
    if (p.requires_grad()) largest = std::max<int64_t>(largest, p.numel());
  EXPECT_EQ(c.largest_trainable, largest);
  EXPECT_GT(c.text_layers, 1);  // the probe really was extrapolated
  EXPECT_GT(c.layer_total, 0);
  // The pair's length is the processor's: 2 × 8 frames and the prompt around them.
  EXPECT_GT(c.pair_tokens, 2 * 8);
}

}  // namespace

TEST(MemoryPlan, CensusEqualsTheTinyModelsNumel) {
  expect_census_matches_model(tiny());                                  // embedding frozen
  expect_census_matches_model(tiny({"model.freeze=[model.visual.]"}));  // the 4B recipe's freezing
  expect_census_matches_model(tiny({"model.lora.enabled=true", "model.lora.r=4"}));  // adapters + heads
}

TEST(MemoryPlan, ShardModesDivideWhatTheyShard) {
  // tiny.yaml freezes the embedding: the trainable part is several layers, none dominating.
  const auto c = robometer::bench::parameter_census(tiny().model);
  robometer::bench::PlanInputs in;
  in.batch = 4;
  in.tokens_per_sample = 100;
  in.bucket_mb = 0.01;
  auto plan = [&](int world, const std::string& shard) {
    auto i = in;
    i.world = world;
    i.shard = shard;
    return robometer::bench::plan_memory(c, i);
  };
  const auto one = plan(1, "gradients"), none8 = plan(8, "none"), opt8 = plan(8, "optimizer"),
             grad8 = plan(8, "gradients"), par8 = plan(8, "parameters"), grad64 = plan(64, "gradients");
  EXPECT_DOUBLE_EQ(one.total(), plan(1, "none").total());  // one rank has nothing to shard
  EXPECT_DOUBLE_EQ(none8.moments, 8.0 * c.trainable);      // fp32 moments of bf16 weights
  EXPECT_DOUBLE_EQ(opt8.moments * 8, none8.moments);
  EXPECT_DOUBLE_EQ(opt8.master * 8, none8.master);
  EXPECT_DOUBLE_EQ(grad8.moments * 8, grad64.moments * 64);
  EXPECT_LT(grad8.grads, opt8.grads);
  EXPECT_LT(par8.weights, grad8.weights);
  EXPECT_DOUBLE_EQ(grad8.activations, none8.activations);  // data parallel: same micro-batch
  EXPECT_LT(grad8.total(), opt8.total());
  EXPECT_LT(opt8.total(), none8.total());
  EXPECT_LT(par8.total(), grad8.total());
  auto ck = in;
  ck.world = 8;
  // Activations grow from full to N layers to selective to none, as each keeps more per layer.
  using Plan = robometer::model::CheckpointPlan;
  const auto act = [&](const std::string& p) {
    ck.checkpointing = Plan::parse(p);
    return robometer::bench::plan_memory(c, ck).activations;
  };
  const double full = act("full"), half = act(std::to_string(c.text_layers / 2)), sel = act("selective"),
               off = act("none");
  EXPECT_DOUBLE_EQ(full, none8.activations);  // the default plan is full
  EXPECT_LT(full, half);
  EXPECT_LT(sel, off);
  EXPECT_LT(full, sel);
  EXPECT_DOUBLE_EQ(act(std::to_string(c.text_layers)), full);  // N = every layer is full
  EXPECT_GT(off, none8.activations);
  EXPECT_THROW(plan(8, "zero9"), robometer::ConfigError);
}
