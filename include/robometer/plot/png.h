// One video frame as PNG bytes (Cairo), e.g. for the web UI's frame strips.
#pragma once
#include <ATen/ATen.h>

#include <string>

namespace robometer::plot {

// frame: uint8 [H, W, 3]. Throws Error on another shape or when built without Cairo.
std::string encode_png(const at::Tensor& frame);

}  // namespace robometer::plot
