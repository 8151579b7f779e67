// LoRA (Hu et al. 2021) as PEFT implements it: y = W x + b + (alpha/r) * B(A(dropout(x))),
// A kaiming-uniform(a=sqrt(5)), B zeros, so a fresh adapter leaves the model unchanged.
// Every text projection (q/k/v/o, gate/up/down) is a LoraLinear; an adapter is attached on
// demand. Parameter names: `<path>.weight`, `<path>.lora_A.weight` [r, in],
// `<path>.lora_B.weight` [out, r]; PEFT's adapter file uses `base_model.model.<path>.lora_A.weight`
// (see weights.h: peft_adapter_key).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

namespace robometer::model {

struct LoraConfig {
  int64_t r = 16;
  double alpha = 32.0;
  double dropout = 0.05;
  // Module names (last path component) that get an adapter.
  std::vector<std::string> targets = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                      "gate_proj", "up_proj", "down_proj"};
};

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias);
  at::Tensor forward(const at::Tensor& x);

  void attach_adapter(int64_t r, double alpha, double dropout);  // fresh A (kaiming), B = 0
  bool has_adapter() const { return !lora_A.is_empty(); }
  void merge();    // W += scale * B A; forward then skips the adapter branch
  void unmerge();  // W -= scale * B A
  bool merged() const { return merged_; }
  double scaling() const { return scaling_; }

  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
  torch::nn::Linear lora_A{nullptr};
  torch::nn::Linear lora_B{nullptr};

 private:
  double scaling_ = 0.0;
  double dropout_ = 0.0;
  bool merged_ = false;
};
TORCH_MODULE(LoraLinear);

// Attaches adapters to every LoraLinear under `root` whose name is in cfg.targets and freezes
// all other parameters (PEFT's default: only adapters train). Returns the number of adapters.
int64_t apply_lora(torch::nn::Module& root, const LoraConfig& cfg, bool freeze_base = true);
void merge_lora(torch::nn::Module& root);
void unmerge_lora(torch::nn::Module& root);

}  // namespace robometer::model
