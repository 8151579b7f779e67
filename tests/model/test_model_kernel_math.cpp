// The per-row math of the project's CUDA kernels (src/model/cuda/fused_math.h), run on the
// host, against LibTorch's autograd of the eager ops. The kernels call exactly these row
// functions with their thread index and a block / warp sum; here the threads are played one
// after another (partial sums first, then each thread again with the total), with the thread
// counts the kernels use, so the strided loops and the hand-derived backward formulas are
// checked before any GPU runs them:
//  - fp64 (T = A = double): the formulas against autograd of the same math in fp64 (1e-10);
//  - fp32 and bf16 (accumulating in fp32, as on the device): against the decoder's eager
//    modules (RMSNorm, at::silu, apply_text_rotary) in that dtype.
// What stays for the GPU (test_fused_kernels_gpu.cpp): the reductions' shuffles, the launch
// geometry, the wrappers (contiguity, streams) and __nv_bfloat16's conversions.
#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../../src/model/cuda/fused_math.h"
#include "robometer/model/qwen3vl_config.h"
#include "robometer/model/rotary.h"
#include "robometer/model/text_decoder.h"

using namespace robometer;
using namespace robometer::model;
namespace k = robometer::model::kernels;

namespace {

template <class T>
struct Types;
template <>
struct Types<double> {
  using A = double;
  static constexpr at::ScalarType st = at::kDouble;
};
template <>
struct Types<float> {
  using A = float;
  static constexpr at::ScalarType st = at::kFloat;
};
template <>
struct Types<c10::BFloat16> {
  using A = float;
  static constexpr at::ScalarType st = at::kBFloat16;
};

// Runs row(tid, nthreads, sum) for tid = 0..n-1 the way a block would: every thread's partial
// sum first (outputs written then are overwritten), then every thread again with the total.
template <class A, class Row>
void run_threads(int64_t n, Row row) {
  std::vector<A> partial(n, A(0));
  for (int64_t t = 0; t < n; ++t)
    row(t, n, [&](A v) {
      partial[t] = v;
      return A(0);
    });
  A total = 0;
  for (const A v : partial) total += v;
  for (int64_t t = 0; t < n; ++t) row(t, n, [&](A) { return total; });
}

template <class U>
U* P(const at::Tensor& t) {
  return static_cast<U*>(t.data_ptr());
}

// ||a - ref|| / ||ref||, the norm floored at 1e-3 (a D = 1 RMSNorm's dx is ~eps, all rounding).
double rel_err(const at::Tensor& a, const at::Tensor& ref) {
  const auto d = (a.to(at::kDouble) - ref.to(at::kDouble)).norm().item<double>();
  const auto n = ref.to(at::kDouble).norm().item<double>();
  return d / std::max(n, 1e-3);
}
double equal_fraction(const at::Tensor& a, const at::Tensor& b) {
  return a.eq(b).to(at::kDouble).mean().item<double>();
}

// HF RMSNorm in the input's dtype (fp64 reference; the module normalises in fp32).
at::Tensor rms_norm_ref(const at::Tensor& h, const at::Tensor& w, double eps) {
  return w * (h * at::rsqrt(h.pow(2).mean(-1, true) + eps));
}

RMSNorm norm_module(const at::Tensor& w, double eps) {
  RMSNorm m(w.size(0), eps);
  m->weight.set_data(w.detach().clone());
  return m;
}

// ---------------------------------------------------------------- add + RMSNorm
struct AddNormOut {
  at::Tensor h, y, dx, dw, dr;  // the kernel's dr is its dx
};

// The kernel math over rows x D with `threads` threads per row.
template <class T>
AddNormOut add_norm_kernel(const at::Tensor& x, const at::Tensor& r, const at::Tensor& w,
                           const at::Tensor& gh, const at::Tensor& gy, double eps, int64_t threads) {
  using A = typename Types<T>::A;
  const int64_t D = x.size(-1), rows = x.numel() / D;
  auto h = at::empty_like(x), y = at::empty_like(x), dx = at::empty_like(x);
  auto rstd = at::empty({rows}, at::dtype(c10::CppTypeToScalarType<A>::value));
  auto dwp = at::empty({rows, D}, rstd.options());
  const bool res = r.defined();
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t o = i * D;
    run_threads<A>(threads, [&](int64_t t, int64_t n, auto sum) {
      k::add_rms_norm_row<T, A>(P<T>(x) + o, res ? P<T>(r) + o : nullptr, P<T>(w),
                                res ? P<T>(h) + o : nullptr, P<T>(y) + o, P<A>(rstd) + i, D,
                                static_cast<A>(eps), t, n, sum);
    });
    const T* hs = res ? P<T>(h) + o : P<T>(x) + o;
    run_threads<A>(threads, [&](int64_t t, int64_t n, auto sum) {
      k::add_rms_norm_backward_row<T, A>(hs, P<A>(rstd)[i], P<T>(w), P<T>(gy) + o,
                                         gh.defined() ? P<T>(gh) + o : nullptr, P<T>(dx) + o, P<A>(dwp) + o,
                                         D, t, n, sum);
    });
  }
  return {res ? h : x, y, dx, dwp.sum(0), dx};
}

