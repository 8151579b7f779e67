// AdamW: parity with torch::optim::AdamW, parameter groups, exact state round trip, fp32
// master weights, gradient clipping.
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>
#include <tuple>
#include <vector>

#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/model/weights.h"
#include "robometer/train/optimizer.h"

using namespace robometer;
using namespace robometer::train;

namespace {

NamedParameters named(torch::nn::Module& m) {
  NamedParameters out;
  for (const auto& item : m.named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

void copy_params(torch::nn::Module& dst, torch::nn::Module& src) {
  torch::NoGradGuard ng;
  auto s = src.named_parameters();
  for (auto& item : dst.named_parameters()) item.value().copy_(s[item.key()]);
}

// Deterministic pseudo-batch for step i.
at::Tensor input(int i) { return at::sin(at::arange(8.0f).reshape({2, 4}) * (i + 1)); }

void forward_backward(torch::nn::Linear& lin, int i) {
  auto y = lin->forward(input(i));
  (y * y).sum().backward();
}

double max_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace

TEST(Optimizer, NoDecayNameRule) {
  EXPECT_TRUE(is_no_decay_name("lm.layers.0.self_attn.q_proj.bias"));
  EXPECT_TRUE(is_no_decay_name("lm.layers.0.input_layernorm.weight"));
  EXPECT_TRUE(is_no_decay_name("lm.layers.0.self_attn.q_norm.weight"));
  EXPECT_TRUE(is_no_decay_name("lm.norm.weight"));
  EXPECT_TRUE(is_no_decay_name("visual.blocks.3.norm1.weight"));
  EXPECT_TRUE(is_no_decay_name("Model.RMSNorm.weight"));
  EXPECT_FALSE(is_no_decay_name("lm.layers.0.mlp.up_proj.weight"));
  EXPECT_FALSE(is_no_decay_name("lm.embed_tokens.weight"));
}

// HF Trainer's get_decay_parameter_names exempts LayerNorm modules by type (ALL_LAYERNORM_LAYERS)
// besides the name patterns: the heads' Sequential(Linear, LayerNorm, ...) names it "1.weight",
// which no name rule catches. The trainer passes the model's LayerNorm names as no_decay_names.
TEST(Optimizer, LayerNormParametersAreExemptFromDecayByModuleType) {
  torch::nn::Sequential head(torch::nn::Linear(4, 4), torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})),
                             torch::nn::Linear(4, 1));
  const auto ln = model::layer_norm_parameter_names(*head);
  EXPECT_EQ(ln, (std::vector<std::string>{"1.weight", "1.bias"}));
  AdamWConfig cfg;
  cfg.weight_decay = 0.1;
  auto decays = [&](const AdamWConfig& c) {
    std::map<std::string, double> wd;
    for (const auto& p : plan_parameters(named(*head), c)) wd[p.name] = p.weight_decay;
    return wd;
  };
  EXPECT_EQ(decays(cfg)["1.weight"], 0.1);  // by name alone it would decay
  cfg.no_decay_names = ln;
  auto wd = decays(cfg);
  EXPECT_EQ(wd["1.weight"], 0.0);
  EXPECT_EQ(wd["1.bias"], 0.0);
  EXPECT_EQ(wd["0.weight"], 0.1);
  EXPECT_EQ(wd["0.bias"], 0.0);
  EXPECT_EQ(wd["2.weight"], 0.1);
  AdamW opt(named(*head), cfg);  // and the optimizer groups them so
  for (const auto& g : opt.groups())
    for (auto i : g.params) EXPECT_EQ(g.weight_decay, wd[opt.params()[i].name]) << opt.params()[i].name;
}

