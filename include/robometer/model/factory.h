// Builds everything the model side of a run needs from the `model:` config section: the
// tokenizer (with Robometer's five tokens), the processor and the reward model, optionally
// initialised from HF Qwen3-VL or Robometer safetensors, with freezing and LoRA applied.
// train, eval, score, serve and export all go through here.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "robometer/config/run_config.h"
#include "robometer/model/processor.h"
#include "robometer/model/reward_model.h"
#include "robometer/model/tokenizer.h"

namespace robometer::model {

struct ModelBundle {
  std::shared_ptr<Tokenizer> tokenizer;
  std::shared_ptr<Processor> processor;
  RewardModelConfig config;
  RewardModel model{nullptr};
  std::string config_json_path;  // the backbone config.json actually used
  std::string config_json_text;  // its contents, read once when the model was built
  std::string tokenizer_path;
};

// `seed` fixes the random initialisation (same on every rank). Throws ConfigError/Error with
// the file at fault. Weights come from cfg.pretrained (a robometer checkpoint / export dir or an
// HF Qwen3-VL dir); `weights_dir` (when non-empty) overrides it, e.g. a checkpoint to evaluate.
ModelBundle build_model(const config::ModelConfig& cfg, at::Device device, uint64_t seed,
                        const std::string& weights_dir = "");

// Accepts a checkpoint/export dir, a run dir (its checkpoints/latest is followed) or the
// `latest` pointer file itself; returns the directory holding the weights. Throws Error.
std::string resolve_checkpoint_dir(const std::string& path);

// Reads the `model:` section a checkpoint/export directory was trained with (its config.yaml),
// so that eval/score/export need only --checkpoint DIR. Throws Error when absent.
config::RunConfig run_config_of(const std::string& checkpoint_dir);

}  // namespace robometer::model