// Autograd of the eager op: (h, y) = (x + r, norm(x + r)), loss = <h, gh> + <y, gy>.
template <class Norm>
AddNormOut add_norm_autograd(const at::Tensor& x0, const at::Tensor& r0, const at::Tensor& w0,
                             const at::Tensor& gh, const at::Tensor& gy, Norm norm) {
  auto x = x0.detach().clone().requires_grad_(true);
  auto w = w0.detach().clone().requires_grad_(true);
  at::Tensor r, h = x;
  if (r0.defined()) {
    r = r0.detach().clone().requires_grad_(true);
    h = x + r;
  }
  auto y = norm(h, w);
  auto loss = (y.to(at::kDouble) * gy.to(at::kDouble)).sum();
  if (r0.defined() && gh.defined()) loss = loss + (h.to(at::kDouble) * gh.to(at::kDouble)).sum();
  if (!r0.defined()) {
    auto g = torch::autograd::grad({loss}, {x, w});
    return {h.detach(), y.detach(), g[0], g[1], {}};
  }
  auto g = torch::autograd::grad({loss}, {x, w, r});
  return {h.detach(), y.detach(), g[0], g[1], g[2]};
}

struct Shape {
  int64_t rows, D;
  double eps;
};

const std::vector<Shape> kRowShapes = {{1, 1, 1e-6},    {3, 7, 1e-6},     {5, 64, 1e-6},  {4, 300, 1e-1},
                                       {2, 2560, 1e-6}, {33, 2560, 1e-6}, {6, 4096, 1e-5}};

}  // namespace

TEST(ModelKernelMath, AddRmsNormFp64MatchesAutogradOnEveryThreadCount) {
  for (const auto& s : kRowShapes) {
    for (const int64_t threads : {int64_t{1}, int64_t{32}, int64_t{256}}) {
      for (const bool residual : {true, false}) {
        SCOPED_TRACE("rows " + std::to_string(s.rows) + " D " + std::to_string(s.D) + " threads " +
                     std::to_string(threads) + (residual ? " residual" : " no residual"));
        torch::manual_seed(s.D + threads);
        auto o = at::dtype(at::kDouble);
        auto x = at::randn({s.rows, s.D}, o) * 3, w = at::randn({s.D}, o);
        auto r = residual ? at::randn({s.rows, s.D}, o) : at::Tensor();
        auto gh = residual ? at::randn({s.rows, s.D}, o) : at::Tensor(), gy = at::randn({s.rows, s.D}, o);
        auto ker = add_norm_kernel<double>(x, r, w, gh, gy, s.eps, threads);
        auto ref = add_norm_autograd(x, r, w, gh, gy, [&](const at::Tensor& h, const at::Tensor& ww) {
          return rms_norm_ref(h, ww, s.eps);
        });
        EXPECT_LT(rel_err(ker.h, ref.h), 1e-14);
        EXPECT_LT(rel_err(ker.y, ref.y), 1e-12);
        EXPECT_LT(rel_err(ker.dx, ref.dx), 1e-10);
        if (residual) {
          EXPECT_LT(rel_err(ker.dr, ref.dr), 1e-10);  // the kernel's dx is dr too
        }
        EXPECT_LT(rel_err(ker.dw, ref.dw), 1e-10);
      }
    }
  }
}