TEST(Optimizer, MatchesTorchAdamW) {
  torch::manual_seed(0);
  torch::nn::Linear ours(4, 3), ref(4, 3);
  copy_params(*ref, *ours);
  AdamWConfig cfg;
  cfg.lr = 1e-2;
  cfg.weight_decay = 0.1;
  AdamW opt(named(*ours), cfg);
  ASSERT_EQ(opt.groups().size(), 2u);  // weight (decay) and bias (no decay)

  // Reference: torch's AdamW with the same two groups.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto wopt = std::make_unique<torch::optim::AdamWOptions>(1e-2);
  wopt->weight_decay(0.1).betas({0.9, 0.999}).eps(1e-8);
  auto bopt = std::make_unique<torch::optim::AdamWOptions>(1e-2);
  bopt->weight_decay(0.0).betas({0.9, 0.999}).eps(1e-8);
  groups.emplace_back(std::vector<at::Tensor>{ref->weight}, std::move(wopt));
  groups.emplace_back(std::vector<at::Tensor>{ref->bias}, std::move(bopt));
  torch::optim::AdamW torch_opt(groups, torch::optim::AdamWOptions(1e-2));

  for (int i = 0; i < 6; ++i) {
    const double factor = 1.0 - 0.1 * i;  // a changing lr as a schedule would give
    opt.set_lr_factor(factor);
    for (auto& g : torch_opt.param_groups())
      static_cast<torch::optim::AdamWOptions&>(g.options()).lr(1e-2 * factor);
    opt.zero_grad();
    torch_opt.zero_grad();
    forward_backward(ours, i);
    forward_backward(ref, i);
    opt.step();
    torch_opt.step();
  }
  // Same operation order as torch: bitwise equal.
  EXPECT_TRUE(at::equal(ours->weight, ref->weight)) << max_diff(ours->weight, ref->weight);
  EXPECT_TRUE(at::equal(ours->bias, ref->bias)) << max_diff(ours->bias, ref->bias);
  // The parameters did move.
  EXPECT_GT(opt.params()[0].step, 0);
  EXPECT_EQ(opt.params()[0].step, 6);
}

TEST(Optimizer, GroupsByRuleDecayAndFrozen) {
  auto w = at::zeros({2, 2}).requires_grad_(true);
  NamedParameters ps = {{"model.visual.blocks.0.attn.qkv.weight", w},
                        {"model.visual.blocks.0.attn.qkv.bias", at::zeros({2}).requires_grad_(true)},
                        {"progress_head.0.weight", at::zeros({2, 2}).requires_grad_(true)},
                        {"lm.norm.weight", at::zeros({2}).requires_grad_(true)},
                        {"frozen.weight", at::zeros({2, 2})}};
  AdamWConfig cfg;
  cfg.lr = 2e-5;
  cfg.lr_rules = {{"^model\\.visual\\.", 1e-5, 1.0}, {"_head\\.", -1.0, 10.0}};
  AdamW opt(ps, cfg);
  EXPECT_EQ(opt.params().size(), 4u);  // frozen left out
  std::map<std::string, std::pair<double, double>> lr_wd;
  for (const auto& p : opt.params())
    lr_wd[p.name] = {opt.groups()[p.group].base_lr, opt.groups()[p.group].weight_decay};
  EXPECT_DOUBLE_EQ(lr_wd["model.visual.blocks.0.attn.qkv.weight"].first, 1e-5);
  EXPECT_DOUBLE_EQ(lr_wd["model.visual.blocks.0.attn.qkv.weight"].second, 0.01);
  EXPECT_DOUBLE_EQ(lr_wd["model.visual.blocks.0.attn.qkv.bias"].first, 1e-5);
  EXPECT_DOUBLE_EQ(lr_wd["model.visual.blocks.0.attn.qkv.bias"].second, 0.0);
  EXPECT_DOUBLE_EQ(lr_wd["progress_head.0.weight"].first, 2e-4);
  EXPECT_DOUBLE_EQ(lr_wd["lm.norm.weight"].first, 2e-5);
  EXPECT_DOUBLE_EQ(lr_wd["lm.norm.weight"].second, 0.0);
  EXPECT_EQ(opt.groups().size(), 4u);
  opt.set_lr_factor(0.5);
  EXPECT_DOUBLE_EQ(opt.group_lr(opt.params()[2].group), 1e-4);

  cfg.lr_rules = {{"([", 1.0, 1.0}};
  EXPECT_THROW(AdamW(ps, cfg), ConfigError);
}

