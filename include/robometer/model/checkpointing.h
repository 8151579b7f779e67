// Activation checkpointing: run a block without keeping its intermediate activations and
// recompute them during backward (PyTorch's reentrant torch.utils.checkpoint, in C++).
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <vector>

namespace robometer::model {

using BlockFn = std::function<at::Tensor(const at::Tensor&)>;

// Returns fn(input). When grad mode is on and `input` or one of `params` requires grad, the
// forward runs under no-grad and only `input` is kept; backward re-runs fn with grad enabled
// (restoring the CPU/CUDA RNG state of the forward so dropout masks repeat) and back-propagates
// into `input` and, by accumulation into .grad, into the block's parameters. Everything else
// fn uses (masks, rotary tables) must be constants captured by the closure.
at::Tensor checkpoint(const BlockFn& fn, const at::Tensor& input, const std::vector<at::Tensor>& params);

}  // namespace robometer::model
