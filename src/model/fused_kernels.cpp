// LibTorch autograd functions over the project's CUDA kernels (src/model/cuda/). Built only
// where CMake found nvcc and LibTorch has CUDA; fused_kernels_disabled.cpp stands in elsewhere.
// Inputs are made contiguous here; the kernels run on the current CUDA stream of the inputs'
// device, accumulate in fp32 and keep rstd (1/rms per row) for the backward.
#include "robometer/model/fused_kernels.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/cuda.h>

#include <string>

#include "cuda/fused_kernels_api.h"
#include "robometer/core/error.h"

namespace robometer::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

kernels::DType dtype_of(const at::Tensor& t, const char* op) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return kernels::DType::f32;
    case at::kHalf:
      return kernels::DType::f16;
    case at::kBFloat16:
      return kernels::DType::bf16;
    default:
      throw Error(std::string(op) + ": project kernels take bf16, fp16 or fp32, not " +
                  std::string(c10::toString(t.scalar_type())));
  }
}

void* stream_of(const at::Tensor& t) {
  return static_cast<void*>(at::cuda::getCurrentCUDAStream(t.device().index()).stream());
}

void check(int err, const char* op) {
  if (err != 0) throw Error(std::string(op) + ": CUDA kernel launch failed: " + kernels::error_string(err));
}

void check_same(const at::Tensor& a, const at::Tensor& b, const char* op, const char* what) {
  if (!a.is_cuda() || a.device() != b.device() || a.scalar_type() != b.scalar_type())
    throw Error(std::string(op) + ": " + what + " must be CUDA tensors of one device and dtype (" +
                std::string(c10::toString(a.scalar_type())) + " on " + a.device().str() + " vs " +
                std::string(c10::toString(b.scalar_type())) + " on " + b.device().str() + ")");
}

const void* ptr_or_null(const at::Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

struct AddRmsNormFn : torch::autograd::Function<AddRmsNormFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& r,
                               const at::Tensor& w, double eps) {
    const char* op = "fused_add_rms_norm";
    check_same(x, r, op, "x and r");
    check_same(x, w, op, "x and w");
    const int64_t D = x.size(-1);
    if (x.sizes() != r.sizes() || w.dim() != 1 || w.size(0) != D)
      throw Error(std::string(op) + ": x and r must have one shape [..., D] and w [D]");
    const c10::cuda::CUDAGuard guard(x.device());
    auto xc = x.contiguous(), rc = r.contiguous(), wc = w.contiguous();
    const int64_t rows = D > 0 ? xc.numel() / D : 0;
    auto h = at::empty_like(xc), y = at::empty_like(xc);
    auto rstd = at::empty({rows}, xc.options().dtype(at::kFloat));
    check(kernels::add_rms_norm_forward(dtype_of(xc, op), xc.data_ptr(), rc.data_ptr(), wc.data_ptr(),
                                        h.data_ptr(), y.data_ptr(), rstd.data_ptr<float>(), rows, D,
                                        static_cast<float>(eps), stream_of(xc)),
          op);
    ctx->save_for_backward({h, rstd, wc});
    return {h, y};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const char* op = "fused_add_rms_norm backward";
    auto saved = ctx->get_saved_variables();
    const auto &h = saved[0], &rstd = saved[1], &w = saved[2];
    at::Tensor dh = grads[0].defined() ? grads[0].contiguous() : at::Tensor();
    if (!grads[1].defined()) return {dh, dh, at::Tensor(), at::Tensor()};
    const c10::cuda::CUDAGuard guard(h.device());
    auto dy = grads[1].to(h.scalar_type()).contiguous();
    if (dh.defined()) dh = dh.to(h.scalar_type());
    const int64_t D = h.size(-1), rows = rstd.numel();
    auto dx = at::empty_like(h);
    const bool want_dw = ctx->needs_input_grad(2);
    at::Tensor dw_part = want_dw ? at::empty({rows, D}, h.options().dtype(at::kFloat)) : at::Tensor();
    check(
        kernels::add_rms_norm_backward(dtype_of(h, op), h.data_ptr(), rstd.data_ptr<float>(), w.data_ptr(),
                                       dy.data_ptr(), ptr_or_null(dh), dx.data_ptr(),
                                       want_dw ? dw_part.data_ptr<float>() : nullptr, rows, D, stream_of(h)),
        op);
    at::Tensor dw = want_dw ? dw_part.sum(0).to(w.scalar_type()) : at::Tensor();
    return {dx, dx, dw, at::Tensor()};
  }
};

