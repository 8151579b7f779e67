// The project's CUDA kernels for the text decoder's memory-bound steps (see fused_kernels_api.h
// for the entry points, fused_math.h for the per-row math they share with the CPU test).
// Row kernels: one block per hidden-size row (add + RMSNorm), one warp per head row (RMSNorm +
// rotary); SwiGLU is a grid-stride elementwise loop. Built only where CMake finds nvcc.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <type_traits>

#include "fused_kernels_api.h"
#include "fused_math.h"

namespace robometer::model::kernels {

template <>
struct Cvt<__nv_bfloat16> {
  template <class A>
  __host__ __device__ static A in(__nv_bfloat16 v) {
    return static_cast<A>(__bfloat162float(v));
  }
  template <class A>
  __host__ __device__ static __nv_bfloat16 out(A v) {
    return __float2bfloat16_rn(static_cast<float>(v));
  }
};
template <>
struct Cvt<__half> {
  template <class A>
  __host__ __device__ static A in(__half v) {
    return static_cast<A>(__half2float(v));
  }
  template <class A>
  __host__ __device__ static __half out(A v) {
    return __float2half_rn(static_cast<float>(v));
  }
};

namespace {

constexpr int kRowThreads = 256;  // add + RMSNorm: threads per row
constexpr int kHeadWarps = 4;     // RMSNorm + rotary: head rows (warps) per block

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over a block of kRowThreads threads; every thread gets the total. Synchronises twice, so
// it can be called repeatedly with the same scratch.
struct BlockSum {
  float* scratch;  // kRowThreads / 32 floats of shared memory
  __device__ float operator()(float v) const {
    v = warp_sum(v);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();  // the previous call's readers are done with scratch
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < kRowThreads / 32 ? scratch[lane] : 0.0f;
    return warp_sum(t);
  }
};
struct WarpSum {
  __device__ float operator()(float v) const { return warp_sum(v); }
};

template <class T>
__global__ void __launch_bounds__(kRowThreads)
    add_rms_norm_fwd_kernel(const T* x, const T* r, const T* w, T* h, T* y, float* rstd, int64_t D,
                            float eps) {
  __shared__ float scratch[kRowThreads / 32];
  const int64_t row = blockIdx.x;
  const int64_t off = row * D;
  add_rms_norm_row<T, float>(x + off, r ? r + off : nullptr, w, r ? h + off : nullptr, y + off, rstd + row, D,
                             eps, threadIdx.x, kRowThreads, BlockSum{scratch});
}

template <class T>
__global__ void __launch_bounds__(kRowThreads)
    add_rms_norm_bwd_kernel(const T* h, const float* rstd, const T* w, const T* dy, const T* dh_in, T* dx,
                            float* dw_part, int64_t D) {
  __shared__ float scratch[kRowThreads / 32];
  const int64_t row = blockIdx.x;
  const int64_t off = row * D;
  add_rms_norm_backward_row<T, float>(h + off, rstd[row], w, dy + off, dh_in ? dh_in + off : nullptr,
                                      dx + off, dw_part ? dw_part + off : nullptr, D, threadIdx.x,
                                      kRowThreads, BlockSum{scratch});
}

template <class T>
__global__ void swiglu_fwd_kernel(const T* g, const T* u, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = swiglu<T, float>(g[i], u[i]);
}

template <class T>
__global__ void swiglu_bwd_kernel(const T* g, const T* u, const T* dy, T* dg, T* du, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    swiglu_backward<T, float>(g[i], u[i], dy[i], dg + i, du + i);
}

// A whole warp takes a row or none, so the shuffles in WarpSum see all 32 lanes.
template <class T>
__global__ void __launch_bounds__(kHeadWarps * 32)
    rms_norm_rotary_fwd_kernel(const T* x, const T* w, const T* cos, const T* sin, T* o, float* rstd,
                               int64_t rows, int64_t heads, int64_t D, float eps) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kHeadWarps) + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int64_t off = row * D, tok = (row / heads) * D;
  rms_norm_rotary_row<T, float>(x + off, w, cos + tok, sin + tok, o + off, rstd + row, D, eps,
                                threadIdx.x & 31, 32, WarpSum{});
}

template <class T>
__global__ void __launch_bounds__(kHeadWarps * 32)
    rms_norm_rotary_bwd_kernel(const T* x, const float* rstd, const T* w, const T* cos, const T* sin,
                               const T* d_o, T* dx, float* dw_part, int64_t rows, int64_t heads, int64_t D) {
  const int64_t row = blockIdx.x * static_cast<int64_t>(kHeadWarps) + (threadIdx.x >> 5);
  if (row >= rows) return;
  const int64_t off = row * D, tok = (row / heads) * D;
  rms_norm_rotary_backward_row<T, float>(x + off, rstd[row], w, cos + tok, sin + tok, d_o + off, dx + off,
                                         dw_part ? dw_part + off : nullptr, D, threadIdx.x & 31, 32,
                                         WarpSum{});
}