TEST(ModelKernelMath, AddRmsNormMatchesTheEagerModuleInFp32AndBf16) {
  for (const auto& s : kRowShapes) {
    SCOPED_TRACE("rows " + std::to_string(s.rows) + " D " + std::to_string(s.D));
    torch::manual_seed(s.rows * 7 + s.D);
    auto x64 = at::randn({s.rows, s.D}, at::kDouble) * 2, r64 = at::randn({s.rows, s.D}, at::kDouble);
    auto w64 = 1 + 0.3 * at::randn({s.D}, at::kDouble);
    auto gh64 = at::randn({s.rows, s.D}, at::kDouble), gy64 = at::randn({s.rows, s.D}, at::kDouble);
    for (const auto st : {at::kFloat, at::kBFloat16}) {
      SCOPED_TRACE(std::string(c10::toString(st)));
      auto x = x64.to(st), r = r64.to(st), w = w64.to(st), gh = gh64.to(st), gy = gy64.to(st);
      const auto ker = st == at::kFloat ? add_norm_kernel<float>(x, r, w, gh, gy, s.eps, 256)
                                        : add_norm_kernel<c10::BFloat16>(x, r, w, gh, gy, s.eps, 256);
      auto module = norm_module(w, s.eps);
      auto eager = add_norm_autograd(x, r, w, gh, gy, [&](const at::Tensor& h, const at::Tensor& ww) {
        module->weight = ww;
        return module->forward(h);
      });
      // The exact gradients of the op at these (rounded) inputs, for the bf16 gradient check.
      auto exact = add_norm_autograd(
          x.to(at::kDouble), r.to(at::kDouble), w.to(at::kDouble), gh.to(at::kDouble), gy.to(at::kDouble),
          [&](const at::Tensor& h, const at::Tensor& ww) { return rms_norm_ref(h, ww, s.eps); });
      EXPECT_TRUE(ker.h.equal(eager.h));  // the add rounds the same way
      EXPECT_EQ(ker.y.scalar_type(), eager.y.scalar_type());
      if (st == at::kFloat) {
        EXPECT_LT(rel_err(ker.y, eager.y), 1e-6);
        EXPECT_LT(rel_err(ker.dx, eager.dx), 1e-5);
        EXPECT_LT(rel_err(ker.dw, eager.dw), 1e-5);
      } else {
        // Same rounding points as the module (h, T(h·rstd), w·n): nearly every element equal,
        // the rest one bf16 step apart where the fp32 sums differ in the last bits.
        EXPECT_GT(equal_fraction(ker.y, eager.y), 0.97);
        EXPECT_LT(rel_err(ker.y, eager.y), 4e-3);
        // Gradients in fp32 then rounded once: closer to exact than the eager bf16 chain.
        EXPECT_LT(rel_err(ker.dx, exact.dx), 5e-3);
        EXPECT_LT(rel_err(ker.dw, exact.dw), 5e-3);
        EXPECT_LT(rel_err(ker.dx, eager.dx), 2e-2);
        EXPECT_LT(rel_err(ker.dw, eager.dw), 2e-2);
      }
    }
  }
}

// ---------------------------------------------------------------- SwiGLU
namespace {

template <class T>
std::vector<at::Tensor> swiglu_kernel(const at::Tensor& g, const at::Tensor& u, const at::Tensor& dy) {
  using A = typename Types<T>::A;
  auto y = at::empty_like(g), dg = at::empty_like(g), du = at::empty_like(g);
  for (int64_t i = 0; i < g.numel(); ++i) {
    P<T>(y)[i] = k::swiglu<T, A>(P<T>(g)[i], P<T>(u)[i]);
    k::swiglu_backward<T, A>(P<T>(g)[i], P<T>(u)[i], P<T>(dy)[i], P<T>(dg) + i, P<T>(du) + i);
  }
  return {y, dg, du};
}

std::vector<at::Tensor> swiglu_autograd(const at::Tensor& g0, const at::Tensor& u0, const at::Tensor& dy) {
  auto g = g0.detach().clone().requires_grad_(true), u = u0.detach().clone().requires_grad_(true);
  auto y = at::silu(g) * u;
  auto gr = torch::autograd::grad({y}, {g, u}, {dy});
  return {y.detach(), gr[0], gr[1]};
}

}  // namespace

