// `robometer export`: a checkpoint as a directory that Robometer's Python package
// (load_model_from_hf / setup_utils) and LeRobot's Robometer port can load, and that this
// project loads back (model.pretrained=DIR, or --checkpoint DIR for eval/score/serve).
//
// Layout of DIR:
//   model.safetensors | model-0000i-of-0000N.safetensors + model.safetensors.index.json
//                              Robometer/HF key names (model.visual.*, model.language_model.*,
//                              progress_head.*, success_head.*, preference_head.*,
//                              frame_pool_attn.weight); LoRA adapters are folded in with
//                              --merge-lora, otherwise left out (base weights only).
//   config.json                the backbone config (Qwen3-VL)
//   config.yaml                Robometer's ExperimentConfig subset its loaders read (model.*,
//                              data.*, loss.*, training.predict_pref_progress, peft.*)
//   robometer_run.yaml         this project's resolved run config (used to load it back)
//   tokenizer.json             with Robometer's 5 added tokens in added_tokens
//   tokenizer_config.json, special_tokens_map.json
//   LoRA runs without --merge-lora, as robometer/utils/save.py writes them:
//   adapter_model.safetensors  base_model.model.<name>.lora_{A,B}.weight, <name> as the module
//                              chosen by --peft-base names it (model/weights.h): "model"
//                              (default) = Qwen3VLModel, what the original's default load path
//                              wraps (config.yaml use_unsloth: false -> setup_utils.py
//                              _load_base_model_standard, PeftModel.from_pretrained(model.model));
//                              "for-conditional-generation" = Qwen3VLForConditionalGeneration
//                              (its Unsloth path; config.yaml then says use_unsloth: true)
//   adapter_config.json        PEFT LoraConfig (peft_type LORA, r, lora_alpha, ...)
//   custom_heads.safetensors   the heads and frame_pool_attn (trained alongside the adapters)
// (No peft_target_module.json: the original's save.py does not write one and nothing reads it.)
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "robometer/config/run_config.h"

namespace robometer::eval {

struct ExportOptions {
  bool merge_lora = false;
  std::string dtype = "fp32";                               // fp32 | bf16 (floating tensors)
  int64_t shard_bytes = 5'000'000'000;                      // <= 0: one file
  std::string base_model_id = "Qwen/Qwen3-VL-4B-Instruct";  // recorded in config.yaml / adapter_config.json
  bool force = false;               // replace a non-empty --out (never the checkpoint being exported)
  std::string peft_base = "model";  // model | for-conditional-generation (adapter key prefix)
};

// "5GB", "500MB", "10KB", "123" (bytes; decimal units as huggingface_hub). ConfigError.
int64_t parse_size(const std::string& s);

// Robometer's ExperimentConfig (the fields its loaders read) for one of our run configs.
nlohmann::json robometer_experiment_config(const config::RunConfig& cfg, const ExportOptions& opts);

// Exports checkpoint/export `checkpoint_dir` into `out_dir` (created). Returns a summary JSON
// {files, tensors, bytes, lora, merged}. Throws Error/ConfigError.
nlohmann::json export_model(const std::string& checkpoint_dir, const std::string& out_dir,
                            const ExportOptions& opts);

}  // namespace robometer::eval
