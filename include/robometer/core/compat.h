// The one place that knows about LibTorch version differences (Debian's 1.13 on CPU machines,
// the pip torch 2.x on GPU machines). Everything else calls these wrappers.
#pragma once
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/util/Optional.h>
#include <torch/version.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#define ROBOMETER_TORCH_2 (TORCH_VERSION_MAJOR >= 2)
// LibTorch >= major.minor (2.x releases only; 1.13 is below every one of them).
#define ROBOMETER_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))
// The fused ops LibTorch itself has, by the release that brought them.
#define ROBOMETER_HAS_RMS_NORM ROBOMETER_TORCH_AT_LEAST(2, 4)            // at::rms_norm
#define ROBOMETER_HAS_SDPA_GQA ROBOMETER_TORCH_AT_LEAST(2, 5)            // SDPA enable_gqa
#define ROBOMETER_HAS_FUSED_ADAMW ROBOMETER_TORCH_AT_LEAST(2, 2)         // at::_fused_adamw_
#define ROBOMETER_HAS_EFFICIENT_ATTN ROBOMETER_TORCH_AT_LEAST(2, 2)      // _efficient_attention + LSE
#define ROBOMETER_HAS_FOREACH_NORM_DTYPE ROBOMETER_TORCH_AT_LEAST(2, 3)  // _foreach_norm(.., dtype)

namespace robometer::compat {

// c10::optional is std::optional in 2.x and its own class in 1.13.
template <class T>
using optional = c10::optional<T>;

// Disables autograd in a scope. robometer::compat::NoGradGuard exists in 1.13 only; c10::AutoGradMode in
// both.
struct NoGradGuard : c10::AutoGradMode {
  NoGradGuard() : c10::AutoGradMode(false) {}
};

// Runtime switch for the fused paths below (they are CUDA-only in any case): on unless the
// environment sets ROBOMETER_FUSED=0; tests and `bench model-step --fused 0` flip it to compare
// fused and eager runs in one process.
inline bool& fused_flag() {
  static bool on = [] {
    const char* e = std::getenv("ROBOMETER_FUSED");
    return !(e && std::string(e) == "0");
  }();
  return on;
}
inline bool fused_enabled() { return fused_flag(); }
inline void set_fused_enabled(bool on) { fused_flag() = on; }

// Whether the fused op runs for tensors on this device: the LibTorch release has it, the tensor
// is on a CUDA device and the switch is on. CPU and 1.13 always take the eager path.
inline bool use_fused_rms_norm(const at::Tensor& x) {
  return ROBOMETER_HAS_RMS_NORM && x.is_cuda() && fused_enabled();
}
inline bool use_sdpa_gqa(const at::Tensor& q) {
  return ROBOMETER_HAS_SDPA_GQA && q.is_cuda() && fused_enabled();
}
inline bool use_fused_adamw(const at::Tensor& p) {
  return ROBOMETER_HAS_FUSED_ADAMW && p.is_cuda() && fused_enabled();
}
inline bool use_foreach_norm(const at::Tensor& g) { return g.is_cuda() && fused_enabled(); }
inline bool use_efficient_attention(const at::Tensor& q, const at::Tensor& mask) {
  return ROBOMETER_HAS_EFFICIENT_ATTN && q.is_cuda() && !mask.defined() && fused_enabled();
}

// One line naming the fused paths compiled into this build (for logs and the GPU script).
inline std::string fused_paths_compiled() {
  std::string s;
  auto add = [&](bool on, const char* name) {
    s += std::string(s.empty() ? "" : ", ") + name + (on ? " yes" : " no");
  };
  add(ROBOMETER_HAS_RMS_NORM, "rms_norm");
  add(ROBOMETER_HAS_SDPA_GQA, "sdpa_gqa");
  add(ROBOMETER_HAS_FUSED_ADAMW, "fused_adamw");
  add(ROBOMETER_HAS_EFFICIENT_ATTN, "efficient_attention_lse");
  add(true, "foreach_norm");
  return s;
}

// y = x / rms(x) · w via at::rms_norm (2.4+). The eager reference (HF: normalise in fp32, cast,
// scale) lives with RMSNorm; callers check use_fused_rms_norm() first.
inline at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
#if ROBOMETER_HAS_RMS_NORM
  return at::rms_norm(x, {x.size(-1)}, w, eps);
#else
  (void)x;
  (void)w;
  (void)eps;
  throw std::runtime_error("compat::fused_rms_norm: needs LibTorch >= 2.4");
#endif
}

