// Qwen3 text decoder of Qwen3-VL (HF Qwen3VLTextModel): RMSNorm, GQA attention with per-head
// q/k RMSNorm and interleaved M-RoPE, SwiGLU MLP, DeepStack injection of visual features after
// the first decoder layers. Submodule names equal HF's (`layers.0.self_attn.q_proj.weight`).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "robometer/model/checkpointing.h"
#include "robometer/model/lora.h"
#include "robometer/model/qwen3vl_config.h"

namespace robometer::model {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  double eps() const { return eps_; }
  at::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

class TextAttentionImpl : public torch::nn::Module {
 public:
  explicit TextAttentionImpl(const TextConfig& cfg);
  // x [B, L, H]; cos/sin [B, L, D]; mask: bool [B, 1, L, L] (true = attend) or undefined = causal.
  // segments (packed inputs, B = 1): lengths of the sequences laid end to end in x; each attends
  // causally within itself only (one attention call per sequence, fused causal kernels).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& mask, const std::vector<int64_t>& segments = {});
  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};

 private:
  int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(TextAttention);

class TextMLPImpl : public torch::nn::Module {
 public:
  explicit TextMLPImpl(const TextConfig& cfg);
  at::Tensor forward(const at::Tensor& x);
  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(TextMLP);

class TextDecoderLayerImpl : public torch::nn::Module {
 public:
  explicit TextDecoderLayerImpl(const TextConfig& cfg);
  // segments (packed inputs, B = 1): lengths of the sequences laid end to end in x; each attends
  // causally within itself only (one attention call per sequence, fused causal kernels).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& mask, const std::vector<int64_t>& segments = {});
  TextAttention self_attn{nullptr};
  TextMLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(TextDecoderLayer);

class TextModelImpl : public torch::nn::Module {
 public:
  explicit TextModelImpl(const TextConfig& cfg);

  // inputs_embeds [B, L, H]; position_ids int64 [3, B, L]; attention_mask [B, L] (1 = real) or
  // undefined; visual_pos_mask bool [B, L] and deepstack[i] [N_visual, H] are added after layer i.
  // plan: which layers run under activation checkpointing (full or selective).
  // layer_outputs (optional) receives each layer's output before DeepStack injection.
  // segments: packed inputs (B = 1, no attention_mask), the lengths of the sequences in order.
  at::Tensor forward(const at::Tensor& inputs_embeds, const at::Tensor& position_ids,
                     const at::Tensor& attention_mask, const at::Tensor& visual_pos_mask,
                     const std::vector<at::Tensor>& deepstack, const CheckpointPlan& plan,
                     std::vector<at::Tensor>* layer_outputs = nullptr,
                     const std::vector<int64_t>& segments = {});

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  const TextConfig& config() const { return cfg_; }

 private:
  TextConfig cfg_;
};
TORCH_MODULE(TextModel);

}  // namespace robometer::model
