#include "robometer/model/reward_model.h"
#include "robometer/core/compat.h"

#include <c10/core/DefaultDtype.h>

#include <algorithm>
#include <string>

#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"
#include "robometer/model/heads.h"
#include "robometer/model/rotary.h"

namespace robometer::model {

Qwen3VLBackboneImpl::Qwen3VLBackboneImpl(const Qwen3VLConfig& cfg) : cfg_(cfg) {
  cfg_.validate();
  visual = register_module("visual", VisionModel(cfg_.vision));
  language_model = register_module("language_model", TextModel(cfg_.text));
}

namespace {

bool all_frozen(torch::nn::Module& m) {
  for (const auto& p : m.parameters())
    if (p.requires_grad()) return false;
  return true;
}

}  // namespace

BackboneOutput Qwen3VLBackboneImpl::forward(const ModelInputs& in, const CheckpointPlan& checkpointing,
                                            bool keep_layer_outputs) {
  if (!in.input_ids.defined() || in.input_ids.dim() != 2)
    throw Error("model: input_ids must be int64 [B, L]");
  const auto device = language_model->embed_tokens->weight.device();
  // Checks and the M-RoPE positions read ids, mask and grids on the host: inputs from the
  // processor are there already (no sync); inputs given on a device are copied back, counted.
  const at::Tensor ids_h = core::on_host(in.input_ids, "model: input_ids on the host").to(at::kLong);
  const at::Tensor mask_h = core::on_host(in.attention_mask, "model: attention_mask on the host");
  const at::Tensor grid_h = core::on_host(in.image_grid_thw, "model: image_grid_thw on the host");
  if (ids_h.numel() > 0 &&
      (ids_h.min().item<int64_t>() < 0 || ids_h.max().item<int64_t>() >= cfg_.text.vocab_size))
    throw Error("model: input_ids hold a token id outside [0, " + std::to_string(cfg_.text.vocab_size) + ")");
  auto ids = in.input_ids.to(device, at::kLong, /*non_blocking=*/true);
  BackboneOutput out;
  auto embeds = language_model->embed_tokens->forward(ids);

  at::Tensor visual_mask;
  if (in.pixel_values.defined() && in.pixel_values.numel() > 0) {
    VisionOutput vis;
    auto pixels =
        in.pixel_values.to(device, visual->patch_embed->proj->weight.scalar_type(), /*non_blocking=*/true);
    if (all_frozen(*visual)) {
      // A frozen tower keeps no graph (as Robometer wraps it in no_grad).
      robometer::compat::NoGradGuard ng;
      vis = visual->forward(pixels, grid_h);
    } else {
      vis = visual->forward(pixels, grid_h, checkpointing);
    }
    visual_mask = ids.eq(cfg_.image_token_id);
    const int64_t n_tokens = ids_h.eq(cfg_.image_token_id).sum().item<int64_t>();
    if (n_tokens != vis.embeds.size(0))
      throw Error("model: image features and image tokens do not match: tokens " + std::to_string(n_tokens) +
                  ", features " + std::to_string(vis.embeds.size(0)));
    auto feats = vis.embeds.to(embeds.scalar_type());
    embeds = embeds.masked_scatter(visual_mask.unsqueeze(-1).expand_as(embeds), feats);
    out.image_embeds = vis.embeds;
    out.deepstack = std::move(vis.deepstack);
  }
  const std::vector<int64_t> segments = packed_lengths(in);
  if (segments.empty()) {
    out.position_ids = mrope_position_ids(ids_h, mask_h, grid_h, cfg_);
  } else {
    // Packed: each sequence's M-RoPE positions as in a padded batch (they restart per sequence).
    const int64_t B = static_cast<int64_t>(segments.size());
    const int64_t L = *std::max_element(segments.begin(), segments.end());
    at::Tensor ids_p = at::zeros({B, L}, at::kLong), mask_p = at::zeros({B, L}, at::kLong);
    int64_t at_token = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t n = segments[static_cast<size_t>(b)];
      ids_p[b].narrow(0, 0, n).copy_(ids_h[0].narrow(0, at_token, n));
      mask_p[b].narrow(0, 0, n).fill_(1);
      at_token += n;
    }
    out.position_ids = mrope_position_ids(ids_p, mask_p, grid_h, cfg_)
                           .masked_select(mask_p.to(at::kBool).unsqueeze(0))
                           .view({3, 1, -1});
  }
  std::vector<at::Tensor>* layers = keep_layer_outputs ? &out.layer_outputs : nullptr;
  // The decoder moves the mask itself, after deciding on the host whether there is padding.
  out.last_hidden_state =
      language_model->forward(embeds, out.position_ids.to(device, /*non_blocking=*/true), mask_h, visual_mask,
                              out.deepstack, checkpointing, layers, segments);
  return out;
}

RewardModelImpl::RewardModelImpl(const RewardModelConfig& cfg) : cfg_(cfg) {
  if (cfg_.progress_bins < 1) throw ConfigError("model: progress_bins must be >= 1");
  model = register_module("model", Qwen3VLBackbone(cfg_.backbone));
  const int64_t H = cfg_.backbone.text.hidden_size;
  progress_head = register_module("progress_head", make_head_mlp(H, cfg_.progress_bins, cfg_.head_dropout));
  success_head = register_module("success_head", make_head_mlp(H, 1, cfg_.head_dropout));
  preference_head = register_module("preference_head", make_head_mlp(H, 1, cfg_.head_dropout));
  // Unused by per-frame progress tokens; kept so Robometer checkpoints load strictly.
  frame_pool_attn =
      register_module("frame_pool_attn", torch::nn::Linear(torch::nn::LinearOptions(H, 1).bias(false)));
  if (!cfg_.train_vision)
    for (auto& p : model->visual->parameters()) p.set_requires_grad(false);
}

