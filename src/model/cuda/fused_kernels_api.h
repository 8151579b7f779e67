// Raw-pointer entry points of the project's CUDA kernels (fused_kernels.cu). No ATen or CUDA
// headers: the LibTorch wrappers (src/model/fused_kernels.cpp) pass contiguous buffers, the
// element type and the current CUDA stream (a cudaStream_t, as void*). Every call returns a
// cudaError_t as int (0 = launched); error_string() names it. Accumulation is fp32; rstd and
// dw_part buffers are fp32.
#pragma once
#include <cstdint>

namespace robometer::model::kernels {

enum class DType { f32, f16, bf16 };

const char* error_string(int err);

// rows x D: h = x + r (r may be null: then h is not written), y = rmsnorm(h)·w, rstd[rows].
int add_rms_norm_forward(DType t, const void* x, const void* r, const void* w, void* h, void* y, float* rstd,
                         int64_t rows, int64_t D, float eps, void* stream);
// dx (= dr) from dy, the saved h and rstd, and dh_in (the gradient at the h output, may be null);
// dw_part (rows x D, may be null) = dy·n, summed over rows by the caller.
int add_rms_norm_backward(DType t, const void* h, const float* rstd, const void* w, const void* dy,
                          const void* dh_in, void* dx, float* dw_part, int64_t rows, int64_t D, void* stream);

// n elements: y = silu(g)·u; dg, du from dy.
int swiglu_forward(DType t, const void* g, const void* u, void* y, int64_t n, void* stream);
int swiglu_backward(DType t, const void* g, const void* u, const void* dy, void* dg, void* du, int64_t n,
                    void* stream);

// rows x D head rows (rows = tokens · heads, heads rows per token); cos/sin are [tokens, D]:
// o = rotary(w · rmsnorm(x)), rstd[rows].
int rms_norm_rotary_forward(DType t, const void* x, const void* w, const void* cos, const void* sin, void* o,
                            float* rstd, int64_t rows, int64_t heads, int64_t D, float eps, void* stream);
int rms_norm_rotary_backward(DType t, const void* x, const float* rstd, const void* w, const void* cos,
                             const void* sin, const void* d_o, void* dx, float* dw_part, int64_t rows,
                             int64_t heads, int64_t D, void* stream);

}  // namespace robometer::model::kernels
