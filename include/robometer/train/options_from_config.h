// The training components' options from a run config, built here and nowhere else (the trainer
// and `robometer bench model-step` / `bench step` call these, so a benchmark measures the
// optimizer and objective that training uses).
#pragma once
#include <ATen/ATen.h>

#include "robometer/config/run_config.h"
#include "robometer/train/lr_schedule.h"
#include "robometer/train/objective.h"
#include "robometer/train/optimizer.h"

namespace torch::nn {
class Module;
}

namespace robometer::train {

// train.lr/betas/eps/weight_decay, head_lr and vision_lr as lr rules, and the model's LayerNorm
// parameters exempt from decay (as HF Trainer groups them).
AdamWConfig adamw_config_from_config(const config::RunConfig& cfg, torch::nn::Module& model);

// train.loss_weights, progress_loss_scale, nan_rule.
ObjectiveConfig objective_config_from_config(const config::RunConfig& cfg);

// train.schedule, max_steps, warmup_ratio, min_lr (as a ratio of lr).
LrScheduleConfig lr_schedule_config_from_config(const config::RunConfig& cfg);

// train.compute_dtype: bf16 autocast when asked ("bfloat16", or "auto" on CUDA), unless the model
// is already stored in bf16.
bool bf16_autocast_from_config(const config::RunConfig& cfg, const at::Device& device);

// The parameters that require grad, with their module-path names.
NamedParameters trainable_parameters(torch::nn::Module& model);

}  // namespace robometer::train
