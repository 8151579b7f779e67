// The Robometer reward model: HF Qwen3VLModel (`model.visual`, `model.language_model`) plus
// progress/success/preference heads and the unused `frame_pool_attn`, with module paths equal
// to Robometer's state-dict keys (weights.h is the one place that maps names).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "robometer/model/checkpointing.h"
#include "robometer/model/model_inputs.h"
#include "robometer/model/qwen3vl_config.h"
#include "robometer/model/text_decoder.h"
#include "robometer/model/vision.h"

namespace robometer::model {

struct RewardModelConfig {
  Qwen3VLConfig backbone;
  int64_t progress_bins = 10;  // discrete progress (Robometer-4B); 1 = continuous (sigmoid)
  double head_dropout = 0.1;
  // Activation checkpointing of the decoder layers and (when the tower trains) the vision blocks.
  CheckpointPlan checkpointing;
  bool train_vision = false;  // Robometer default: the vision tower is frozen
};

// Parameter count from the dimensions alone (checked against a built model in the tests).
int64_t expected_parameter_count(const RewardModelConfig& cfg);

// What the backbone computed, for tests and parity checks.
struct BackboneOutput {
  at::Tensor last_hidden_state;           // [B, L, H], after the final norm
  at::Tensor position_ids;                // [3, B, L]
  at::Tensor image_embeds;                // [N_visual, H] (undefined without images)
  std::vector<at::Tensor> deepstack;      // per tap [N_visual, H]
  std::vector<at::Tensor> layer_outputs;  // per decoder layer (before DeepStack), if requested
};

class Qwen3VLBackboneImpl : public torch::nn::Module {
 public:
  explicit Qwen3VLBackboneImpl(const Qwen3VLConfig& cfg);
  BackboneOutput forward(const ModelInputs& in, const CheckpointPlan& checkpointing = {},
                         bool keep_layer_outputs = false);
  VisionModel visual{nullptr};
  TextModel language_model{nullptr};
  const Qwen3VLConfig& config() const { return cfg_; }

 private:
  Qwen3VLConfig cfg_;
};
TORCH_MODULE(Qwen3VLBackbone);

class RewardModelImpl : public torch::nn::Module {
 public:
  explicit RewardModelImpl(const RewardModelConfig& cfg);

  RewardOutputs forward(const ModelInputs& in);
  // Heads on given last-layer hidden states (exposed for tests).
  RewardOutputs heads(const at::Tensor& last_hidden, const at::Tensor& prog_positions,
                      const at::Tensor& pref_positions);

  Qwen3VLBackbone model{nullptr};
  torch::nn::Sequential progress_head{nullptr}, success_head{nullptr}, preference_head{nullptr};
  torch::nn::Linear frame_pool_attn{nullptr};

  RewardModelConfig& config() { return cfg_; }
  const RewardModelConfig& config() const { return cfg_; }
  int64_t num_parameters(bool trainable_only = false);

 private:
  RewardModelConfig cfg_;
};
TORCH_MODULE(RewardModel);

// Builds the model directly in `dtype` (e.g. bf16 for the 4B model on a small machine).
RewardModel make_reward_model(const RewardModelConfig& cfg, at::ScalarType dtype = at::kFloat);

}  // namespace robometer::model
