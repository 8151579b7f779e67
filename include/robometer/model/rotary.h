// Rotary position embeddings of Qwen3-VL: the 2-D rotary of the vision tower, the text
// decoder's interleaved multimodal RoPE (M-RoPE), and the 3-D position ids that HF's
// `Qwen3VLModel.get_rope_index` assigns to text and image tokens.
#pragma once
#include <ATen/ATen.h>

#include <utility>

#include "robometer/model/qwen3vl_config.h"

namespace robometer::model {

// Vision: per patch (in the processor's merge-block order, frames repeated) the rotary angles
// of its (row, col) position: [N_patches, head_dim/2]; cos/sin use cat(angles, angles).
at::Tensor vision_rotary_angles(const at::Tensor& grid_thw, int64_t head_dim, int64_t merge_size,
                                double theta = 10000.0);

// Rotates q, k [N, heads, head_dim] with cos, sin [N, head_dim] in fp32 (as HF does), returning
// tensors in the inputs' dtype.
std::pair<at::Tensor, at::Tensor> apply_vision_rotary(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& cos, const at::Tensor& sin);

// Text: cos, sin [B, L, head_dim] in `dtype` for 3-D position ids [3, B, L] (t, h, w), with the
// frequency slots interleaved T H W T H W ... as in HF `apply_interleaved_mrope`.
std::pair<at::Tensor, at::Tensor> text_mrope_cos_sin(const at::Tensor& position_ids, const TextConfig& cfg,
                                                     at::ScalarType dtype);

// q, k [B, H, L, D]; cos, sin [B, L, D].
std::pair<at::Tensor, at::Tensor> apply_text_rotary(const at::Tensor& q, const at::Tensor& k,
                                                    const at::Tensor& cos, const at::Tensor& sin);

// HF get_rope_index for image inputs: input_ids, attention_mask [B, L] (right or left padded),
// image_grid_thw [N_images, 3] in prompt order across the batch. Text tokens count up from
// max(previous position)+1; an image's tokens get (t, row, col) offsets from the position
// where it starts. Padded positions get 1 (as HF). Returns int64 [3, B, L] on CPU.
// Throws Error when image tokens and grids disagree or a video token is present.
at::Tensor mrope_position_ids(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                              const at::Tensor& image_grid_thw, const Qwen3VLConfig& cfg);

}  // namespace robometer::model