TEST(ModelKernelMath, SwiGluMatchesAutogradInFp64Fp32AndBf16) {
  torch::manual_seed(3);
  // Saturated gates (|g| up to 40) as well as the usual range.
  auto g64 = at::cat({at::randn({4, 9728}, at::kDouble) * 3,
                      at::linspace(-40, 40, 801, at::kDouble).view({1, -1}).expand({4, -1})},
                     1);
  auto u64 = at::randn_like(g64), dy64 = at::randn_like(g64);
  {
    auto ker = swiglu_kernel<double>(g64, u64, dy64);
    auto ref = swiglu_autograd(g64, u64, dy64);
    EXPECT_LT(rel_err(ker[0], ref[0]), 1e-14);
    EXPECT_LT(rel_err(ker[1], ref[1]), 1e-13);
    EXPECT_LT(rel_err(ker[2], ref[2]), 1e-14);
  }
  for (const auto st : {at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(std::string(c10::toString(st)));
    auto g = g64.to(st), u = u64.to(st), dy = dy64.to(st);
    auto ker = st == at::kFloat ? swiglu_kernel<float>(g, u, dy) : swiglu_kernel<c10::BFloat16>(g, u, dy);
    auto eager = swiglu_autograd(g, u, dy);
    auto exact = swiglu_autograd(g.to(at::kDouble), u.to(at::kDouble), dy.to(at::kDouble));
    EXPECT_EQ(ker[0].scalar_type(), st);
    if (st == at::kFloat) {
      for (int i = 0; i < 3; ++i) EXPECT_LT(rel_err(ker[i], eager[i]), 1e-6) << i;
    } else {
      // CUDA's eager silu and mul compute in fp32 and round once each: T(T(silu(g)) · u). (1.13's
      // CPU silu rounds after every bf16 vector op, so it is only compared loosely.)
      auto f = at::kFloat;
      auto once = (at::silu(g.to(f)).to(st).to(f) * u.to(f)).to(st);
      EXPECT_GT(equal_fraction(ker[0], once), 0.97);
      EXPECT_LT(rel_err(ker[0], eager[0]), 4e-3);
      for (int i = 1; i < 3; ++i) {
        EXPECT_LT(rel_err(ker[i], exact[i]), 5e-3) << i;
        EXPECT_LT(rel_err(ker[i], eager[i]), 2e-2) << i;
      }
    }
  }
}

// ---------------------------------------------------------------- per-head RMSNorm + rotary
namespace {

struct RotOut {
  at::Tensor o, dx, dw;
};

// x [B, L, H, D], cos / sin [B, L, D]; 32 threads per row (a warp) as the kernel has.
template <class T>
RotOut norm_rotary_kernel(const at::Tensor& x, const at::Tensor& w, const at::Tensor& cos,
                          const at::Tensor& sin, const at::Tensor& d_o, double eps, int64_t threads) {
  using A = typename Types<T>::A;
  const int64_t H = x.size(2), D = x.size(3), rows = x.numel() / D;
  auto o = at::empty_like(x), dx = at::empty_like(x);
  auto rstd = at::empty({rows}, at::dtype(c10::CppTypeToScalarType<A>::value));
  auto dwp = at::empty({rows, D}, rstd.options());
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t off = i * D, tok = (i / H) * D;
    run_threads<A>(threads, [&](int64_t t, int64_t n, auto sum) {
      k::rms_norm_rotary_row<T, A>(P<T>(x) + off, P<T>(w), P<T>(cos) + tok, P<T>(sin) + tok, P<T>(o) + off,
                                   P<A>(rstd) + i, D, static_cast<A>(eps), t, n, sum);
    });
    run_threads<A>(threads, [&](int64_t t, int64_t n, auto sum) {
      k::rms_norm_rotary_backward_row<T, A>(P<T>(x) + off, P<A>(rstd)[i], P<T>(w), P<T>(cos) + tok,
                                            P<T>(sin) + tok, P<T>(d_o) + off, P<T>(dx) + off, P<A>(dwp) + off,
                                            D, t, n, sum);
    });
  }
  return {o, dx, dwp.sum(0)};
}

// The decoder's eager path: norm on [B, L, H, D], transpose, apply_text_rotary, transpose back.
template <class Norm>
RotOut norm_rotary_autograd(const at::Tensor& x0, const at::Tensor& w0, const at::Tensor& cos,
                            const at::Tensor& sin, const at::Tensor& d_o, Norm norm) {
  auto x = x0.detach().clone().requires_grad_(true), w = w0.detach().clone().requires_grad_(true);
  auto q = norm(x, w).transpose(1, 2);
  auto o = apply_text_rotary(q, q, cos, sin).first.transpose(1, 2);
  auto g = torch::autograd::grad({o}, {x, w}, {d_o});
  return {o.detach(), g[0], g[1]};
}

struct RotShape {
  int64_t B, L, H;
  TextConfig cfg;
};

std::vector<RotShape> rot_shapes() {
  TextConfig big;  // the 4B decoder's head_dim 128, M-RoPE sections 24/20/20
  const TextConfig tiny = tiny_qwen3vl_config().text;
  TextConfig odd = tiny;  // a head_dim that is no multiple of the warp
  odd.head_dim = 40;
  odd.mrope_section = {8, 6, 6};
  odd.rms_norm_eps = 1e-2;
  return {{2, 7, 8, big}, {1, 3, 2, big}, {2, 5, 4, tiny}, {1, 4, 3, odd}};
}

}  // namespace

