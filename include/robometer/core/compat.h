// The one place that knows about LibTorch version differences (Debian's 1.13 on CPU machines,
// the pip torch 2.x on GPU machines). Everything else calls these wrappers.
#pragma once
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>
#include <c10/util/Optional.h>
#include <torch/version.h>

#include <cmath>
#include <optional>

#define ROBOMETER_TORCH_2 (TORCH_VERSION_MAJOR >= 2)

namespace robometer::compat {

// c10::optional is std::optional in 2.x and its own class in 1.13.
template <class T>
using optional = c10::optional<T>;

// Disables autograd in a scope. robometer::compat::NoGradGuard exists in 1.13 only; c10::AutoGradMode in
// both.
struct NoGradGuard : c10::AutoGradMode {
  NoGradGuard() : c10::AutoGradMode(false) {}
};

// softmax(q kᵀ · scale + mask) v for q,k,v [B, H, L, D]. mask is boolean (true = attend) or
// additive float, broadcastable to [B, H, Lq, Lk]. On 2.x this dispatches to the fused
// flash / memory-efficient kernels on CUDA; 1.13 has no public SDPA, so it is spelled out.
inline at::Tensor sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                       const at::Tensor& mask = {}, bool is_causal = false, double scale = -1.0) {
  const double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
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

// Autocast toggles (renamed in 2.x).
inline void set_autocast(at::DeviceType device, bool enabled) {
#if ROBOMETER_TORCH_2 && (TORCH_VERSION_MAJOR > 2 || TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == at::kCUDA)
    at::autocast::set_enabled(enabled);
  else
    at::autocast::set_cpu_enabled(enabled);
#endif
}

}  // namespace robometer::compat
