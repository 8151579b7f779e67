#include "robometer/model/cached_decoder.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/model/rotary.h"

namespace robometer::model {
namespace {

struct Heads {
  int64_t q, kv, dim;
};

// Per session: its rep*n query rows of each KV head against that head's cached keys (GQA
// without copying the cache), causal within the new tokens.
at::Tensor attention_per_session(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const std::vector<int64_t>& segments, const std::vector<KvCache*>& caches,
                                 int64_t layer, const Heads& h) {
  const int64_t rep = h.q / h.kv, N = q.size(2);
  const double scale = 1.0 / std::sqrt(static_cast<double>(h.dim));
  std::vector<at::Tensor> outs;
  int64_t start = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const int64_t n = segments[i], past = caches[i]->length(), total = past + n;
    auto [keys, values] = caches[i]->write(layer, k[0].narrow(1, start, n), v[0].narrow(1, start, n));
    auto qs = q.narrow(2, start, n).reshape({h.kv, rep * n, h.dim}).unsqueeze(0);
    const auto opts = q.options().dtype(at::kLong);
    auto causal = (at::arange(n, opts).view({n, 1}) + past).ge(at::arange(total, opts).view({1, total}));
    auto mask = causal.repeat({rep, 1}).view({1, 1, rep * n, total});
    auto o = compat::sdpa(qs, keys.unsqueeze(0), values.unsqueeze(0), mask, /*is_causal=*/false, scale);
    outs.push_back(o.reshape({h.q, n, h.dim}));
    start += n;
  }
  return at::cat(outs, 1).transpose(0, 1).reshape({1, N, h.q * h.dim});
}

// The alternative: every cache copied into one zero-padded [S, heads, L_max, D] batch.
at::Tensor attention_padded(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const std::vector<int64_t>& segments, const std::vector<KvCache*>& caches,
                            int64_t layer, const Heads& h) {
  const int64_t S = static_cast<int64_t>(segments.size()), N = q.size(2), rep = h.q / h.kv;
  int64_t n_max = 0, l_max = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    n_max = std::max(n_max, segments[i]);
    l_max = std::max(l_max, caches[i]->length() + segments[i]);
  }
  auto qp = at::zeros({S, h.q, n_max, h.dim}, q.options());
  auto kp = at::zeros({S, h.kv, l_max, h.dim}, k.options());
  auto vp = at::zeros({S, h.kv, l_max, h.dim}, v.options());
  auto mask = at::zeros({S, 1, n_max, l_max}, q.options().dtype(at::kBool));
  int64_t start = 0;
  for (int64_t i = 0; i < S; ++i) {
    const int64_t n = segments[i], past = caches[i]->length();
    auto [keys, values] = caches[i]->write(layer, k[0].narrow(1, start, n), v[0].narrow(1, start, n));
    qp[i].narrow(1, 0, n).copy_(q[0].narrow(1, start, n));
    kp[i].narrow(1, 0, past + n).copy_(keys);
    vp[i].narrow(1, 0, past + n).copy_(values);
    mask[i][0]
        .narrow(0, 0, n)
        .narrow(1, 0, past + n)
        .copy_(at::ones({n, past + n}, mask.options()).tril(past));
    mask[i][0].narrow(0, n, n_max - n).select(1, 0).fill_(true);  // padded rows: no empty softmax
    start += n;
  }
  if (rep > 1) {
    kp = kp.repeat_interleave(rep, 1);
    vp = vp.repeat_interleave(rep, 1);
  }
  auto o = compat::sdpa(qp, kp, vp, mask, false, 1.0 / std::sqrt(static_cast<double>(h.dim)));
  std::vector<at::Tensor> outs;
  for (int64_t i = 0; i < S; ++i) outs.push_back(o[i].narrow(1, 0, segments[i]));
  return at::cat(outs, 1).transpose(0, 1).reshape({1, N, h.q * h.dim});
}

// TextAttentionImpl::forward's projections, norms and rotary on the packed new tokens.
at::Tensor attention_cached(TextAttentionImpl& a, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, const std::vector<int64_t>& segments,
                            const std::vector<KvCache*>& caches, int64_t layer, const Heads& h, bool padded) {
  const int64_t N = x.size(1);
  auto q = a.q_norm->forward(a.q_proj->forward(x).view({1, N, h.q, h.dim})).transpose(1, 2);
  auto k = a.k_norm->forward(a.k_proj->forward(x).view({1, N, h.kv, h.dim})).transpose(1, 2);
  auto v = a.v_proj->forward(x).view({1, N, h.kv, h.dim}).transpose(1, 2);
  std::tie(q, k) = apply_text_rotary(q, k, cos, sin);
  auto o = padded ? attention_padded(q, k, v, segments, caches, layer, h)
                  : attention_per_session(q, k, v, segments, caches, layer, h);
  return a.o_proj->forward(o);
}

}  // namespace

at::Tensor text_forward_cached(TextModelImpl& text, const at::Tensor& inputs_embeds,
                               const at::Tensor& position_ids, const std::vector<int64_t>& segments,
                               const std::vector<KvCache*>& caches, const at::Tensor& visual_pos_mask,
                               const std::vector<at::Tensor>& deepstack, bool padded_attention) {
  if (inputs_embeds.dim() != 3 || inputs_embeds.size(0) != 1)
    throw Error("text_forward_cached: inputs_embeds must be packed as [1, N, H]");
  if (segments.size() != caches.size() || segments.empty())
    throw Error("text_forward_cached: one segment per cache, at least one");
  int64_t n = 0;
  for (int64_t s : segments) n += s;
  if (n != inputs_embeds.size(1)) throw Error("text_forward_cached: segments do not add up to N");
  const TextConfig& cfg = text.config();
  const Heads heads{cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim};
  auto [cos, sin] =
      text_mrope_cos_sin(position_ids.to(inputs_embeds.device()), cfg, inputs_embeds.scalar_type());
  at::Tensor h = inputs_embeds;
  for (size_t i = 0; i < text.layers->size(); ++i) {
    auto& layer = *text.layers->ptr<TextDecoderLayerImpl>(i);  // as TextDecoderLayerImpl::forward
    h = h + attention_cached(*layer.self_attn, layer.input_layernorm->forward(h), cos, sin, segments, caches,
                             static_cast<int64_t>(i), heads, padded_attention);
    h = h + layer.mlp->forward(layer.post_attention_layernorm->forward(h));
    if (i < deepstack.size() && visual_pos_mask.defined()) {  // as in TextModel::forward, new tokens only
      auto ds = deepstack[i].to(h.device(), h.scalar_type());
      h = h.index_put({visual_pos_mask}, h.index({visual_pos_mask}) + ds);
    }
  }
  return text.norm->forward(h);
}

}  // namespace robometer::model
