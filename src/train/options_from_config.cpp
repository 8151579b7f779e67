#include "robometer/train/options_from_config.h"

#include <torch/nn/module.h>

#include "robometer/model/weights.h"

namespace robometer::train {

AdamWConfig adamw_config_from_config(const config::RunConfig& cfg, torch::nn::Module& model) {
  const auto& t = cfg.train;
  AdamWConfig oc;
  oc.lr = t.lr;
  oc.beta1 = t.beta1;
  oc.beta2 = t.beta2;
  oc.eps = t.eps;
  oc.weight_decay = t.weight_decay;
  if (t.head_lr > 0)
    oc.lr_rules.push_back({"^(progress_head|success_head|preference_head)\\.", t.head_lr, 1.0});
  if (t.vision_lr > 0) oc.lr_rules.push_back({"^model\\.visual\\.", t.vision_lr, 1.0});
  oc.no_decay_names = model::layer_norm_parameter_names(model);
  return oc;
}

ObjectiveConfig objective_config_from_config(const config::RunConfig& cfg) {
  const auto& t = cfg.train;
  ObjectiveConfig obj;
  obj.preference_weight = t.loss_weights.preference;
  obj.progress_weight = t.loss_weights.progress;
  obj.success_weight = t.loss_weights.success;
  obj.progress_scale = parse_progress_loss_scale(t.progress_loss_scale);
  obj.nan_rule = parse_nan_rule(t.nan_rule);
  return obj;
}

LrScheduleConfig lr_schedule_config_from_config(const config::RunConfig& cfg) {
  const auto& t = cfg.train;
  LrScheduleConfig sc;
  sc.kind = parse_lr_schedule_kind(t.schedule);
  sc.max_steps = t.max_steps;
  sc.warmup_ratio = t.warmup_ratio;
  sc.min_lr_ratio = t.lr > 0 ? t.min_lr / t.lr : 0.0;
  return sc;
}

bool bf16_autocast_from_config(const config::RunConfig& cfg, const at::Device& device) {
  const bool wanted =
      cfg.train.compute_dtype == "bfloat16" || (cfg.train.compute_dtype == "auto" && device.is_cuda());
  return wanted && cfg.model.dtype != "bfloat16";  // already bf16: nothing to cast
}

NamedParameters trainable_parameters(torch::nn::Module& model) {
  NamedParameters out;
  for (auto& np : model.named_parameters())
    if (np.value().requires_grad()) out.emplace_back(np.key(), np.value());
  return out;
}

}  // namespace robometer::train
