#include "robometer/model/checkpointing.h"
#include "robometer/core/compat.h"

#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <utility>

#include "robometer/core/error.h"

namespace robometer::model {

CheckpointPlan CheckpointPlan::parse(const std::string& value, const std::string& key) {
  std::string v = value;
  std::transform(v.begin(), v.end(), v.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  CheckpointPlan p;
  if (v == "none" || v == "false" || v == "off" || v == "no") return p;
  if (v == "full" || v == "true" || v == "on" || v == "yes") {
    p.mode = Mode::Full;
    return p;
  }
  if (v == "selective") {
    p.mode = Mode::Selective;
    return p;
  }
  if (!v.empty() && v.size() <= 6 &&
      std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); })) {
    p.mode = Mode::Layers;
    p.layers = std::stoll(v);
    return p;
  }
  throw ConfigError(
      key + " = '" + value +
      "' is not one of: none, full, selective, N (the first N layers; true/false mean full/none)");
}

std::string CheckpointPlan::str() const {
  switch (mode) {
    case Mode::None:
      return "none";
    case Mode::Full:
      return "full";
    case Mode::Selective:
      return "selective";
    case Mode::Layers:
      return std::to_string(layers);
  }
  return "none";
}

namespace {

// Autocast of the forward, restored for the replay (the backward runs on the autograd engine's
// thread, whose autocast state is off).
struct AutocastState {
  bool cpu = false, cuda = false;
  static AutocastState capture() {
    return {compat::autocast_enabled(at::kCPU), compat::autocast_enabled(at::kCUDA)};
  }
  void apply() const {
    compat::set_autocast(at::kCPU, cpu);
    compat::set_autocast(at::kCUDA, cuda);
  }
};
struct AutocastScope {
  AutocastState saved = AutocastState::capture();
  explicit AutocastScope(const AutocastState& s) { s.apply(); }
  AutocastScope(const AutocastScope&) = delete;  // restores once
  AutocastScope& operator=(const AutocastScope&) = delete;
  ~AutocastScope() { saved.apply(); }
};

// What checkpoint_selective keeps of a forward: the taped ops' outputs in call order.
struct Tape {
  std::vector<at::Tensor> linear;
  std::vector<compat::SdpaSaved> attn;
  size_t next_linear = 0, next_attn = 0;
  bool replay = false;
};
thread_local Tape* g_tape = nullptr;
struct TapeScope {
  Tape* prev;
  explicit TapeScope(Tape* t) : prev(g_tape) { g_tape = t; }
  TapeScope(const TapeScope&) = delete;  // restores once
  TapeScope& operator=(const TapeScope&) = delete;
  ~TapeScope() { g_tape = prev; }
};

// y = x wᵀ + b with y given (taken from the tape): the backward of at::linear.
struct TapedLinearBackward : public torch::autograd::Node {
  at::Tensor x, w;
  bool has_bias = false;
  at::ScalarType bias_dtype = at::kFloat;
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    const auto& gy = grads[0];
    torch::autograd::variable_list out(3);
    if (!gy.defined()) return out;
    const int64_t n_out = w.size(0);
    auto gy2 = gy.reshape({-1, n_out});
    if (should_compute_output(0)) out[0] = at::matmul(gy, w.to(gy.scalar_type())).to(x.scalar_type());
    if (should_compute_output(1))
      out[1] = gy2.t().mm(x.reshape({-1, x.size(-1)}).to(gy.scalar_type())).to(w.scalar_type());
    if (has_bias && should_compute_output(2)) out[2] = gy2.sum(0).to(bias_dtype);
    return out;
  }
  void release_variables() override {
    x.reset();
    w.reset();
  }
};

struct TapedSdpaBackward : public torch::autograd::Node {
  at::Tensor q, k, v, mask;
  bool is_causal = false;
  double scale = 1.0;
  compat::SdpaSaved saved;
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    if (!grads[0].defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    auto [gq, gk, gv] = compat::sdpa_backward(grads[0], q, k, v, mask, is_causal, scale, saved);
    return {gq, gk, gv};
  }
  void release_variables() override {
    q.reset();
    k.reset();
    v.reset();
    saved = compat::SdpaSaved();
  }
};

bool needs_graph(const at::Tensor& t) { return t.defined() && t.requires_grad(); }

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
  AutocastState autocast;
  std::unique_ptr<Tape> tape;  // checkpoint_selective only

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
      AutocastScope ac(autocast);
      if (tape) tape->replay = true;
      TapeScope ts(tape.get());
      out = fn(x);
      if (tape && (tape->next_linear != tape->linear.size() || tape->next_attn != tape->attn.size()))
        throw Error("checkpoint_selective: the replay made other taped calls than the forward");
    }
    now.restore();
    if (out.requires_grad()) torch::autograd::backward({out}, {grads[0]});
    at::Tensor gx = input_requires_grad ? x.grad() : at::Tensor();
    saved_input.reset();
    fn = nullptr;
    tape.reset();
    return {gx};
  }
  void release_variables() override {
    saved_input.reset();
    fn = nullptr;
    tape.reset();
  }
};