// One AdamW step over lists of same-device, same-dtype tensors with LibTorch's fused kernel
// (torch.optim.AdamW(fused=True)): steps are incremented here first, as torch does. Callers
// check use_fused_adamw() first.
inline void fused_adamw_step(std::vector<at::Tensor>& params, std::vector<at::Tensor>& grads,
                             std::vector<at::Tensor>& exp_avgs, std::vector<at::Tensor>& exp_avg_sqs,
                             std::vector<at::Tensor>& steps, double lr, double beta1, double beta2,
                             double weight_decay, double eps) {
#if ROBOMETER_HAS_FUSED_ADAMW
  at::_foreach_add_(steps, 1);
  at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2,
                    weight_decay, eps, /*amsgrad=*/false, /*maximize=*/false, c10::nullopt, c10::nullopt);
#else
  (void)params, (void)grads, (void)exp_avgs, (void)exp_avg_sqs, (void)steps;
  (void)lr, (void)beta1, (void)beta2, (void)weight_decay, (void)eps;
  throw std::runtime_error("compat::fused_adamw_step: needs LibTorch >= 2.2");
#endif
}

// softmax(q kᵀ · scale + mask) v for q,k,v [B, H, L, D]. mask is boolean (true = attend) or
// additive float, broadcastable to [B, H, Lq, Lk]. On 2.x this dispatches to the fused
// flash / memory-efficient kernels on CUDA; 1.13 has no public SDPA, so it is spelled out.
inline at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const at::Tensor& mask = {}, bool is_causal = false, double scale = -1.0) {
  const double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  if (k.size(1) != q.size(1)) {
#if ROBOMETER_HAS_SDPA_GQA
    // Grouped-query attention without a copy of K and V per query head (the causal flash path;
    // with a mask, the kernels that take one may not take GQA, so K and V are expanded).
    if (use_sdpa_gqa(q) && !mask.defined())
      return at::scaled_dot_product_attention(q, k, v, c10::nullopt, 0.0, is_causal, s, /*enable_gqa=*/true);
#endif
    // Each KV head serves `rep` query heads (HF repeat_kv).
    const int64_t B = k.size(0), hk = k.size(1), L = k.size(2), D = k.size(3), rep = q.size(1) / hk;
    auto ke = k.unsqueeze(2).expand({B, hk, rep, L, D}).reshape({B, hk * rep, L, D});
    auto ve = v.unsqueeze(2).expand({B, hk, rep, L, v.size(3)}).reshape({B, hk * rep, L, v.size(3)});
    return sdpa(q, ke, ve, mask, is_causal, scale);
  }
#if ROBOMETER_TORCH_2
  return at::scaled_dot_product_attention(
      q, k, v, mask.defined() ? c10::optional<at::Tensor>(mask) : c10::nullopt, 0.0, is_causal, s);
#else
  auto scores = at::matmul(q, k.transpose(-2, -1)) * s;
  if (is_causal) {
    const auto lq = q.size(-2), lk = k.size(-2);
    auto causal = at::ones({lq, lk}, q.options().dtype(at::kBool)).tril(lk - lq);
    scores = scores.masked_fill(causal.logical_not(), -std::numeric_limits<float>::infinity());
  }
  if (mask.defined()) {
    if (mask.scalar_type() == at::kBool)
      scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<float>::infinity());
    else
      scores = scores + mask;
  }
  // Softmax in fp32 as the fused kernels do, then back to the input dtype.
  auto probs = at::softmax(scores.to(at::kFloat), -1).to(q.scalar_type());
  return at::matmul(probs, v);
#endif
}

