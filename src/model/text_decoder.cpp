#include "robometer/model/text_decoder.h"

#include <torch/nn/modules/embedding.h>

#include <cmath>
#include <initializer_list>
#include <limits>

#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"
#include "robometer/model/checkpointing.h"
#include "robometer/model/fused_kernels.h"
#include "robometer/model/rotary.h"

namespace robometer::model {

namespace {

// The project's CUDA kernels (fused_kernels.h) take over when they are compiled and switched on
// (ROBOMETER_CUDA_KERNELS=1) and every operand is a CUDA tensor of one dtype on one device;
// any other case (CPU, mixed dtypes under autocast) keeps the eager ops.
bool project_kernels_for(std::initializer_list<at::Tensor> ts) {
  const at::Tensor& a = *ts.begin();
  if (!use_project_kernels(a)) return false;
  for (const auto& t : ts)
    if (t.scalar_type() != a.scalar_type() || t.device() != a.device()) return false;
  return true;
}

}  // namespace

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  // One fused kernel on CUDA with LibTorch >= 2.4 (same math; bf16 rounding of the scale step
  // differs by an ulp); elsewhere HF Qwen3VLTextRMSNorm: normalise in fp32, scale in x's dtype.
  if (compat::use_fused_rms_norm(x)) return compat::fused_rms_norm(x, weight.to(x.scalar_type()), eps_);
  auto h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * h.to(x.scalar_type());
}

TextAttentionImpl::TextAttentionImpl(const TextConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  q_proj = register_module("q_proj", LoraLinear(c.hidden_size, heads_ * head_dim_, c.attention_bias));
  k_proj = register_module("k_proj", LoraLinear(c.hidden_size, kv_heads_ * head_dim_, c.attention_bias));
  v_proj = register_module("v_proj", LoraLinear(c.hidden_size, kv_heads_ * head_dim_, c.attention_bias));
  o_proj = register_module("o_proj", LoraLinear(heads_ * head_dim_, c.hidden_size, c.attention_bias));
  q_norm = register_module("q_norm", RMSNorm(head_dim_, c.rms_norm_eps));
  k_norm = register_module("k_norm", RMSNorm(head_dim_, c.rms_norm_eps));
}

at::Tensor TextAttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                      const at::Tensor& mask, const std::vector<int64_t>& segments) {
  const int64_t B = x.size(0), L = x.size(1);
  auto q = q_proj->forward(x).view({B, L, heads_, head_dim_});
  auto k = k_proj->forward(x).view({B, L, kv_heads_, head_dim_});
  auto v = v_proj->forward(x).view({B, L, kv_heads_, head_dim_}).transpose(1, 2);
  if (project_kernels_for({q, k, q_norm->weight, k_norm->weight, cos, sin})) {
    // One kernel per tensor: per-head RMSNorm and the rotary, on the [B, L, H, D] view.
    q = fused_rms_norm_rotary(q, q_norm->weight, cos, sin, q_norm->eps()).transpose(1, 2);
    k = fused_rms_norm_rotary(k, k_norm->weight, cos, sin, k_norm->eps()).transpose(1, 2);
  } else {
    q = q_norm->forward(q).transpose(1, 2);
    k = k_norm->forward(k).transpose(1, 2);
    std::tie(q, k) = apply_text_rotary(q, k, cos, sin);
  }
  // GQA (fewer K/V heads than query heads) is handled by the attention call: natively on 2.5+
  // CUDA, by HF's repeat_kv elsewhere. Inside checkpoint_selective the call is taped.
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  at::Tensor o;
  if (!segments.empty()) {
    // Packed: block-diagonal causal attention as one causal call per sequence (no padding, and
    // no N x N mask that would leave the fused kernels).
    std::vector<at::Tensor> parts;
    parts.reserve(segments.size());
    int64_t at_token = 0;
    for (const int64_t n : segments) {
      parts.push_back(tape_sdpa(q.narrow(2, at_token, n), k.narrow(2, at_token, n), v.narrow(2, at_token, n),
                                {},
                                /*is_causal=*/true, scale));
      at_token += n;
    }
    o = at::cat(parts, 2);
  } else {
    o = mask.defined() ? tape_sdpa(q, k, v, mask, /*is_causal=*/false, scale)
                       : tape_sdpa(q, k, v, {}, /*is_causal=*/true, scale);
  }
  o = o.transpose(1, 2).reshape({B, L, heads_ * head_dim_});
  return o_proj->forward(o);
}

TextMLPImpl::TextMLPImpl(const TextConfig& c) {
  gate_proj = register_module("gate_proj", LoraLinear(c.hidden_size, c.intermediate_size, false));
  up_proj = register_module("up_proj", LoraLinear(c.hidden_size, c.intermediate_size, false));
  down_proj = register_module("down_proj", LoraLinear(c.intermediate_size, c.hidden_size, false));
}

