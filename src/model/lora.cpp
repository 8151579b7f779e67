#include "robometer/model/lora.h"
#include "robometer/core/compat.h"

#include <torch/nn/functional/dropout.h>
#include <torch/nn/init.h>

#include <algorithm>
#include <cmath>

#include "robometer/core/error.h"
#include "robometer/model/checkpointing.h"

namespace robometer::model {

LoraLinearImpl::LoraLinearImpl(int64_t in_features, int64_t out_features, bool with_bias) {
  weight = register_parameter("weight", at::empty({out_features, in_features}));
  // Same default init as nn.Linear (weights are normally loaded from a checkpoint).
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    bias = register_parameter("bias", at::empty({out_features}).uniform_(-bound, bound));
  }
}

at::Tensor LoraLinearImpl::forward(const at::Tensor& x) {
  auto y = tape_linear(x, weight, bias);  // the base projection (taped under selective checkpointing)
  if (has_adapter() && !merged_) {
    // No dropout copy of x unless dropout is on and training; the scale rides on the add
    // (y + s·B(A x) in one kernel) instead of a separate multiply of the [.., out] branch.
    const at::Tensor& h = dropout_ > 0 && is_training() ? at::dropout(x, dropout_, /*train=*/true) : x;
    y = at::add(y, at::linear(at::linear(h, lora_A->weight), lora_B->weight), scaling_);
  }
  return y;
}

void LoraLinearImpl::attach_adapter(int64_t r, double alpha, double dropout) {
  if (r <= 0) throw ConfigError("lora: rank r must be positive, got " + std::to_string(r));
  if (has_adapter()) throw Error("lora: adapter already attached");
  const int64_t in = weight.size(1), out = weight.size(0);
  auto opts = torch::nn::LinearOptions(in, r).bias(false);
  lora_A = register_module("lora_A", torch::nn::Linear(opts));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(r, out).bias(false)));
  {
    robometer::compat::NoGradGuard ng;
    torch::nn::init::kaiming_uniform_(lora_A->weight, std::sqrt(5.0));  // PEFT init_lora_weights=True
    lora_B->weight.zero_();
  }
  lora_A->to(weight.device(), weight.scalar_type());
  lora_B->to(weight.device(), weight.scalar_type());
  scaling_ = alpha / static_cast<double>(r);
  dropout_ = dropout;
}

void LoraLinearImpl::merge() {
  if (!has_adapter() || merged_) return;
  robometer::compat::NoGradGuard ng;
  auto delta = at::matmul(lora_B->weight.to(at::kFloat), lora_A->weight.to(at::kFloat)) * scaling_;
  weight.copy_((weight.to(at::kFloat) + delta).to(weight.scalar_type()));
  merged_ = true;
}

void LoraLinearImpl::unmerge() {
  if (!has_adapter() || !merged_) return;
  robometer::compat::NoGradGuard ng;
  auto delta = at::matmul(lora_B->weight.to(at::kFloat), lora_A->weight.to(at::kFloat)) * scaling_;
  weight.copy_((weight.to(at::kFloat) - delta).to(weight.scalar_type()));
  merged_ = false;
}

namespace {

std::string last_component(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

}  // namespace

int64_t apply_lora(torch::nn::Module& root, const LoraConfig& cfg, bool freeze_base) {
  if (freeze_base)
    for (auto& p : root.parameters()) p.set_requires_grad(false);
  int64_t n = 0;
  for (auto& item : root.named_modules()) {
    auto* lin = item.value()->as<LoraLinearImpl>();
    if (!lin) continue;
    const auto name = last_component(item.key());
    if (std::find(cfg.targets.begin(), cfg.targets.end(), name) == cfg.targets.end()) continue;
    lin->attach_adapter(cfg.r, cfg.alpha, cfg.dropout);
    ++n;
  }
  if (n == 0) throw ConfigError("lora: no module matches the targets");
  return n;
}

void merge_lora(torch::nn::Module& root) {
  for (auto& m : root.modules())
    if (auto* lin = m->as<LoraLinearImpl>()) lin->merge();
}

void unmerge_lora(torch::nn::Module& root) {
  for (auto& m : root.modules())
    if (auto* lin = m->as<LoraLinearImpl>()) lin->unmerge();
}

}  // namespace robometer::model
