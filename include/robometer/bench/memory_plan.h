// The per-GPU memory plan of a training recipe for each dist.shard mode and world size
// (`robometer bench memory`): arithmetic on a parameter census of the real model definition and
// on the recipe's batch, no GPU needed. What each figure counts is in README "Distributed
// training" and in plan_memory() below.
#pragma once
#include <cstdint>
#include <string>

#include "robometer/config/run_config.h"
#include "robometer/model/checkpointing.h"

namespace robometer::bench {

struct ParamCensus {
  int64_t total = 0, trainable = 0;
  int64_t largest_trainable = 0;                                  // elements of the largest trainable tensor
  int64_t text_layers = 0, layer_total = 0, layer_trainable = 0;  // per decoder layer
  int64_t vision_blocks = 0, block_total = 0, block_trainable = 0;
  // Text decoder widths (activation estimate).
  int64_t hidden = 0, intermediate = 0, q_dim = 0, kv_dim = 0;
  int64_t pair_tokens = 0;  // sequence length of one pair (PairShape), from the real processor
};

// The pair the activation estimate is for: 2 trajectories of `frames` frames of height × width.
struct PairShape {
  int64_t frames = 8, height = 240, width = 320;
  std::string task = "pick up the red block and place it in the bowl";
};

// Builds the model with model::build_model (freezing and LoRA applied as in training) from a
// probe of the config with one decoder layer and one vision block, then adds the other layers
// and blocks by their counts (they are identical modules). Exact unless a model.freeze prefix
// singles out individual layers (then a warning is logged).
// The pair's token count comes from the model's own Processor on blank frames of that size.
ParamCensus parameter_census(const config::ModelConfig& model, const PairShape& pair = {});

struct PlanInputs {
  int world = 1;
  std::string shard = "none";  // none | optimizer | gradients | parameters
  int weight_bytes = 2;        // model.dtype: bfloat16 2, float32 4
  bool fp32_master = true;     // AdamW's fp32 master copy of non-fp32 weights (1 process, DDP)
  double bucket_mb = 25;
  int64_t batch = 16;             // pairs per GPU per micro-step
  int64_t tokens_per_sample = 0;  // sequence length of one pair
  // model.activation_checkpointing of the run (the 4B recipe: full).
  model::CheckpointPlan checkpointing{model::CheckpointPlan::Mode::Full, 0};
  int activation_bytes = 2;  // bf16 compute
};

// Bytes per GPU at the peak of a step.
struct MemoryPlan {
  double weights = 0, grads = 0, master = 0, moments = 0, buffers = 0, activations = 0;
  double total() const { return weights + grads + master + moments + buffers + activations; }
};

MemoryPlan plan_memory(const ParamCensus& census, const PlanInputs& in);

}  // namespace robometer::bench
