// Per-row math of the project's CUDA kernels (fused_kernels.cu), written once for the device and
// the host: the kernels call these functions with their thread index, thread count and a block
// (or warp) sum; tests/model/test_model_kernel_math.cpp calls them with one "thread" and a plain
// sum and checks them, in fp64 and in bf16, against LibTorch's autograd of the eager ops.
// No ATen or CUDA headers here: element types only need float conversions (c10::BFloat16 on the
// host, __nv_bfloat16 / __half on the device, through Cvt below).
//
// Every row function walks its elements as i = tid, tid + nthreads, ... and calls `sum(v)` the
// same number of times on every thread (the block sum synchronises), so a thread only ever
// reads back elements it wrote itself.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define ROBOMETER_HD __host__ __device__
#define ROBOMETER_HD_TEMPLATE _Pragma("nv_exec_check_disable")
#else
#define ROBOMETER_HD
#define ROBOMETER_HD_TEMPLATE
#endif

namespace robometer::model::kernels {

// Element <-> accumulator conversion; the .cu file specialises it for __half / __nv_bfloat16.
template <class T>
struct Cvt {
  template <class A>
  ROBOMETER_HD static A in(T v) {
    return static_cast<A>(v);
  }
  template <class A>
  ROBOMETER_HD static T out(A v) {
    return static_cast<T>(v);
  }
};

// v rounded to T and back (the eager ops store each intermediate in the tensor dtype).
template <class T, class A>
ROBOMETER_HD inline A round_to(A v) {
  return Cvt<T>::template in<A>(Cvt<T>::template out<A>(v));
}

ROBOMETER_HD inline float rsqrt_acc(float v) {
#if defined(__CUDA_ARCH__)
  return rsqrtf(v);
#else
  return 1.0f / std::sqrt(v);
#endif
}
ROBOMETER_HD inline double rsqrt_acc(double v) { return 1.0 / sqrt(v); }
ROBOMETER_HD inline float exp_acc(float v) {
#if defined(__CUDA_ARCH__)
  return expf(v);
#else
  return std::exp(v);
#endif
}
ROBOMETER_HD inline double exp_acc(double v) { return exp(v); }

// ---------------------------------------------------------------- residual add + RMSNorm
// h = x + r (stored in T), y = w · T(h / rms(h)) with rms over the row in A (HF Qwen3VL RMSNorm:
// normalise in fp32, cast to the input dtype, multiply by the weight). rstd = 1/rms, saved for
// the backward. r may be null (plain RMSNorm, h not written then).
ROBOMETER_HD_TEMPLATE
template <class T, class A, class Sum>
ROBOMETER_HD void add_rms_norm_row(const T* x, const T* r, const T* w, T* h, T* y, A* rstd, int64_t D, A eps,
                                   int64_t tid, int64_t nthreads, Sum sum) {
  A ss = 0;
  for (int64_t i = tid; i < D; i += nthreads) {
    A v = Cvt<T>::template in<A>(x[i]);
    if (r) {
      const T hv = Cvt<T>::template out<A>(v + Cvt<T>::template in<A>(r[i]));
      h[i] = hv;
      v = Cvt<T>::template in<A>(hv);
    }
    ss += v * v;
  }
  const A inv = rsqrt_acc(sum(ss) / static_cast<A>(D) + eps);
  if (tid == 0) *rstd = inv;
  const T* hs = r ? h : x;
  for (int64_t i = tid; i < D; i += nthreads) {
    const A n = round_to<T>(Cvt<T>::template in<A>(hs[i]) * inv);
    y[i] = Cvt<T>::template out<A>(Cvt<T>::template in<A>(w[i]) * n);
  }
}

// Backward of add_rms_norm_row from the saved h (x when there was no residual) and rstd:
// with n = h·rstd, dn = dy·w,  dh = dh_in + rstd·dn − rstd³·h·(Σ dn·h)/D,
// written to dx (which is also dr). dw_part (may be null) gets dy·T(n) per element; the caller
// sums it over rows. dh_in (may be null) is the gradient arriving at the h output.
ROBOMETER_HD_TEMPLATE
template <class T, class A, class Sum>
ROBOMETER_HD void add_rms_norm_backward_row(const T* h, A rstd, const T* w, const T* dy, const T* dh_in,
                                            T* dx, A* dw_part, int64_t D, int64_t tid, int64_t nthreads,
                                            Sum sum) {
  A dot = 0;
  for (int64_t i = tid; i < D; i += nthreads)
    dot += Cvt<T>::template in<A>(dy[i]) * Cvt<T>::template in<A>(w[i]) * Cvt<T>::template in<A>(h[i]);
  const A c = sum(dot) * rstd * rstd * rstd / static_cast<A>(D);
  for (int64_t i = tid; i < D; i += nthreads) {
    const A hv = Cvt<T>::template in<A>(h[i]);
    const A g = Cvt<T>::template in<A>(dy[i]);
    A d = rstd * g * Cvt<T>::template in<A>(w[i]) - c * hv;
    if (dh_in) d += Cvt<T>::template in<A>(dh_in[i]);
    dx[i] = Cvt<T>::template out<A>(d);
    if (dw_part) dw_part[i] = g * round_to<T>(hv * rstd);
  }
}

// ---------------------------------------------------------------- SwiGLU
// y = T(silu(g)) · u, as at::silu(g) * u rounds it.
template <class A>
ROBOMETER_HD inline A sigmoid_acc(A g) {
  return A(1) / (A(1) + exp_acc(-g));
}
template <class T, class A>
ROBOMETER_HD inline T swiglu(T g, T u) {
  const A gv = Cvt<T>::template in<A>(g);
  const A s = round_to<T>(gv * sigmoid_acc(gv));
  return Cvt<T>::template out<A>(s * Cvt<T>::template in<A>(u));
}
// dg = dy·u·σ(g)·(1 + g·(1 − σ(g))), du = dy·silu(g).
template <class T, class A>
ROBOMETER_HD inline void swiglu_backward(T g, T u, T dy, T* dg, T* du) {
  const A gv = Cvt<T>::template in<A>(g);
  const A uv = Cvt<T>::template in<A>(u);
  const A d = Cvt<T>::template in<A>(dy);
  const A sg = sigmoid_acc(gv);
  *dg = Cvt<T>::template out<A>(d * uv * sg * (A(1) + gv * (A(1) - sg)));
  *du = Cvt<T>::template out<A>(d * round_to<T>(gv * sg));
}

// ---------------------------------------------------------------- per-head RMSNorm + rotary
// One head row x[D] (D even, half = D/2): n = w · T(x·rstd) (the q_norm / k_norm RMSNorm), then
// o = n·cos + rotate_half(n)·sin with rotate_half(n) = (−n[half:], n[:half]) (HF
// apply_rotary_pos_emb), cos/sin the row's [D] slices of the decoder's M-RoPE tables.
ROBOMETER_HD_TEMPLATE
template <class T, class A, class Sum>
ROBOMETER_HD void rms_norm_rotary_row(const T* x, const T* w, const T* cos, const T* sin, T* o, A* rstd,
                                      int64_t D, A eps, int64_t tid, int64_t nthreads, Sum sum) {
  A ss = 0;
  for (int64_t i = tid; i < D; i += nthreads) {
    const A v = Cvt<T>::template in<A>(x[i]);
    ss += v * v;
  }
  const A inv = rsqrt_acc(sum(ss) / static_cast<A>(D) + eps);
  if (tid == 0) *rstd = inv;
  const int64_t half = D / 2;
  for (int64_t i = tid; i < D; i += nthreads) {
    const int64_t p = i < half ? i + half : i - half;  // rotate_half's partner
    const A ni = round_to<T>(Cvt<T>::template in<A>(w[i]) * round_to<T>(Cvt<T>::template in<A>(x[i]) * inv));
    const A np = round_to<T>(Cvt<T>::template in<A>(w[p]) * round_to<T>(Cvt<T>::template in<A>(x[p]) * inv));
    const A rot = i < half ? -np : np;
    o[i] =
        Cvt<T>::template out<A>(ni * Cvt<T>::template in<A>(cos[i]) + rot * Cvt<T>::template in<A>(sin[i]));
  }
}

// Backward: dn = do·cos + rotate_halfᵀ(do·sin) with rotate_halfᵀ(v) = (v[half:], −v[:half]);
// dm = dn·w, m = x·rstd,  dx = rstd·dm − rstd³·x·(Σ dm·x)/D.  dw_part (may be null) gets
// dn·T(m) per element; the caller sums it over rows. No gradient for cos / sin.
ROBOMETER_HD_TEMPLATE
template <class T, class A>
ROBOMETER_HD inline A rotary_backward_at(const T* d_o, const T* cos, const T* sin, int64_t i, int64_t half) {
  const int64_t p = i < half ? i + half : i - half;
  const A vp = Cvt<T>::template in<A>(d_o[p]) * Cvt<T>::template in<A>(sin[p]);
  return Cvt<T>::template in<A>(d_o[i]) * Cvt<T>::template in<A>(cos[i]) + (i < half ? vp : -vp);
}

ROBOMETER_HD_TEMPLATE
template <class T, class A, class Sum>
ROBOMETER_HD void rms_norm_rotary_backward_row(const T* x, A rstd, const T* w, const T* cos, const T* sin,
                                               const T* d_o, T* dx, A* dw_part, int64_t D, int64_t tid,
                                               int64_t nthreads, Sum sum) {
  const int64_t half = D / 2;
  A dot = 0;
  for (int64_t i = tid; i < D; i += nthreads) {
    const A dn = rotary_backward_at<T, A>(d_o, cos, sin, i, half);
    dot += dn * Cvt<T>::template in<A>(w[i]) * Cvt<T>::template in<A>(x[i]);
  }
  const A c = sum(dot) * rstd * rstd * rstd / static_cast<A>(D);
  for (int64_t i = tid; i < D; i += nthreads) {
    const A dn = rotary_backward_at<T, A>(d_o, cos, sin, i, half);
    const A xv = Cvt<T>::template in<A>(x[i]);
    dx[i] = Cvt<T>::template out<A>(rstd * dn * Cvt<T>::template in<A>(w[i]) - c * xv);
    if (dw_part) dw_part[i] = dn * round_to<T>(xv * rstd);
  }
}

}  // namespace robometer::model::kernels
