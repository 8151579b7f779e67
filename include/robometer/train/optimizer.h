// AdamW over named parameters, with parameter groups (weight decay / learning rate by name),
// optional fp32 master weights for low-precision parameters, and a state that serialises
// exactly (per-parameter exp_avg, exp_avg_sq, step keyed by parameter name) so that a resumed
// run continues bitwise. The update math is torch.optim.AdamW's (single-tensor path):
//   p ← p·(1 − lr·wd);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + ε)
// adamw_update() is exposed on plain tensors so a sharded (ZeRO-1) optimizer can run it on a
// flat slice of parameters.
#pragma once
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "robometer/io/safetensors.h"
#include "robometer/train/named_parameters.h"

namespace robometer::train {

// A learning-rate override for parameters whose name matches `pattern` (ECMAScript regex,
// searched anywhere in the name). The first matching rule wins. Exactly one of lr (absolute,
// > 0) or lr_scale (multiplier on the base lr) is used: lr when > 0, else lr_scale.
struct LrRule {
  std::string pattern;
  double lr = -1.0;
  double lr_scale = 1.0;
};

struct AdamWConfig {
  double lr = 2e-5;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  std::vector<LrRule> lr_rules;
  bool decay_1d_params = true;              // false: every 1-D tensor is also exempt from decay
  std::vector<std::string> no_decay_names;  // exempt by exact name (the model's LayerNorm params)
  bool fp32_master = true;                  // keep an fp32 copy of non-fp32 params and update that
};

// Whether `name` is exempt from weight decay (HF get_decay_parameter_names, by name only):
// some dot-separated component of the lower-cased name contains "bias" or "norm"
// (bias, *.norm.weight, norm1, q_norm, input_layernorm, post_attention_layernorm, rmsnorm, ...).
bool is_no_decay_name(const std::string& name);

// How one trainable parameter is optimised, as AdamW and the sharded (ZeRO-1) AdamW both group
// them: the first matching lr rule (or -1), whether it decays, its base lr and weight decay.
struct ParamPlan {
  std::string name;
  at::Tensor tensor;
  int rule = -1;
  bool decay = true;
  double base_lr = 0, weight_decay = 0;
};
// Frozen parameters (requires_grad false) are left out, order kept. Throws ConfigError on a bad
// lr rule regex or a duplicate name.
std::vector<ParamPlan> plan_parameters(const NamedParameters& named_params, const AdamWConfig& cfg);

struct AdamWHyper {
  double lr, beta1, beta2, eps, weight_decay;
};

// One AdamW step on plain tensors (any shape, e.g. flat shards). `param` is updated in place
// and must have the dtype of exp_avg/exp_avg_sq; `step` is the step count after this update
// (1 for the first). grad is converted to param's dtype.
void adamw_update(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                  int64_t step, const AdamWHyper& h);

// Global L2 norm over all defined grads (computed in fp32); when it exceeds max_norm every
// grad is scaled by max_norm / (norm + 1e-6) as torch.nn.utils.clip_grad_norm_ does. CUDA grads
// go through one multi-tensor norm and one multi-tensor scale (compat::use_foreach_norm). A
// non-finite norm is returned unchanged and grads are left alone (the loop should skip the
// step). max_norm <= 0 only measures.
double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm = 10.0);

class AdamW {
 public:
  struct Group {
    std::string name;  // e.g. "decay", "no_decay", "rule0_decay"
    double base_lr;    // lr at schedule factor 1
    double weight_decay;
    std::vector<size_t> params;  // indices into params()
  };
  struct Param {
    std::string name;
    at::Tensor param;                // the model's tensor (updated in place)
    at::Tensor master;               // fp32 copy when param is low precision and fp32_master is on
    at::Tensor exp_avg, exp_avg_sq;  // undefined until the first step with a grad
    int64_t step = 0;
    at::Tensor step_t;  // `step` as a device scalar for the fused CUDA kernel (made on first use)
    size_t group = 0;
  };

  // Frozen parameters (requires_grad false) are left out. Throws ConfigError on a bad
  // lr rule regex or duplicate names.
  AdamW(const NamedParameters& named_params, AdamWConfig cfg);

  // Sets every group's lr to base_lr · factor (the schedule's multiplier, as LambdaLR does).
  void set_lr_factor(double factor);
  double lr_factor() const { return lr_factor_; }
  double group_lr(size_t g) const { return groups_[g].base_lr * lr_factor_; }

  // Updates every parameter with a defined grad (others keep their state, as torch does).
  // CUDA tensors take LibTorch's fused multi-tensor AdamW kernel when built with it
  // (compat::use_fused_adamw; same update, fp32 math); CPU and 1.13 the per-tensor path above.
  void step();
  void zero_grad(bool set_to_none = true);

  const std::vector<Group>& groups() const { return groups_; }
  const std::vector<Param>& params() const { return params_; }
  std::vector<at::Tensor> param_tensors() const;
  const AdamWConfig& config() const { return cfg_; }

  // Checkpoint state: "<param>.exp_avg", "<param>.exp_avg_sq", "<param>.master" (CPU copies)
  // plus JSON with hyper-parameters, groups (names of members) and per-parameter step counts.
  io::NamedTensors state_tensors() const;
  nlohmann::json state_json() const;
  // Restores a state saved by the above into an optimizer built over the same parameter
  // names. Throws Error naming the first missing/extra/mis-shaped entry. The lr factor is
  // restored; hyper-parameters that differ from the saved ones are logged (the current config
  // wins: a resumed run with changed hyper-parameters is no longer bitwise, by choice).
  void load_state(const io::NamedTensors& tensors, const nlohmann::json& state);

 private:
  AdamWConfig cfg_;
  std::vector<Group> groups_;
  std::vector<Param> params_;
  double lr_factor_ = 1.0;
};

}  // namespace robometer::train