int64_t expected_parameter_count(const RewardModelConfig& cfg) {
  const auto& v = cfg.backbone.vision;
  const auto& t = cfg.backbone.text;
  const int64_t vh = v.hidden_size, m2 = v.spatial_merge_size * v.spatial_merge_size;
  const int64_t merged = vh * m2;
  int64_t vision = vh * v.patch_dim() + vh                         // patch_embed (Conv3d + bias)
                   + v.num_position_embeddings * vh;               // pos_embed
  const int64_t block = 4 * vh                                     // norm1, norm2: weight + bias each
                        + (vh * 3 * vh + 3 * vh) + (vh * vh + vh)  // qkv, proj
                        + (vh * v.intermediate_size + v.intermediate_size) + (v.intermediate_size * vh + vh);
  vision += v.depth * block;
  const int64_t merger_tail = (merged * merged + merged) + (merged * v.out_hidden_size + v.out_hidden_size);
  vision += 2 * vh + merger_tail;  // final merger
  vision += static_cast<int64_t>(v.deepstack_visual_indexes.size()) * (2 * merged + merger_tail);
  const int64_t H = t.hidden_size, D = t.head_dim;
  const int64_t qo = H * t.num_attention_heads * D, kv = H * t.num_key_value_heads * D;
  const int64_t bias = t.attention_bias ? (t.num_attention_heads * D + 2 * t.num_key_value_heads * D + H) : 0;
  const int64_t layer = 2 * qo + 2 * kv + bias + 2 * D + 3 * H * t.intermediate_size + 2 * H;
  const int64_t text = t.vocab_size * H + t.num_hidden_layers * layer + H;
  auto head = [&](int64_t out) { return (H * (H / 2) + H / 2) + 2 * (H / 2) + ((H / 2) * out + out); };
  return vision + text + head(cfg.progress_bins) + 2 * head(1) + H;
}

RewardOutputs RewardModelImpl::heads(const at::Tensor& last_hidden, const at::Tensor& prog_positions,
                                     const at::Tensor& pref_positions) {
  RewardOutputs r;
  const int64_t rows = last_hidden.size(0), L = last_hidden.size(1), H = last_hidden.size(2);
  const auto dev = last_hidden.device();
  // One row holding every sequence (packed inputs): the positions index that row, for B samples.
  const bool packed = rows == 1;
  if (prog_positions.defined() && prog_positions.numel() > 0) {
    if (prog_positions.dim() != 2 || (!packed && prog_positions.size(0) != rows))
      throw Error("model: prog_positions must be [B, T]");
    if (core::on_host(prog_positions, "model: prog_positions on the host").max().item<int64_t>() >= L)
      throw Error("model: prog_positions beyond sequence length");
    auto pos = prog_positions.to(dev, at::kLong, /*non_blocking=*/true);
    const int64_t B = pos.size(0), T = pos.size(1);
    r.prog_valid = pos.ge(0);
    at::Tensor g;  // [B, T, H]
    if (packed)
      g = last_hidden[0].index_select(0, pos.clamp_min(0).reshape({-1})).view({B, T, H});
    else
      g = last_hidden.gather(1, pos.clamp_min(0).unsqueeze(-1).expand({B, T, H}));
    auto pl = progress_head->forward(g);
    if (cfg_.progress_bins > 1) {
      r.progress_logits = pl;
      r.progress = expected_progress(pl);
    } else {
      r.progress_logits = pl;
      r.progress = at::sigmoid(pl.squeeze(-1).to(at::kFloat));
    }
    r.success_logits = success_head->forward(g).squeeze(-1);
  }
  if (pref_positions.defined() && pref_positions.numel() > 0) {
    const int64_t B = pref_positions.numel();
    if (!packed && B != rows) throw Error("model: pref_positions must be [B]");
    const int64_t last =
        core::on_host(pref_positions, "model: pref_positions on the host").max().item<int64_t>();
    if (last >= L) throw Error("model: pref_positions beyond sequence length");
    auto pos = pref_positions.to(dev, at::kLong, /*non_blocking=*/true).view({-1});
    if (last >= 0) {
      at::Tensor g;  // [B, H]
      if (packed)
        g = last_hidden[0].index_select(0, pos.clamp_min(0));
      else
        g = last_hidden.gather(1, pos.clamp_min(0).view({B, 1, 1}).expand({B, 1, H})).squeeze(1);
      r.preference_logit = preference_head->forward(g).squeeze(-1);
    }
  }
  return r;
}

RewardOutputs RewardModelImpl::forward(const ModelInputs& in) {
  auto bb = model->forward(in, cfg_.checkpointing);
  return heads(bb.last_hidden_state, in.prog_positions, in.pref_positions);
}

int64_t RewardModelImpl::num_parameters(bool trainable_only) {
  int64_t n = 0;
  for (const auto& p : parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

RewardModel make_reward_model(const RewardModelConfig& cfg, at::ScalarType dtype) {
  // Allocate directly in `dtype` so a 4B model never exists in fp32.
  const auto previous = c10::get_default_dtype();
  c10::set_default_dtype(c10::scalarTypeToTypeMeta(dtype));
  try {
    RewardModel m(cfg);
    c10::set_default_dtype(previous);
    return m;
  } catch (...) {
    c10::set_default_dtype(previous);
    throw;
  }
}

}  // namespace robometer::model