at::Tensor checkpoint_impl(const BlockFn& fn, const at::Tensor& input, const std::vector<at::Tensor>& params,
                           bool selective) {
  bool any_param = false;
  for (const auto& p : params) any_param = any_param || p.requires_grad();
  if (!torch::autograd::GradMode::is_enabled() || (!input.requires_grad() && !any_param)) return fn(input);

  auto node = std::shared_ptr<CheckpointBackward>(new CheckpointBackward(), torch::autograd::deleteNode);
  node->rng = RngState::capture(input.device());
  node->autocast = AutocastState::capture();
  if (selective) node->tape = std::make_unique<Tape>();
  at::Tensor out;
  {
    robometer::compat::NoGradGuard ng;
    TapeScope ts(node->tape.get());
    out = fn(input.detach());
  }
  node->fn = fn;
  node->saved_input = input.detach();
  node->input_requires_grad = input.requires_grad();
  node->set_next_edges(torch::autograd::collect_next_edges(input));
  torch::autograd::set_history(out, node);
  return out;
}

}  // namespace

at::Tensor checkpoint(const BlockFn& fn, const at::Tensor& input, const std::vector<at::Tensor>& params) {
  return checkpoint_impl(fn, input, params, /*selective=*/false);
}

at::Tensor checkpoint_selective(const BlockFn& fn, const at::Tensor& input,
                                const std::vector<at::Tensor>& params) {
  return checkpoint_impl(fn, input, params, /*selective=*/true);
}

bool tape_active() { return g_tape != nullptr; }

at::Tensor tape_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  Tape* t = g_tape;
  if (!t) return at::linear(x, w, b);
  if (!t->replay) {
    t->linear.push_back(at::linear(x, w, b));
    return t->linear.back();
  }
  if (t->next_linear >= t->linear.size())
    throw Error("checkpoint_selective: more linear calls in the replay");
  at::Tensor y = std::move(t->linear[t->next_linear++]);
  if (!needs_graph(x) && !needs_graph(w) && !needs_graph(b)) return y;
  {
    robometer::compat::NoGradGuard ng;  // not a view (at::linear may return one): the graph starts here
    y = at::_unsafe_view(y, y.sizes());
  }
  auto node = std::shared_ptr<TapedLinearBackward>(new TapedLinearBackward(), torch::autograd::deleteNode);
  node->x = x;
  node->w = w;
  node->has_bias = b.defined();
  if (b.defined()) node->bias_dtype = b.scalar_type();
  node->set_next_edges(torch::autograd::collect_next_edges(x, w, b));
  torch::autograd::set_history(y, node);
  return y;
}

at::Tensor tape_sdpa(const at::Tensor& q, const at::Tensor& k_in, const at::Tensor& v_in,
                     const at::Tensor& mask, bool is_causal, double scale) {
  Tape* t = g_tape;
  if (!t) return compat::sdpa(q, k_in, v_in, mask, is_causal, scale);
  // The saved-output backward wants one K/V head per query head (GQA expanded here; autograd
  // sums the expanded heads' gradients back).
  at::Tensor k = k_in, v = v_in;
  const int64_t hq = q.size(1), hk = k_in.size(1);
  if (hq != hk) {
    const int64_t rep = hq / hk;
    auto expand = [&](const at::Tensor& x) {
      return x.unsqueeze(2)
          .expand({x.size(0), hk, rep, x.size(2), x.size(3)})
          .reshape({x.size(0), hq, x.size(2), x.size(3)});
    };
    k = expand(k_in);
    v = expand(v_in);
  }
  if (!t->replay) {
    t->attn.push_back(compat::sdpa_forward_lse(q, k, v, mask, is_causal, scale));
    return t->attn.back().out;
  }
  if (t->next_attn >= t->attn.size()) throw Error("checkpoint_selective: more attention calls in the replay");
  compat::SdpaSaved saved = std::move(t->attn[t->next_attn++]);
  at::Tensor out;
  {
    robometer::compat::NoGradGuard ng;  // a second TensorImpl on the same storage: the node keeps saved.out
    out = at::_unsafe_view(saved.out, saved.out.sizes());
  }
  if (!needs_graph(q) && !needs_graph(k) && !needs_graph(v)) return out;
  auto node = std::shared_ptr<TapedSdpaBackward>(new TapedSdpaBackward(), torch::autograd::deleteNode);
  node->q = q;
  node->k = k;
  node->v = v;
  node->mask = mask;
  node->is_causal = is_causal;
  node->scale = scale;
  node->saved = std::move(saved);
  node->set_next_edges(torch::autograd::collect_next_edges(q, k, v));
  torch::autograd::set_history(out, node);
  return out;
}

}  // namespace robometer::model
