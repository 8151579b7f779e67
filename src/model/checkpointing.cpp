#include "robometer/model/checkpointing.h"
#include "robometer/core/compat.h"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <memory>
#include <utility>

#include "robometer/core/error.h"

namespace robometer::model {

namespace {

// The RNG stream the block draws from (dropout in LoRA branches), saved before the forward.
struct RngState {
  at::Tensor cpu;
  at::Tensor cuda;
  c10::Device device{at::kCPU};

  static RngState capture(const at::Device& device) {
    RngState s;
    s.device = device;
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      s.cpu = gen.get_state();
    }
    if (device.is_cuda()) {
      auto gen = at::globalContext().defaultGenerator(device);
      std::lock_guard<std::mutex> lock(gen.mutex());
      s.cuda = gen.get_state();
    }
    return s;
  }
  void restore() const {
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(cpu);
    }
    if (cuda.defined()) {
      auto gen = at::globalContext().defaultGenerator(device);
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(cuda);
    }
  }
};

struct CheckpointBackward : public torch::autograd::Node {
  BlockFn fn;
  at::Tensor saved_input;  // detached
  bool input_requires_grad = false;
  RngState rng;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    if (!saved_input.defined()) throw Error("checkpoint: backward called twice on one checkpoint");
    // Replay the forward with the same random stream, then restore the current stream.
    RngState now = RngState::capture(saved_input.device());
    rng.restore();
    at::Tensor x = saved_input.detach();
    if (input_requires_grad) x.requires_grad_(true);
    at::Tensor out;
    {
      torch::autograd::AutoGradMode enable(true);
      out = fn(x);
    }
    now.restore();
    if (out.requires_grad()) torch::autograd::backward({out}, {grads[0]});
    at::Tensor gx = input_requires_grad ? x.grad() : at::Tensor();
    saved_input.reset();
    fn = nullptr;
    return {gx};
  }
  void release_variables() override {
    saved_input.reset();
    fn = nullptr;
  }
};

}  // namespace

at::Tensor checkpoint(const BlockFn& fn, const at::Tensor& input, const std::vector<at::Tensor>& params) {
  bool any_param = false;
  for (const auto& p : params) any_param = any_param || p.requires_grad();
  if (!torch::autograd::GradMode::is_enabled() || (!input.requires_grad() && !any_param)) return fn(input);

  auto node = std::shared_ptr<CheckpointBackward>(new CheckpointBackward(), torch::autograd::deleteNode);
  node->rng = RngState::capture(input.device());
  at::Tensor out;
  {
    robometer::compat::NoGradGuard ng;
    out = fn(input.detach());
  }
  node->fn = fn;
  node->saved_input = input.detach();
  node->input_requires_grad = input.requires_grad();
  node->set_next_edges(torch::autograd::collect_next_edges(input));
  torch::autograd::set_history(out, node);
  return out;
}

}  // namespace robometer::model