TEST(Optimizer, StateRoundTripIsBitwise) {
  torch::manual_seed(1);
  torch::nn::Linear a(4, 3), b(4, 3);
  AdamWConfig cfg;
  cfg.lr = 5e-3;
  AdamW opt_a(named(*a), cfg);
  for (int i = 0; i < 3; ++i) {
    opt_a.zero_grad();
    forward_backward(a, i);
    opt_a.step();
  }
  opt_a.set_lr_factor(0.7);
  // "Resume": b gets a's weights and a's optimizer state through the serialised form.
  copy_params(*b, *a);
  AdamW opt_b(named(*b), cfg);
  auto json_text = opt_a.state_json().dump();
  opt_b.load_state(opt_a.state_tensors(), nlohmann::json::parse(json_text));
  EXPECT_EQ(opt_b.lr_factor(), 0.7);
  for (int i = 3; i < 6; ++i) {
    for (auto* o : {&opt_a, &opt_b}) o->zero_grad();
    forward_backward(a, i);
    forward_backward(b, i);
    opt_a.step();
    opt_b.step();
  }
  EXPECT_TRUE(at::equal(a->weight, b->weight));
  EXPECT_TRUE(at::equal(a->bias, b->bias));
  EXPECT_EQ(opt_b.params()[0].step, 6);
}

TEST(Optimizer, LoadStateRejectsMismatch) {
  torch::nn::Linear a(4, 3), c(4, 2);
  AdamW opt_a(named(*a), {});
  opt_a.zero_grad();
  forward_backward(a, 0);
  opt_a.step();
  AdamW opt_c(named(*c), {});
  EXPECT_THROW(opt_c.load_state(opt_a.state_tensors(), opt_a.state_json()), Error);
  auto j = opt_a.state_json();
  j["steps"]["extra.weight"] = 1;
  AdamW opt_a2(named(*a), {});
  EXPECT_THROW(opt_a2.load_state(opt_a.state_tensors(), j), Error);
  EXPECT_THROW(opt_a2.load_state({}, opt_a.state_json()), Error);  // tensors missing
}

TEST(Optimizer, Fp32MasterForBf16Params) {
  // The same (bf16-representable) gradients on an fp32 parameter and on a bf16 parameter
  // with a master copy: the master follows the fp32 trajectory exactly, and the bf16 param
  // is the master rounded.
  auto p32 = at::full({4}, 1.0f).requires_grad_(true);
  auto p16 = at::full({4}, 1.0f, at::kBFloat16).requires_grad_(true);
  AdamWConfig cfg;
  cfg.lr = 1e-4;  // steps far below bf16 resolution at 1.0 (2^-7)
  AdamW o32({{"w", p32}}, cfg), o16({{"w", p16}}, cfg);
  ASSERT_TRUE(o16.params()[0].master.defined());
  for (int i = 0; i < 5; ++i) {
    auto g = at::tensor({0.5f, -0.25f, 1.0f, 2.0f});
    p32.mutable_grad() = g.clone();
    p16.mutable_grad() = g.to(at::kBFloat16);
    o32.step();
    o16.step();
  }
  EXPECT_TRUE(at::equal(o16.params()[0].master, p32.detach()));
  EXPECT_TRUE(at::equal(p16.detach(), p32.detach().to(at::kBFloat16)));
  EXPECT_LT(p32.detach()[0].item<float>(), 1.0f);  // the master moved...
  auto names = o16.state_tensors();
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[2].first, "w.master");
}

