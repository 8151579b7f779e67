// Trainable parameters with their module-path names, in registration order: what the optimizer,
// gradient sync and the trainer pass around (the same type as io::NamedTensors, a file's tensors).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace robometer::train {

using NamedParameters = std::vector<std::pair<std::string, at::Tensor>>;

}  // namespace robometer::train