TEST(ModelKernelMath, RmsNormRotaryFp64MatchesAutogradOnTheDecoderTables) {
  for (const auto& s : rot_shapes()) {
    for (const int64_t threads : {int64_t{1}, int64_t{32}}) {
      const int64_t D = s.cfg.head_dim;
      SCOPED_TRACE("B " + std::to_string(s.B) + " L " + std::to_string(s.L) + " H " + std::to_string(s.H) +
                   " D " + std::to_string(D) + " threads " + std::to_string(threads));
      torch::manual_seed(D + s.L);
      auto pos = at::randint(0, 600, {3, s.B, s.L}, at::kLong);
      auto [cos, sin] = text_mrope_cos_sin(pos, s.cfg, at::kDouble);
      auto x = at::randn({s.B, s.L, s.H, D}, at::kDouble) * 2, w = at::randn({D}, at::kDouble);
      auto d_o = at::randn_like(x);
      const double eps = s.cfg.rms_norm_eps;
      auto ker = norm_rotary_kernel<double>(x, w, cos.contiguous(), sin.contiguous(), d_o, eps, threads);
      auto ref = norm_rotary_autograd(x, w, cos, sin, d_o, [&](const at::Tensor& h, const at::Tensor& ww) {
        return rms_norm_ref(h, ww, eps);
      });
      EXPECT_LT(rel_err(ker.o, ref.o), 1e-12);
      EXPECT_LT(rel_err(ker.dx, ref.dx), 1e-10);
      EXPECT_LT(rel_err(ker.dw, ref.dw), 1e-10);
    }
  }
}

TEST(ModelKernelMath, RmsNormRotaryMatchesTheEagerPathInFp32AndBf16) {
  for (const auto& s : rot_shapes()) {
    const int64_t D = s.cfg.head_dim;
    SCOPED_TRACE("D " + std::to_string(D) + " H " + std::to_string(s.H));
    torch::manual_seed(D * 3 + s.H);
    auto pos = at::randint(0, 600, {3, s.B, s.L}, at::kLong);
    auto x64 = at::randn({s.B, s.L, s.H, D}, at::kDouble) * 2, w64 = 1 + 0.3 * at::randn({D}, at::kDouble);
    auto do64 = at::randn_like(x64);
    const double eps = s.cfg.rms_norm_eps;
    for (const auto st : {at::kFloat, at::kBFloat16}) {
      SCOPED_TRACE(std::string(c10::toString(st)));
      auto [cos, sin] = text_mrope_cos_sin(pos, s.cfg, st);  // as the decoder makes them
      auto x = x64.to(st), w = w64.to(st), d_o = do64.to(st);
      const auto ker =
          st == at::kFloat
              ? norm_rotary_kernel<float>(x, w, cos.contiguous(), sin.contiguous(), d_o, eps, 32)
              : norm_rotary_kernel<c10::BFloat16>(x, w, cos.contiguous(), sin.contiguous(), d_o, eps, 32);
      auto module = norm_module(w, eps);
      auto eager = norm_rotary_autograd(x, w, cos, sin, d_o, [&](const at::Tensor& h, const at::Tensor& ww) {
        module->weight = ww;
        return module->forward(h);
      });
      auto exact = norm_rotary_autograd(
          x.to(at::kDouble), w.to(at::kDouble), cos.to(at::kDouble), sin.to(at::kDouble), d_o.to(at::kDouble),
          [&](const at::Tensor& h, const at::Tensor& ww) { return rms_norm_ref(h, ww, eps); });
      EXPECT_EQ(ker.o.scalar_type(), st);
      if (st == at::kFloat) {
        EXPECT_LT(rel_err(ker.o, eager.o), 1e-6);
        EXPECT_LT(rel_err(ker.dx, eager.dx), 1e-5);
        EXPECT_LT(rel_err(ker.dw, eager.dw), 1e-5);
      } else {
        // The eager rotary rounds q·cos and rot·sin before adding them; the kernel rounds once.
        EXPECT_LT(rel_err(ker.o, eager.o), 6e-3);
        EXPECT_LT(rel_err(ker.dx, exact.dx), 5e-3);
        EXPECT_LT(rel_err(ker.dw, exact.dw), 5e-3);
        EXPECT_LT(rel_err(ker.dx, eager.dx), 2e-2);
        EXPECT_LT(rel_err(ker.dw, eager.dw), 2e-2);
      }
    }
  }
}
