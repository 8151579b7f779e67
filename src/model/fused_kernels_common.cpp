// The project kernels' runtime switch and summary line, built with or without the kernels
// (fused_kernels.cpp / fused_kernels_disabled.cpp have the ops).
#include <cstdlib>
#include <string>

#include "robometer/core/compat.h"
#include "robometer/model/fused_kernels.h"

namespace robometer::model {
namespace {

bool& kernels_flag() {
  static bool on = [] {
    const char* e = std::getenv("ROBOMETER_CUDA_KERNELS");
    return e && std::string(e) == "1";
  }();
  return on;
}

}  // namespace

bool project_kernels_enabled() { return kernels_flag(); }
void set_project_kernels_enabled(bool on) { kernels_flag() = on; }

bool use_project_kernels(const at::Tensor& x) {
  if (!project_kernels_compiled() || !kernels_flag() || !compat::fused_enabled() || !x.is_cuda())
    return false;
  const auto t = x.scalar_type();
  return t == at::kBFloat16 || t == at::kHalf || t == at::kFloat;
}

std::string project_kernels_summary() {
  std::string s = "project CUDA kernels (add+rms_norm, swiglu, qk rms_norm+rotary): ";
  if (!project_kernels_compiled()) return s + "not compiled (needs nvcc and a LibTorch with CUDA)";
  s += "compiled";
#ifdef ROBOMETER_CUDA_ARCHS
  s += std::string(" (CUDA archs ") + ROBOMETER_CUDA_ARCHS + ")";
#endif
  return s + ", switched " + (kernels_flag() ? "on" : "off (ROBOMETER_CUDA_KERNELS=1 turns them on)");
}

}  // namespace robometer::model