// Autocast toggles (renamed in 2.4). Enabling also selects bf16, the only autocast dtype this
// project uses (CUDA's default would be fp16).
inline void set_autocast(at::DeviceType device, bool enabled) {
#if ROBOMETER_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
  if (enabled) at::autocast::set_autocast_dtype(device, at::kBFloat16);
#else
  if (device == at::kCUDA) {
    at::autocast::set_enabled(enabled);
    if (enabled) at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    if (enabled) at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
#endif
}

inline bool autocast_enabled(at::DeviceType device) {
#if ROBOMETER_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

// Attention that also returns what its backward needs: the output, the row log-sum-exp of the
// scaled scores and (fused kernel only) its RNG state. q,k,v [B, H, L, D] with as many K/V
// heads as query heads; mask as for sdpa().
struct SdpaSaved {
  at::Tensor out, lse, philox_seed, philox_offset;
  bool fused = false;  // made by the memory-efficient CUDA kernel (its LSE layout is its own)
};

namespace detail {
// The dtype the eager attention math runs in: fp32, or fp64 for fp64 inputs.
inline at::ScalarType math_dtype(const at::Tensor& q) {
  return q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// Scaled scores with the causal / key mask applied, in math_dtype: [B, H, Lq, Lk].
inline at::Tensor masked_scores(const at::Tensor& q, const at::Tensor& k, const at::Tensor& mask,
                                bool is_causal, double s) {
  const auto ct = math_dtype(q);
  auto scores = at::matmul(q.to(ct), k.to(ct).transpose(-2, -1)) * s;
  const float ninf = -std::numeric_limits<float>::infinity();
  if (is_causal) {
    const auto lq = q.size(-2), lk = k.size(-2);
    auto causal = at::ones({lq, lk}, q.options().dtype(at::kBool)).tril(lk - lq);
    scores = scores.masked_fill(causal.logical_not(), ninf);
  }
  if (mask.defined()) {
    if (mask.scalar_type() == at::kBool)
      scores = scores.masked_fill(mask.logical_not(), ninf);
    else
      scores = scores + mask.to(ct);
  }
  return scores;
}
}  // namespace detail

inline SdpaSaved sdpa_forward_lse(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  const at::Tensor& mask, bool is_causal, double scale) {
  SdpaSaved r;
#if ROBOMETER_HAS_EFFICIENT_ATTN
  if (use_efficient_attention(q, mask)) {
    std::tie(r.out, r.lse, r.philox_seed, r.philox_offset) = at::_scaled_dot_product_efficient_attention(
        q, k, v, c10::nullopt, /*compute_log_sumexp=*/true, 0.0, is_causal, scale);
    r.fused = true;
    return r;
  }
#endif
  auto scores = detail::masked_scores(q, k, mask, is_causal, scale);
  r.lse = at::logsumexp(scores, -1, /*keepdim=*/true);  // [B, H, Lq, 1] in the math dtype
  auto probs = (scores - r.lse).exp_();
  r.out = at::matmul(probs.to(v.scalar_type()), v);
  return r;
}

// Gradients of sdpa_forward_lse's output w.r.t. q, k, v, from the saved output and LSE (the
// flash-attention backward; no score matrix is kept between forward and backward).
inline std::tuple<at::Tensor, at::Tensor, at::Tensor> sdpa_backward(const at::Tensor& grad_out,
                                                                    const at::Tensor& q, const at::Tensor& k,
                                                                    const at::Tensor& v,
                                                                    const at::Tensor& mask, bool is_causal,
                                                                    double scale, const SdpaSaved& saved) {
#if ROBOMETER_HAS_EFFICIENT_ATTN
  if (saved.fused) {
    auto g = at::_scaled_dot_product_efficient_attention_backward(
        grad_out.to(saved.out.scalar_type()), q, k, v, at::Tensor(), saved.out, saved.lse, saved.philox_seed,
        saved.philox_offset, 0.0, {true, true, true, false}, is_causal, scale);
    return {std::get<0>(g), std::get<1>(g), std::get<2>(g)};
  }
#else
  (void)saved.fused;
#endif
  auto probs = (detail::masked_scores(q, k, mask, is_causal, scale) - saved.lse).exp_();  // [B,H,Lq,Lk]
  const auto ct = detail::math_dtype(q);
  auto go = grad_out.to(ct);
  auto gv = at::matmul(probs.transpose(-2, -1), go);
  auto gp = at::matmul(go, v.to(ct).transpose(-2, -1));
  auto row = (go * saved.out.to(ct)).sum(-1, /*keepdim=*/true);
  auto gs = probs.mul_(gp.sub_(row)).mul_(scale);
  auto gq = at::matmul(gs, k.to(ct));
  auto gk = at::matmul(gs.transpose(-2, -1), q.to(ct));
  return {gq.to(q.scalar_type()), gk.to(k.scalar_type()), gv.to(v.scalar_type())};
}

}  // namespace robometer::compat