at::Tensor TextMLPImpl::forward(const at::Tensor& x) {
  if (use_project_kernels(x)) {
    auto g = gate_proj->forward(x);
    auto u = up_proj->forward(x);
    return down_proj->forward(project_kernels_for({g, u}) ? fused_swiglu(g, u) : at::silu(g) * u);
  }
  return down_proj->forward(at::silu(gate_proj->forward(x)) * up_proj->forward(x));
}

TextDecoderLayerImpl::TextDecoderLayerImpl(const TextConfig& c) {
  self_attn = register_module("self_attn", TextAttention(c));
  mlp = register_module("mlp", TextMLP(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

at::Tensor TextDecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                         const at::Tensor& mask, const std::vector<int64_t>& segments) {
  auto a = self_attn->forward(input_layernorm->forward(x), cos, sin, mask, segments);
  const auto& w = post_attention_layernorm->weight;
  if (project_kernels_for({x, a, w})) {
    // The residual add and the post-attention RMSNorm in one pass over the hidden states.
    auto [h, y] = fused_add_rms_norm(x, a, w, post_attention_layernorm->eps());
    return h + mlp->forward(y);
  }
  auto h = x + a;
  return h + mlp->forward(post_attention_layernorm->forward(h));
}

TextModelImpl::TextModelImpl(const TextConfig& c) : cfg_(c) {
  embed_tokens = register_module(
      "embed_tokens", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size)));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(TextDecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

at::Tensor TextModelImpl::forward(const at::Tensor& inputs_embeds, const at::Tensor& position_ids,
                                  const at::Tensor& attention_mask, const at::Tensor& visual_pos_mask,
                                  const std::vector<at::Tensor>& deepstack, const CheckpointPlan& plan,
                                  std::vector<at::Tensor>* layer_outputs,
                                  const std::vector<int64_t>& segments) {
  const int64_t B = inputs_embeds.size(0), L = inputs_embeds.size(1);
  if (!segments.empty()) {
    int64_t n = 0;
    for (const int64_t s : segments) n += s;
    if (B != 1 || n != L || attention_mask.defined())
      throw Error("text decoder: packed inputs are one row of " + std::to_string(L) +
                  " tokens without an attention mask; the segments cover " + std::to_string(n));
  }
  auto [cos, sin] =
      text_mrope_cos_sin(position_ids.to(inputs_embeds.device()), cfg_, inputs_embeds.scalar_type());
  // Causal + key padding mask; without padding the causal flag alone lets SDPA use fused kernels.
  at::Tensor mask;
  // Decided on the host: free for the processor's mask, a counted read for one on a device.
  bool padded = false;
  if (attention_mask.defined()) {
    const at::Tensor all = attention_mask.to(at::kBool).all();
    padded = !(attention_mask.is_cpu() ? all.item<bool>()
                                       : core::host_value<bool>(all, "text decoder: padding check"));
  }
  if (padded) {
    auto opts = inputs_embeds.options().dtype(at::kBool);
    auto causal = at::ones({L, L}, opts).tril();
    auto keys =
        attention_mask.to(inputs_embeds.device(), /*non_blocking=*/true).to(at::kBool).view({B, 1, 1, L});
    mask = causal.view({1, 1, L, L}).logical_and(keys);
    // A query with no visible key (left padding) attends to itself so no row is all -inf.
    auto empty_rows = mask.any(-1, /*keepdim=*/true).logical_not();
    mask = mask.logical_or(at::eye(L, opts).view({1, 1, L, L}).logical_and(empty_rows));
  }
  at::Tensor h = inputs_embeds;
  for (size_t i = 0; i < layers->size(); ++i) {
    auto layer = layers->ptr<TextDecoderLayerImpl>(i);
    BlockFn fn = [layer, cos = cos, sin = sin, mask,
                  segments](const at::Tensor& x) {  // copies: replayed in backward
      return layer->forward(x, cos, sin, mask, segments);
    };
    if (plan.full_at(static_cast<int64_t>(i))) {
      h = checkpoint(fn, h, layer->parameters());
    } else if (plan.selective_at(static_cast<int64_t>(i))) {
      h = checkpoint_selective(fn, h, layer->parameters());
    } else {
      h = layer->forward(h, cos, sin, mask, segments);
    }
    if (layer_outputs) layer_outputs->push_back(h);
    if (i < deepstack.size() && visual_pos_mask.defined()) {
      auto ds = deepstack[i].to(h.device(), h.scalar_type());
      h = h.index_put({visual_pos_mask}, h.index({visual_pos_mask}) + ds);
    }
  }
  return norm->forward(h);
}

}  // namespace robometer::model
