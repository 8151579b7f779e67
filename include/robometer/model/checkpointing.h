// Activation checkpointing: run a block without keeping its intermediate activations and
// recompute them during backward (PyTorch's reentrant torch.utils.checkpoint, in C++), plus a
// selective variant that keeps the outputs of the block's matmuls and attention (with the
// attention's log-sum-exp) and recomputes only the elementwise work between them.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

namespace robometer::model {

using BlockFn = std::function<at::Tensor(const at::Tensor&)>;

// model.activation_checkpointing: none | full | selective | N (the first N decoder layers fully
// checkpointed, the rest not). true/false are kept as aliases of full/none.
struct CheckpointPlan {
  enum class Mode { None, Full, Selective, Layers };
  Mode mode = Mode::None;
  int64_t layers = 0;  // Mode::Layers only

  // Throws ConfigError naming `key` and the value for anything else.
  static CheckpointPlan parse(const std::string& value,
                              const std::string& key = "model.activation_checkpointing");
  std::string str() const;  // the canonical spelling: "none", "full", "selective", "4"
  bool any() const { return mode != Mode::None && !(mode == Mode::Layers && layers == 0); }
  // How decoder layer / vision block `i` runs.
  bool full_at(int64_t i) const { return mode == Mode::Full || (mode == Mode::Layers && i < layers); }
  bool selective_at(int64_t) const { return mode == Mode::Selective; }
};

// Returns fn(input). When grad mode is on and `input` or one of `params` requires grad, the
// forward runs under no-grad and only `input` is kept; backward re-runs fn with grad enabled
// (restoring the CPU/CUDA RNG state and the autocast state of the forward so dropout masks and
// dtypes repeat) and back-propagates into `input` and, by accumulation into .grad, into the
// block's parameters. Everything else fn uses (masks, rotary tables) must be constants captured
// by the closure.
at::Tensor checkpoint(const BlockFn& fn, const at::Tensor& input, const std::vector<at::Tensor>& params);

// As checkpoint(), but the forward also keeps what fn computes through tape_linear() and
// tape_sdpa() (the outputs of its projections, the attention output and log-sum-exp); the
// backward replay takes those from the tape instead of recomputing them, so only the
// elementwise ops (norms, rotary, activations, residual adds) run twice. fn must make the same
// tape calls in the same order on every run.
at::Tensor checkpoint_selective(const BlockFn& fn, const at::Tensor& input,
                                const std::vector<at::Tensor>& params);

// Whether this thread is inside a checkpoint_selective() forward or replay (code whose path
// depends on grad mode must take the same path in both then).
bool tape_active();

// at::linear(x, w, b), taped inside checkpoint_selective().
at::Tensor tape_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);
// compat::sdpa(q, k, v, mask, is_causal, scale), taped inside checkpoint_selective(); the
// replay's backward runs from the saved output and log-sum-exp (compat::sdpa_backward).
at::Tensor tape_sdpa(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     bool is_causal, double scale);

}  // namespace robometer::model
