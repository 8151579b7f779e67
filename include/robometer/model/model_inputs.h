// The tensors the reward model consumes, produced only by model::Processor (tokens + pixels).
#pragma once
#include <ATen/ATen.h>

#include <vector>

namespace robometer::model {

struct ModelInputs {
  at::Tensor input_ids;       // int64 [B, L], right-padded with the pad id
  at::Tensor attention_mask;  // int64 [B, L], 1 = real token
  at::Tensor pixel_values;    // float [N_patches, 3*2*16*16] in HF's flattening order
  at::Tensor image_grid_thw;  // int64 [N_images, 3] (t, h, w) in patches, images in prompt order
  // Filled by Processor for the heads' gathering (spec §1.4):
  at::Tensor prog_positions;  // int64 [B, T] index of each <|prog_token|>, -1 = none
  at::Tensor pref_positions;  // int64 [B] index of <|pref_token|>, -1 = none
  // Packed (model::pack_inputs): the B sequences laid end to end in one row. input_ids is then
  // [1, sum of seq_lens], attention_mask undefined, and the positions above index that row.
  at::Tensor seq_lens;  // int64 [B] on the host; undefined = padded
};

// Padded host inputs -> packed: no padding token is computed, each sequence attends only to
// itself, and its M-RoPE positions restart as in the padded batch (the same outputs per sequence).
ModelInputs pack_inputs(const ModelInputs& padded);
// seq_lens as a vector (empty when the inputs are padded).
std::vector<int64_t> packed_lengths(const ModelInputs& in);

// Outputs of the three heads at the gathered positions.
struct RewardOutputs {
  at::Tensor progress_logits;   // [B, T, 10]
  at::Tensor progress;          // [B, T] expected progress Σ softmax(z)_k · k/9
  at::Tensor success_logits;    // [B, T]
  at::Tensor preference_logit;  // [B] (undefined when the prompt has no <|pref_token|>)
  at::Tensor prog_valid;        // bool [B, T] where prog_positions >= 0
};

}  // namespace robometer::model
