// Weights in and out of the reward model, through the ONE key-naming map of the project.
//
// Module paths are chosen so that they equal the Hugging Face / Robometer state-dict keys:
//   model.visual.*, model.language_model.*   (Qwen3VLForConditionalGeneration / Qwen3VLModel
//                                              inside Robometer's RBM)
//   progress_head.{0,1,4}.*, success_head.*, preference_head.*, frame_pool_attn.weight
// so checkpoint_key() is the identity for them. The map's other entries:
//   * `lm_head.weight` (HF ForConditionalGeneration) is ignored when embeddings are tied and is
//     otherwise reported as unexpected (Robometer reads hidden states, there is no LM head).
//   * LoRA adapters: module `<path>.lora_A.weight` <-> PEFT adapter file key
//     `base_model.model.<name>.lora_A.weight` (PEFT's adapter_model.safetensors, adapter name
//     stripped), where <name> is the parameter name in the module PEFT wrapped (PeftBase):
//     Qwen3VLModel (the original's setup_utils.py standard load path, PeftModel.from_pretrained
//     (model.model, ...)): `language_model.layers.0.self_attn.q_proj`, i.e. <path> without its
//     leading `model.`; Qwen3VLForConditionalGeneration (its Unsloth FastVisionModel path):
//     `model.language_model.layers.0...` = <path>. Both spellings load. In a merged export the
//     adapters are folded into `<path>.weight` and omitted.
//   * Files saved by PEFT's full state dict name the base weight `<path>.base_layer.weight`
//     and the adapters `<path>.lora_A.default.weight`; both spellings are accepted on load.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "robometer/io/safetensors.h"
#include "robometer/model/reward_model.h"

namespace torch::nn {
class Module;
}

namespace robometer::model {

// Module path -> checkpoint key, and back. from_checkpoint_key returns "" for keys that are
// deliberately ignored (lm_head.weight: the reward model has no LM head, tied or not).
std::string checkpoint_key(const std::string& module_path);
std::string from_checkpoint_key(const std::string& key);
// The module PEFT wraps, which decides the adapter key prefix (see above).
enum class PeftBase { Model, ForConditionalGeneration };
std::string peft_adapter_key(const std::string& module_path, PeftBase base = PeftBase::Model);

struct StateDictOptions {
  bool include_lora = true;              // lora_A/lora_B tensors (module-path names)
  bool trainable_only = false;           // e.g. a LoRA-only adapter checkpoint
  bool peft_names = false;               // name adapters as PEFT does (base_model.model.*)
  PeftBase peft_base = PeftBase::Model;  // with peft_names: the module PEFT wrapped
  at::ScalarType dtype = at::kFloat;     // stored dtype for floating tensors (kFloat/kBFloat16/kHalf)
  bool keep_dtype = true;                // true: store each tensor as it is in the model
};

// Named CPU tensors, keys through the map above.
io::NamedTensors state_dict(torch::nn::Module& model, const StateDictOptions& opts = {});

struct LoadOptions {
  bool strict = true;                // missing/unexpected keys or shape mismatches -> one Error
  bool allow_missing_heads = false;  // backbone-only checkpoints (HF Qwen3-VL): heads keep init
  bool resize_embeddings = false;    // a vocab of different size is resized to the model's (see below)
  std::string source;                // where the tensors came from (a file or directory), for errors
};

struct LoadReport {
  std::vector<std::string> loaded, missing, unexpected, ignored, shape_mismatch;
  int64_t resized_from = -1;  // original embedding rows when resized
};

// Copies tensors into the model's parameters (converting dtype; the model keeps its dtype
// and device). In strict mode any missing (except heads when allowed), unexpected or
// mis-shaped key throws one robometer::Error listing them all.
LoadReport load_weights(torch::nn::Module& model, const io::SafetensorsSet& weights,
                        const LoadOptions& opts = {});
LoadReport load_weights(torch::nn::Module& model, const io::NamedTensors& weights,
                        const LoadOptions& opts = {});

// HF resize_token_embeddings(new_rows) on a [rows, H] table: keeps the first min(rows, new)
// rows; added rows get the mean of the old rows (transformers >= 4.46 `mean_resizing=True`
// samples N(mean, 1e-9·cov), i.e. the mean up to ~1e-5; we use the mean exactly). For
// Robometer-4B the table shrinks 151,936 -> 151,674, so no row is initialised.
at::Tensor resize_embedding_rows(const at::Tensor& table, int64_t new_rows);

// Name of the first parameter or buffer holding NaN/Inf (module-path name), or "" when every
// floating tensor is finite: a model that diverged must not score silently as NaN.
std::string first_non_finite_tensor(torch::nn::Module& model);

// Parameter names of the model's LayerNorm modules (weight and bias), e.g. the heads'
// "progress_head.1.weight": HF Trainer exempts them from weight decay by module type
// (get_decay_parameter_names, ALL_LAYERNORM_LAYERS), whatever they are called.
std::vector<std::string> layer_norm_parameter_names(torch::nn::Module& model);

// requires_grad=false on every parameter whose path matches the ECMAScript regex (search);
// returns how many tensors were frozen. E.g. "^model\\.visual\\." freezes the vision tower.
int64_t freeze_matching(torch::nn::Module& model, const std::string& pattern);
int64_t unfreeze_matching(torch::nn::Module& model, const std::string& pattern);

}  // namespace robometer::model