TEST(Optimizer, ClipGradNorm) {
  auto a = at::zeros({2}).requires_grad_(true);
  auto b = at::zeros({1}).requires_grad_(true);
  // grads [3, 0] and [4]: global norm 5.
  a.mutable_grad() = at::tensor({3.0f, 0.0f});
  b.mutable_grad() = at::tensor({4.0f});
  EXPECT_NEAR(clip_grad_norm({a, b}, 10.0), 5.0, 1e-6);
  EXPECT_FLOAT_EQ(a.grad()[0].item<float>(), 3.0f);  // below max: untouched
  EXPECT_NEAR(clip_grad_norm({a, b}, 1.0), 5.0, 1e-6);
  // scaled by 1 / (5 + 1e-6)
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6, 1e-6);
  EXPECT_NEAR(b.grad()[0].item<float>(), 0.8, 1e-6);
  b.mutable_grad() = at::tensor({std::numeric_limits<float>::quiet_NaN()});
  EXPECT_TRUE(std::isnan(clip_grad_norm({a, b}, 1.0)));
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6, 1e-6);  // left alone
}

TEST(Optimizer, ZeroGrad) {
  torch::nn::Linear a(4, 2);
  AdamW opt(named(*a), {});
  forward_backward(a, 0);
  opt.zero_grad(false);
  EXPECT_EQ(a->weight.grad().abs().sum().item<float>(), 0.f);
  opt.zero_grad();
  EXPECT_FALSE(a->weight.grad().defined());
}

// ---------------------------------------------------------------- fused CUDA paths (GPU machine)
namespace {

struct FusedSwitch {
  bool before = compat::fused_enabled();
  explicit FusedSwitch(bool on) { compat::set_fused_enabled(on); }
  ~FusedSwitch() { compat::set_fused_enabled(before); }
};

// A few AdamW steps (with clipping) on a small MLP on CUDA, fused or eager; returns the params.
std::map<std::string, at::Tensor> cuda_steps(bool fused, at::ScalarType dtype, bool master, double* norm) {
  FusedSwitch sw(fused);
  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Linear(24, 48), torch::nn::GELU(), torch::nn::Linear(48, 8));
  net->to(at::kCUDA, dtype);
  AdamWConfig cfg;
  cfg.lr = 1e-2;
  cfg.fp32_master = master;
  AdamW opt(named(*net), cfg);
  for (int s = 0; s < 5; ++s) {
    torch::manual_seed(100 + s);
    auto x = at::randn({16, 24}, at::dtype(dtype).device(at::kCUDA));
    opt.zero_grad();
    net->forward(x).to(at::kFloat).pow(2).mean().backward();
    *norm = clip_grad_norm(opt.param_tensors(), 0.5);
    opt.step();
  }
  std::map<std::string, at::Tensor> out;
  for (const auto& item : net->named_parameters())
    out[item.key()] = item.value().detach().to(at::kFloat).cpu();
  return out;
}

}  // namespace

TEST(OptimizerFusedGpu, FusedAdamWAndForeachNormMatchEager) {
  if (!torch::cuda::is_available())
    GTEST_SKIP() << "no CUDA device (scripts/gpu/run runs this on the GPU machine)";
  if (!ROBOMETER_HAS_FUSED_ADAMW) GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no at::_fused_adamw_";
  for (const auto& [dtype, master, tol] : std::vector<std::tuple<at::ScalarType, bool, double>>{
           {at::kFloat, false, 1e-5}, {at::kBFloat16, true, 2e-2}, {at::kBFloat16, false, 3e-2}}) {
    double n_eager = 0, n_fused = 0;
    auto eager = cuda_steps(false, dtype, master, &n_eager);
    auto fused = cuda_steps(true, dtype, master, &n_fused);
    EXPECT_NEAR(n_fused, n_eager, tol * n_eager) << dtype;
    for (const auto& [k, v] : eager) {
      const double err = ((fused.at(k) - v).abs().max() / (v.abs().max() + 1e-12)).item<double>();
      EXPECT_LT(err, tol) << k << " " << dtype << " master " << master;
    }
  }
}
