// The small model, data and training loop the multi-process Gloo tests share (test_dist_train,
// test_dist_shard): rank r of N trains on rows [r·b, (r+1)·b) of each global batch, and the
// 1-process reference on the whole batch.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "robometer/dist/env.h"
#include "robometer/dist/process_group.h"
#include "robometer/model/lora.h"
#include "robometer/train/param_optimizer.h"
#include "robometer/train/world.h"

namespace robometer::test::dist_train {

// A small model with a no-decay group (norm, biases), a parameter that never gets a gradient
// and a frozen one.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({16})));
    fc2 = register_module("fc2", torch::nn::Linear(16, 3));
    unused = register_parameter("unused", torch::randn({4}));
    frozen = register_parameter("frozen", torch::randn({3}), /*requires_grad=*/false);
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::tanh(norm(fc1(x)))) + frozen; }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor unused, frozen;
};
TORCH_MODULE(Net);

inline Net make_net() {
  torch::manual_seed(1234);
  return Net();
}

template <class M>
train::NamedParameters trainable(M& net) {
  train::NamedParameters out;
  for (auto& np : net->named_parameters())
    if (np.value().requires_grad()) out.emplace_back(np.key(), np.value());
  return out;
}

inline train::AdamWConfig adamw_config() {
  train::AdamWConfig c;
  c.lr = 1e-2;
  c.weight_decay = 0.1;
  c.lr_rules.push_back({"^fc2\\.", 3e-2, 1.0});
  return c;
}

inline constexpr int kAccum = 2;
inline constexpr int kRowsPerRank = 3;

// The global micro-batch (N·b rows) of optimizer step `step`, micro-step `micro`.
inline std::pair<torch::Tensor, torch::Tensor> global_batch(int world, int step, int micro) {
  torch::manual_seed(100 + step * 10 + micro);
  const int rows = world * kRowsPerRank;
  auto x = torch::randn({rows, 8});
  auto y = torch::randn({rows, 3});
  return {x, y};
}

// LoRA (model::LoraLinear, as the text decoder's projections): only the adapters train.
struct LoraNetImpl : torch::nn::Module {
  LoraNetImpl() {
    q_proj = register_module("q_proj", model::LoraLinear(8, 16, true));
    down_proj = register_module("down_proj", model::LoraLinear(16, 3, false));
  }
  torch::Tensor forward(const torch::Tensor& x) { return down_proj(torch::tanh(q_proj(x))); }
  model::LoraLinear q_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LoraNet);

inline LoraNet make_lora_net() {
  torch::manual_seed(4321);
  LoraNet net;
  model::LoraConfig lc;
  lc.r = 2;
  lc.alpha = 4;
  lc.dropout = 0;  // masks would come from per-rank generators
  model::apply_lora(*net, lc, /*freeze_base=*/true);
  {
    // A fresh adapter has B = 0 (so A gets no gradient at step 1); start from a non-zero B.
    torch::NoGradGuard ng;
    net->q_proj->lora_B->weight.normal_(0, 0.1);
    net->down_proj->lora_B->weight.normal_(0, 0.1);
  }
  return net;
}

struct RunResult {
  std::vector<double> losses;  // global mean loss per step
  std::vector<torch::Tensor> params;
};

template <class M>
std::vector<torch::Tensor> snapshot(M& net) {
  std::vector<torch::Tensor> out;
  for (auto& p : net->parameters()) out.push_back(p.detach().clone());
  return out;
}

// `steps` optimizer steps; rank r of `world` takes rows [r·b, (r+1)·b) of each global batch
// (world = 1 with data_world = N gives the 1-rank × N·b reference).
template <class M>
RunResult train_steps(M& net, train::ParamOptimizer& opt, train::GradSync& sync, train::World& world,
                      int data_world, int first_step, int steps, double max_norm, int accum = kAccum) {
  RunResult res;
  const int r = world.rank(), n = world.size();
  for (int step = first_step; step < first_step + steps; ++step) {
    double loss_sum = 0;
    for (int micro = 0; micro < accum; ++micro) {
      auto [x, y] = global_batch(data_world, step, micro);
      const int rows = x.size(0) / n;
      x = x.slice(0, r * rows, (r + 1) * rows);
      y = y.slice(0, r * rows, (r + 1) * rows);
      const torch::Tensor loss = torch::mse_loss(net->forward(x), y);
      sync.before_backward(micro == accum - 1);
      (loss / accum).backward();
      loss_sum += loss.item<double>() / accum;
    }
    sync.finish();
    opt.clip_grad_norm(max_norm);
    opt.step();
    opt.zero_grad();
    std::vector<at::Tensor> l{torch::full({1}, loss_sum, torch::kDouble)};
    world.all_reduce_sum(l);
    res.losses.push_back(l[0].item<double>() / n);
  }
  res.params = snapshot(net);
  return res;
}

inline RunResult reference_run(int data_world, int steps, double max_norm, int accum = kAccum) {
  auto net = make_net();
  train::LocalAdamW opt(trainable(net), adamw_config());
  train::NoGradSync sync;
  train::LocalWorld world;
  return train_steps(net, opt, sync, world, data_world, 0, steps, max_norm, accum);
}

inline std::shared_ptr<dist::C10dWorld> worker_world(int timeout_s = 30) {
  dist::ProcessGroupConfig pc;
  pc.backend = "gloo";
  pc.timeout = std::chrono::seconds(timeout_s);
  return std::make_shared<dist::C10dWorld>(dist::read_dist_env(), pc);
}

inline void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b, double tol,
                         const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = (a[i] - b[i]).abs().max().item<double>();
    EXPECT_LE(d, tol) << what << ": tensor " << i << " differs by " << d;
  }
}

// max |a - b| <= tol · max(1e-3, max |b|) per tensor: "relative" for a whole weight tensor.
inline void expect_rel_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                             double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = (a[i] - b[i]).abs().max().item<double>();
    const double scale = std::max(1e-3, b[i].abs().max().item<double>());
    EXPECT_LE(d, tol * scale) << what << ": tensor " << i << " differs by " << d << " (max |ref| " << scale
                              << ")";
  }
}

inline double bucket_mb() {
  const char* v = std::getenv("ROBOMETER_TEST_BUCKET_MB");
  return v ? std::atof(v) : 25.0;
}

}  // namespace robometer::test::dist_train
