// Built when the project's CUDA kernels are not (no nvcc, a LibTorch without CUDA, or
// -DROBOMETER_CUDA_KERNELS=OFF): the ops say so.
#include "robometer/core/error.h"
#include "robometer/model/fused_kernels.h"

namespace robometer::model {
namespace {

[[noreturn]] void not_built(const char* op) {
  throw Error(
      std::string(op) +
      ": this build has no project CUDA kernels (they need nvcc and a LibTorch with CUDA at configure "
      "time, and -DROBOMETER_CUDA_KERNELS=ON)");
}

}  // namespace

bool project_kernels_compiled() { return false; }
bool project_kernels_available() { return false; }

std::pair<at::Tensor, at::Tensor> fused_add_rms_norm(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                                     double) {
  not_built("fused_add_rms_norm");
}
at::Tensor fused_swiglu(const at::Tensor&, const at::Tensor&) { not_built("fused_swiglu"); }
at::Tensor fused_rms_norm_rotary(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                 double) {
  not_built("fused_rms_norm_rotary");
}

}  // namespace robometer::model
