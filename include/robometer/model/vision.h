// Qwen3-VL vision tower (HF Qwen3VLVisionModel): Conv3d patch embedding (as a matmul on the
// processor's flattened [3, 2, 16, 16] patches), a learned 2-D position table bilinearly
// interpolated to each image grid, 2-D rotary attention within each frame, LayerNorm blocks
// with GELU-tanh MLPs, DeepStack mergers at chosen blocks and the final 2x2 patch merger.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "robometer/model/checkpointing.h"
#include "robometer/model/qwen3vl_config.h"

namespace robometer::model {

class VisionPatchEmbedImpl : public torch::nn::Module {
 public:
  explicit VisionPatchEmbedImpl(const VisionConfig& cfg);
  at::Tensor forward(const at::Tensor& patches);  // [N, C*T*P*P] -> [N, hidden]
  torch::nn::Conv3d proj{nullptr};
};
TORCH_MODULE(VisionPatchEmbed);

class VisionAttentionImpl : public torch::nn::Module {
 public:
  explicit VisionAttentionImpl(const VisionConfig& cfg);
  // Attention only within each chunk of `chunk_lengths` consecutive patches (one frame).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const std::vector<int64_t>& chunk_lengths);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};

 private:
  int64_t heads_, head_dim_;
};
TORCH_MODULE(VisionAttention);

class VisionMLPImpl : public torch::nn::Module {
 public:
  explicit VisionMLPImpl(const VisionConfig& cfg);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear linear_fc1{nullptr}, linear_fc2{nullptr};
};
TORCH_MODULE(VisionMLP);

// Whether VisionMLP runs fc1 + GELU as one fused matmul epilogue: CUDA, 2-D input, no autograd
// (and not inside a selective checkpoint, whose replay has autograd).
bool use_fused_fc1_gelu(const at::Tensor& x);

class VisionBlockImpl : public torch::nn::Module {
 public:
  explicit VisionBlockImpl(const VisionConfig& cfg);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const std::vector<int64_t>& chunk_lengths);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  VisionAttention attn{nullptr};
  VisionMLP mlp{nullptr};
};
TORCH_MODULE(VisionBlock);

// Groups each 2x2 block of patches into one token: LayerNorm (before the grouping, or after it
// for DeepStack mergers: use_postshuffle_norm), Linear, exact GELU, Linear to the text width.
class VisionPatchMergerImpl : public torch::nn::Module {
 public:
  VisionPatchMergerImpl(const VisionConfig& cfg, bool use_postshuffle_norm);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear linear_fc1{nullptr}, linear_fc2{nullptr};

 private:
  bool postshuffle_;
  int64_t merged_dim_;
};
TORCH_MODULE(VisionPatchMerger);

struct VisionOutput {
  at::Tensor embeds;                  // [N_patches / 4, out_hidden]
  std::vector<at::Tensor> deepstack;  // one [N_patches / 4, out_hidden] per DeepStack tap
};

class VisionModelImpl : public torch::nn::Module {
 public:
  explicit VisionModelImpl(const VisionConfig& cfg);
  // pixel_values [N_patches, C*T*P*P] (in the model dtype); grid_thw int64 [N_images, 3].
  // checkpointing: which blocks run under activation checkpointing (full or selective).
  VisionOutput forward(const at::Tensor& pixel_values, const at::Tensor& grid_thw,
                       const CheckpointPlan& checkpointing = {});
  // HF fast_pos_embed_interpolate: [N_patches, hidden] in merge-block order.
  at::Tensor interpolated_pos_embed(const at::Tensor& grid_thw);

  VisionPatchEmbed patch_embed{nullptr};
  torch::nn::Embedding pos_embed{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  VisionPatchMerger merger{nullptr};
  torch::nn::ModuleList deepstack_merger_list{nullptr};
  const VisionConfig& config() const { return cfg_; }
  // Position-embedding samplings and rotary tables built so far (one per grid; tests).
  size_t cached_pos_grids() const;
  size_t cached_rotary_grids() const;

 private:
  // Where each (h, w) grid samples the learned table: 4 bilinear corners of row indices and
  // weights, on the table's device. The table itself is read on every call.
  struct PosSample {
    at::Tensor idx;  // int64 [4, h*w]
    at::Tensor wgt;  // [4, h*w, 1] in the table's dtype
  };
  struct GridTables {
    std::map<std::pair<int64_t, int64_t>, PosSample> pos;
    std::map<std::vector<int64_t>, std::pair<at::Tensor, at::Tensor>> rotary;  // grid rows -> cos, sin
    std::mutex mutex;  // a model may serve several threads
  };
  PosSample pos_sample(int64_t h, int64_t w);
  std::pair<at::Tensor, at::Tensor> rotary_cos_sin(const at::Tensor& grid_cpu, const at::Device& device);

  VisionConfig cfg_;
  std::shared_ptr<GridTables> grid_tables_;  // shared_ptr: Module clones copy a pointer, not tensors
};
TORCH_MODULE(VisionModel);

}  // namespace robometer::model