int elementwise_blocks(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return static_cast<int>(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

// Calls f with a null pointer of the element type (for dispatch only).
template <class F>
int dispatch(DType t, F&& f) {
  switch (t) {
    case DType::f32:
      return f(static_cast<float*>(nullptr));
    case DType::f16:
      return f(static_cast<__half*>(nullptr));
    case DType::bf16:
      return f(static_cast<__nv_bfloat16*>(nullptr));
  }
  return static_cast<int>(cudaErrorInvalidValue);
}

int launched() { return static_cast<int>(cudaGetLastError()); }

}  // namespace

const char* error_string(int err) { return cudaGetErrorString(static_cast<cudaError_t>(err)); }

int add_rms_norm_forward(DType t, const void* x, const void* r, const void* w, void* h, void* y, float* rstd,
                         int64_t rows, int64_t D, float eps, void* stream) {
  if (rows == 0) return 0;
  return dispatch(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    add_rms_norm_fwd_kernel<T>
        <<<static_cast<unsigned>(rows), kRowThreads, 0, static_cast<cudaStream_t>(stream)>>>(
            static_cast<const T*>(x), static_cast<const T*>(r), static_cast<const T*>(w), static_cast<T*>(h),
            static_cast<T*>(y), rstd, D, eps);
    return launched();
  });
}

int add_rms_norm_backward(DType t, const void* h, const float* rstd, const void* w, const void* dy,
                          const void* dh_in, void* dx, float* dw_part, int64_t rows, int64_t D,
                          void* stream) {
  if (rows == 0) return 0;
  return dispatch(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    add_rms_norm_bwd_kernel<T>
        <<<static_cast<unsigned>(rows), kRowThreads, 0, static_cast<cudaStream_t>(stream)>>>(
            static_cast<const T*>(h), rstd, static_cast<const T*>(w), static_cast<const T*>(dy),
            static_cast<const T*>(dh_in), static_cast<T*>(dx), dw_part, D);
    return launched();
  });
}

int swiglu_forward(DType t, const void* g, const void* u, void* y, int64_t n, void* stream) {
  if (n == 0) return 0;
  return dispatch(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    swiglu_fwd_kernel<T><<<elementwise_blocks(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(g), static_cast<const T*>(u), static_cast<T*>(y), n);
    return launched();
  });
}

int swiglu_backward(DType t, const void* g, const void* u, const void* dy, void* dg, void* du, int64_t n,
                    void* stream) {
  if (n == 0) return 0;
  return dispatch(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    swiglu_bwd_kernel<T><<<elementwise_blocks(n), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(g), static_cast<const T*>(u), static_cast<const T*>(dy), static_cast<T*>(dg),
        static_cast<T*>(du), n);
    return launched();
  });
}

int rms_norm_rotary_forward(DType t, const void* x, const void* w, const void* cos, const void* sin, void* o,
                            float* rstd, int64_t rows, int64_t heads, int64_t D, float eps, void* stream) {
  if (rows == 0) return 0;
  if (D % 2 != 0 || heads <= 0) return static_cast<int>(cudaErrorInvalidValue);
  const auto blocks = static_cast<unsigned>((rows + kHeadWarps - 1) / kHeadWarps);
  return dispatch(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rms_norm_rotary_fwd_kernel<T><<<blocks, kHeadWarps * 32, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(cos),
        static_cast<const T*>(sin), static_cast<T*>(o), rstd, rows, heads, D, eps);
    return launched();
  });
}

int rms_norm_rotary_backward(DType t, const void* x, const float* rstd, const void* w, const void* cos,
                             const void* sin, const void* d_o, void* dx, float* dw_part, int64_t rows,
                             int64_t heads, int64_t D, void* stream) {
  if (rows == 0) return 0;
  if (D % 2 != 0 || heads <= 0) return static_cast<int>(cudaErrorInvalidValue);
  const auto blocks = static_cast<unsigned>((rows + kHeadWarps - 1) / kHeadWarps);
  return dispatch(t, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    rms_norm_rotary_bwd_kernel<T><<<blocks, kHeadWarps * 32, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(x), rstd, static_cast<const T*>(w), static_cast<const T*>(cos),
        static_cast<const T*>(sin), static_cast<const T*>(d_o), static_cast<T*>(dx), dw_part, rows, heads, D);
    return launched();
  });
}

}  // namespace robometer::model::kernels