struct SwiGluFn : torch::autograd::Function<SwiGluFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& g, const at::Tensor& u) {
    const char* op = "fused_swiglu";
    check_same(g, u, op, "g and u");
    if (g.sizes() != u.sizes()) throw Error(std::string(op) + ": g and u must have one shape");
    const c10::cuda::CUDAGuard guard(g.device());
    auto gc = g.contiguous(), uc = u.contiguous();
    auto y = at::empty_like(gc);
    check(kernels::swiglu_forward(dtype_of(gc, op), gc.data_ptr(), uc.data_ptr(), y.data_ptr(), gc.numel(),
                                  stream_of(gc)),
          op);
    ctx->save_for_backward({gc, uc});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const char* op = "fused_swiglu backward";
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor()};
    auto saved = ctx->get_saved_variables();
    const auto &g = saved[0], &u = saved[1];
    const c10::cuda::CUDAGuard guard(g.device());
    auto dy = grads[0].to(g.scalar_type()).contiguous();
    auto dg = at::empty_like(g), du = at::empty_like(u);
    check(kernels::swiglu_backward(dtype_of(g, op), g.data_ptr(), u.data_ptr(), dy.data_ptr(), dg.data_ptr(),
                                   du.data_ptr(), g.numel(), stream_of(g)),
          op);
    return {dg, du};
  }
};

struct RmsNormRotaryFn : torch::autograd::Function<RmsNormRotaryFn> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w,
                            const at::Tensor& cos, const at::Tensor& sin, double eps) {
    const char* op = "fused_rms_norm_rotary";
    check_same(x, w, op, "x and w");
    if (x.dim() != 4 || w.dim() != 1 || w.size(0) != x.size(3) || x.size(3) % 2 != 0)
      throw Error(std::string(op) + ": x must be [B, L, H, D] with D even and w [D]");
    const int64_t B = x.size(0), L = x.size(1), H = x.size(2), D = x.size(3);
    if (cos.numel() != B * L * D || sin.numel() != B * L * D)
      throw Error(std::string(op) + ": cos and sin must be [B, L, D] = [" + std::to_string(B) + ", " +
                  std::to_string(L) + ", " + std::to_string(D) + "]");
    const c10::cuda::CUDAGuard guard(x.device());
    auto xc = x.contiguous(), wc = w.contiguous();
    auto cc = cos.to(x.device(), x.scalar_type()).contiguous();
    auto sc = sin.to(x.device(), x.scalar_type()).contiguous();
    const int64_t rows = B * L * H;
    auto o = at::empty_like(xc);
    auto rstd = at::empty({rows}, xc.options().dtype(at::kFloat));
    check(kernels::rms_norm_rotary_forward(dtype_of(xc, op), xc.data_ptr(), wc.data_ptr(), cc.data_ptr(),
                                           sc.data_ptr(), o.data_ptr(), rstd.data_ptr<float>(), rows, H, D,
                                           static_cast<float>(eps), stream_of(xc)),
          op);
    ctx->save_for_backward({xc, rstd, wc, cc, sc});
    return o;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const char* op = "fused_rms_norm_rotary backward";
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &rstd = saved[1], &w = saved[2], &cs = saved[3], &sn = saved[4];
    const c10::cuda::CUDAGuard guard(x.device());
    auto d_o = grads[0].to(x.scalar_type()).contiguous();
    const int64_t H = x.size(2), D = x.size(3), rows = rstd.numel();
    auto dx = at::empty_like(x);
    const bool want_dw = ctx->needs_input_grad(1);
    at::Tensor dw_part = want_dw ? at::empty({rows, D}, x.options().dtype(at::kFloat)) : at::Tensor();
    check(kernels::rms_norm_rotary_backward(dtype_of(x, op), x.data_ptr(), rstd.data_ptr<float>(),
                                            w.data_ptr(), cs.data_ptr(), sn.data_ptr(), d_o.data_ptr(),
                                            dx.data_ptr(), want_dw ? dw_part.data_ptr<float>() : nullptr,
                                            rows, H, D, stream_of(x)),
          op);
    at::Tensor dw = want_dw ? dw_part.sum(0).to(w.scalar_type()) : at::Tensor();
    return {dx, dw, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool project_kernels_compiled() { return true; }
bool project_kernels_available() { return torch::cuda::is_available(); }

std::pair<at::Tensor, at::Tensor> fused_add_rms_norm(const at::Tensor& x, const at::Tensor& r,
                                                     const at::Tensor& w, double eps) {
  auto out = AddRmsNormFn::apply(x, r, w, eps);
  return {out[0], out[1]};
}

at::Tensor fused_swiglu(const at::Tensor& g, const at::Tensor& u) { return SwiGluFn::apply(g, u); }

at::Tensor fused_rms_norm_rotary(const at::Tensor& x, const at::Tensor& w, const at::Tensor& cos,
                                 const at::Tensor& sin, double eps) {
  return RmsNormRotaryFn::apply(x, w, cos, sin, eps);
}

}  // namespace robometer::model
