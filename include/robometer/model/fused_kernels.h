// The project's own CUDA kernels for the text decoder's memory-bound steps (src/model/cuda/),
// as autograd functions. They are compiled only where CMake finds nvcc and LibTorch has CUDA
// (elsewhere project_kernels_compiled() is false and the ops throw), and they run only when
// the environment sets ROBOMETER_CUDA_KERNELS=1: nobody has run them on a GPU yet, so the
// decoder's default stays the eager / LibTorch-fused path. The switch lives here, next to the
// kernels; compat::fused_enabled() (ROBOMETER_FUSED=0) turns them off as well.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <utility>

namespace robometer::model {

// Built with the kernels and the LibTorch CUDA wrappers.
bool project_kernels_compiled();
// Compiled and LibTorch sees a CUDA device.
bool project_kernels_available();

// Runtime switch: off unless ROBOMETER_CUDA_KERNELS=1 (tests flip it in-process).
bool project_kernels_enabled();
void set_project_kernels_enabled(bool on);

// Whether the decoder takes a project kernel for tensors like x: compiled, switched on (and
// compat::fused_enabled()), x on a CUDA device in bf16 / fp16 / fp32.
bool use_project_kernels(const at::Tensor& x);

// One line for logs: "project CUDA kernels: compiled (sm_90), switched off (ROBOMETER_CUDA_KERNELS=1 ...)".
std::string project_kernels_summary();

// h = x + r, y = rmsnorm(h)·w (HF: normalise in fp32, cast to x's dtype, times w); returns
// (h, y). x, r [..., D] and w [D] of one dtype on one CUDA device; gradients flow into x, r
// (from both outputs) and w.
std::pair<at::Tensor, at::Tensor> fused_add_rms_norm(const at::Tensor& x, const at::Tensor& r,
                                                     const at::Tensor& w, double eps);

// silu(g) · u, g and u of one shape and dtype.
at::Tensor fused_swiglu(const at::Tensor& g, const at::Tensor& u);

// Per-head RMSNorm then rotary: x [B, L, H, D] (the projection's view, before the transpose),
// w [D], cos / sin [B, L, D] (text_mrope_cos_sin). Returns [B, L, H, D]:
// rotary(w · rmsnorm(x)) with apply_text_rotary's rotate_half. Gradients into x and w; none
// into cos / sin.
at::Tensor fused_rms_norm_rotary(const at::Tensor& x, const at::Tensor& w, const at::Tensor& cos,
                                 const at::Tensor& sin, double eps);

}  // namespace robometer::model
