#include "robometer/model/vision.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <string>

#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"
#include "robometer/model/checkpointing.h"
#include "robometer/model/rotary.h"

namespace robometer::model {

namespace nn = torch::nn;

VisionPatchEmbedImpl::VisionPatchEmbedImpl(const VisionConfig& c) {
  proj = register_module("proj",
                         nn::Conv3d(nn::Conv3dOptions(c.in_channels, c.hidden_size,
                                                      {c.temporal_patch_size, c.patch_size, c.patch_size})
                                        .stride({c.temporal_patch_size, c.patch_size, c.patch_size})
                                        .bias(true)));
}

at::Tensor VisionPatchEmbedImpl::forward(const at::Tensor& patches) {
  // A Conv3d whose kernel equals its stride over one patch is a matmul with the flattened kernel.
  const auto& w = proj->weight;
  return at::linear(patches.to(w.scalar_type()).reshape({-1, w[0].numel()}), w.reshape({w.size(0), -1}),
                    proj->bias);
}

VisionAttentionImpl::VisionAttentionImpl(const VisionConfig& c)
    : heads_(c.num_heads), head_dim_(c.head_dim()) {
  qkv = register_module("qkv", nn::Linear(nn::LinearOptions(c.hidden_size, 3 * c.hidden_size).bias(true)));
  proj = register_module("proj", nn::Linear(nn::LinearOptions(c.hidden_size, c.hidden_size).bias(true)));
}

at::Tensor VisionAttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                        const std::vector<int64_t>& chunk_lengths) {
  const int64_t N = x.size(0);
  auto parts = tape_linear(x, qkv->weight, qkv->bias)
                   .reshape({N, 3, heads_, head_dim_})
                   .permute({1, 0, 2, 3})
                   .unbind(0);
  auto [q, k] = apply_vision_rotary(parts[0], parts[1], cos, sin);  // [N, heads, D]
  auto v = parts[2];
  q = q.transpose(0, 1).unsqueeze(0);  // [1, heads, N, D]
  k = k.transpose(0, 1).unsqueeze(0);
  v = v.transpose(0, 1).unsqueeze(0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  // Frames of one size (the usual batch): one batched SDPA call instead of one per image; with
  // 256 images x 24 blocks the per-call launch cost of the loop below is ~0.3 s a step on a GPU.
  const bool equal = !chunk_lengths.empty() && std::all_of(chunk_lengths.begin(), chunk_lengths.end(),
                                                           [&](int64_t n) { return n == chunk_lengths[0]; });
  if (equal && chunk_lengths[0] * static_cast<int64_t>(chunk_lengths.size()) == N) {
    const int64_t n = static_cast<int64_t>(chunk_lengths.size()), len = chunk_lengths[0];
    auto split = [&](const at::Tensor& t) {  // [1, heads, N, D] -> [n, heads, len, D]
      return t.squeeze(0).reshape({heads_, n, len, head_dim_}).transpose(0, 1);
    };
    auto o = tape_sdpa(split(q), split(k), split(v), {}, false, scale);  // [n, heads, len, D]
    return tape_linear(o.transpose(1, 2).reshape({N, heads_ * head_dim_}), proj->weight, proj->bias);
  }
  std::vector<at::Tensor> outs;
  outs.reserve(chunk_lengths.size());
  int64_t start = 0;
  for (int64_t len : chunk_lengths) {
    outs.push_back(tape_sdpa(q.narrow(2, start, len), k.narrow(2, start, len), v.narrow(2, start, len), {},
                             false, scale));
    start += len;
  }
  auto o = at::cat(outs, 2).squeeze(0).transpose(0, 1).reshape({N, -1});  // [N, heads*D]
  return tape_linear(o, proj->weight, proj->bias);
}

VisionMLPImpl::VisionMLPImpl(const VisionConfig& c) {
  linear_fc1 =
      register_module("linear_fc1", nn::Linear(nn::LinearOptions(c.hidden_size, c.intermediate_size)));
  linear_fc2 =
      register_module("linear_fc2", nn::Linear(nn::LinearOptions(c.intermediate_size, c.hidden_size)));
}

at::Tensor VisionMLPImpl::forward(const at::Tensor& x) {
  const auto &w1 = linear_fc1->weight, &b1 = linear_fc1->bias;
  if (use_fused_fc1_gelu(x)) {
    // fc1 + bias + GELU-tanh in one cuBLASLt call (its epilogue GELU is the tanh form, as HF's
    // gelu_pytorch_tanh); only without autograd (the frozen tower).
    return at::linear(at::_addmm_activation(b1, x, w1.t(), 1, 1, /*use_gelu=*/true), linear_fc2->weight,
                      linear_fc2->bias);
  }
  return tape_linear(at::gelu(tape_linear(x, w1, b1), "tanh"), linear_fc2->weight, linear_fc2->bias);
}

bool use_fused_fc1_gelu(const at::Tensor& x) {
  return x.is_cuda() && x.dim() == 2 && !c10::GradMode::is_enabled() && !tape_active() &&
         compat::fused_enabled();
}

VisionBlockImpl::VisionBlockImpl(const VisionConfig& c) {
  auto ln = nn::LayerNormOptions({c.hidden_size}).eps(1e-6);
  norm1 = register_module("norm1", nn::LayerNorm(ln));
  norm2 = register_module("norm2", nn::LayerNorm(ln));
  attn = register_module("attn", VisionAttention(c));
  mlp = register_module("mlp", VisionMLP(c));
}

at::Tensor VisionBlockImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                    const std::vector<int64_t>& chunk_lengths) {
  auto h = x + attn->forward(norm1->forward(x), cos, sin, chunk_lengths);
  return h + mlp->forward(norm2->forward(h));
}

VisionPatchMergerImpl::VisionPatchMergerImpl(const VisionConfig& c, bool use_postshuffle_norm)
    : postshuffle_(use_postshuffle_norm),
      merged_dim_(c.hidden_size * c.spatial_merge_size * c.spatial_merge_size) {
  norm = register_module(
      "norm", nn::LayerNorm(nn::LayerNormOptions({postshuffle_ ? merged_dim_ : c.hidden_size}).eps(1e-6)));
  linear_fc1 = register_module("linear_fc1", nn::Linear(merged_dim_, merged_dim_));
  linear_fc2 = register_module("linear_fc2", nn::Linear(merged_dim_, c.out_hidden_size));
}

at::Tensor VisionPatchMergerImpl::forward(const at::Tensor& x) {
  auto h = postshuffle_ ? norm->forward(x.reshape({-1, merged_dim_}))
                        : norm->forward(x).reshape({-1, merged_dim_});
  return linear_fc2->forward(at::gelu(linear_fc1->forward(h)));  // nn.GELU(): exact erf
}

VisionModelImpl::VisionModelImpl(const VisionConfig& c) : cfg_(c) {
  grid_tables_ = std::make_shared<GridTables>();
  patch_embed = register_module("patch_embed", VisionPatchEmbed(c));
  pos_embed = register_module("pos_embed", nn::Embedding(c.num_position_embeddings, c.hidden_size));
  blocks = register_module("blocks", nn::ModuleList());
  for (int64_t i = 0; i < c.depth; ++i) blocks->push_back(VisionBlock(c));
  merger = register_module("merger", VisionPatchMerger(c, /*use_postshuffle_norm=*/false));
  deepstack_merger_list = register_module("deepstack_merger_list", nn::ModuleList());
  for (size_t i = 0; i < c.deepstack_visual_indexes.size(); ++i)
    deepstack_merger_list->push_back(VisionPatchMerger(c, /*use_postshuffle_norm=*/true));
}

size_t VisionModelImpl::cached_pos_grids() const {
  std::lock_guard<std::mutex> lock(grid_tables_->mutex);
  return grid_tables_->pos.size();
}

size_t VisionModelImpl::cached_rotary_grids() const {
  std::lock_guard<std::mutex> lock(grid_tables_->mutex);
  return grid_tables_->rotary.size();
}

VisionModelImpl::PosSample VisionModelImpl::pos_sample(int64_t h, int64_t w) {
  const auto& table = pos_embed->weight;
  std::lock_guard<std::mutex> lock(grid_tables_->mutex);
  auto& cache = grid_tables_->pos;
  auto it = cache.find({h, w});
  if (it != cache.end() && it->second.idx.device() == table.device() &&
      it->second.wgt.scalar_type() == table.scalar_type())
    return it->second;
  if (cache.size() >= 64) cache.clear();  // a bounded cache: real runs see a handful of grids
  const int64_t side = static_cast<int64_t>(std::llround(std::sqrt(double(cfg_.num_position_embeddings))));
  // Sample the side x side table at h x w evenly spaced points (fp32 arithmetic as in HF).
  auto hi = at::linspace(0, side - 1, h, at::kFloat);
  auto wi = at::linspace(0, side - 1, w, at::kFloat);
  auto hf = hi.to(at::kInt);
  auto wf = wi.to(at::kInt);
  auto hc = (hf + 1).clamp_max(side - 1);
  auto wc = (wf + 1).clamp_max(side - 1);
  auto dh = hi - hf;
  auto dw = wi - wf;
  auto bh = hf * side;
  auto bhc = hc * side;
  auto idx = [&](const at::Tensor& rows, const at::Tensor& cols) {
    return (rows.unsqueeze(1) + cols.unsqueeze(0)).flatten().to(at::kLong);
  };
  auto wgt = [&](const at::Tensor& a, const at::Tensor& b) {
    return (a.unsqueeze(1) * b.unsqueeze(0)).flatten().to(table.scalar_type()).unsqueeze(1);
  };
  // Corners 00, 01, 10, 11, stacked: one host-to-device copy each for indices and weights.
  PosSample s;
  s.idx = at::stack({idx(bh, wf), idx(bh, wc), idx(bhc, wf), idx(bhc, wc)}).to(table.device());
  s.wgt = at::stack({wgt(1 - dh, 1 - dw), wgt(1 - dh, dw), wgt(dh, 1 - dw), wgt(dh, dw)}).to(table.device());
  cache[{h, w}] = s;
  return s;
}

at::Tensor VisionModelImpl::interpolated_pos_embed(const at::Tensor& grid_thw) {
  auto grid = grid_thw.to(at::kCPU, at::kLong).contiguous();
  const int64_t* g = grid.data_ptr<int64_t>();
  const int64_t m = cfg_.spatial_merge_size;
  const auto& table = pos_embed->weight;
  std::vector<at::Tensor> per_image;
  std::map<std::array<int64_t, 3>, at::Tensor> done;  // images of one grid share their rows
  for (int64_t i = 0; i < grid.size(0); ++i) {
    const int64_t t = g[3 * i], h = g[3 * i + 1], w = g[3 * i + 2];
    auto& pe = done[{t, h, w}];
    if (!pe.defined()) {
      const auto s = pos_sample(h, w);
      // The table is read on every call (it may train); only the sampling is cached.
      pe = table.index_select(0, s.idx[0]) * s.wgt[0];
      for (int64_t c = 1; c < 4; ++c)
        pe = pe + table.index_select(0, s.idx[c]) * s.wgt[c];  // [h*w, C] raster
      // Repeat per frame and reorder raster -> merge-block order (the processor's patch order).
      pe = pe.repeat({t, 1})
               .view({t, h / m, m, w / m, m, -1})
               .permute({0, 1, 3, 2, 4, 5})
               .reshape({t * h * w, -1});
    }
    per_image.push_back(pe);
  }
  return per_image.size() == 1 ? per_image[0] : at::cat(per_image, 0);
}

std::pair<at::Tensor, at::Tensor> VisionModelImpl::rotary_cos_sin(const at::Tensor& grid,
                                                                  const at::Device& device) {
  std::vector<int64_t> key(grid.data_ptr<int64_t>(), grid.data_ptr<int64_t>() + grid.numel());
  std::lock_guard<std::mutex> lock(grid_tables_->mutex);
  auto& cache = grid_tables_->rotary;
  auto it = cache.find(key);
  if (it != cache.end() && it->second.first.device() == device) return it->second;
  if (cache.size() >= 16) cache.clear();
  auto angles =
      vision_rotary_angles(grid, cfg_.head_dim(), cfg_.spatial_merge_size, cfg_.rope_theta).to(device);
  auto emb = at::cat({angles, angles}, -1);
  return cache[key] = {emb.cos(), emb.sin()};
}

VisionOutput VisionModelImpl::forward(const at::Tensor& pixel_values, const at::Tensor& grid_thw,
                                      const CheckpointPlan& checkpointing) {
  auto grid = core::on_host(grid_thw, "vision: image_grid_thw on the host").to(at::kLong).contiguous();
  int64_t total = 0;
  std::vector<int64_t> chunks;  // attention runs within each frame of each image
  for (int64_t i = 0; i < grid.size(0); ++i) {
    const int64_t t = grid[i][0].item<int64_t>(), h = grid[i][1].item<int64_t>(),
                  w = grid[i][2].item<int64_t>();
    if (t <= 0 || h <= 0 || w <= 0 || h % cfg_.spatial_merge_size || w % cfg_.spatial_merge_size)
      throw Error("vision: image_grid_thw row " + std::to_string(i) + " = (" + std::to_string(t) + ", " +
                  std::to_string(h) + ", " + std::to_string(w) +
                  ") is not a positive grid divisible by the merge size");
    for (int64_t f = 0; f < t; ++f) chunks.push_back(h * w);
    total += t * h * w;
  }
  if (pixel_values.dim() != 2 || pixel_values.size(0) != total || pixel_values.size(1) != cfg_.patch_dim())
    throw Error("vision: pixel_values has shape " + std::to_string(pixel_values.size(0)) + "x" +
                std::to_string(pixel_values.dim() > 1 ? pixel_values.size(1) : 0) + ", expected " +
                std::to_string(total) + "x" + std::to_string(cfg_.patch_dim()) + " from image_grid_thw");

  auto dtype = patch_embed->proj->weight.scalar_type();
  auto h = patch_embed->forward(pixel_values);
  h = (h + interpolated_pos_embed(grid)).to(dtype);

  // fp32 tables (HF rotates in fp32), built once per grid list on the model's device.
  auto [cos, sin] = rotary_cos_sin(grid, h.device());

  VisionOutput out;
  for (size_t i = 0; i < blocks->size(); ++i) {
    auto blk = blocks->ptr<VisionBlockImpl>(i);
    BlockFn fn = [blk, cos = cos, sin = sin, chunks](const at::Tensor& x) {
      return blk->forward(x, cos, sin, chunks);
    };
    if (checkpointing.full_at(static_cast<int64_t>(i))) {
      h = checkpoint(fn, h, blk->parameters());
    } else if (checkpointing.selective_at(static_cast<int64_t>(i))) {
      h = checkpoint_selective(fn, h, blk->parameters());
    } else {
      h = blk->forward(h, cos, sin, chunks);
    }
    const auto& taps = cfg_.deepstack_visual_indexes;
    for (size_t j = 0; j < taps.size(); ++j)
      if (taps[j] == static_cast<int64_t>(i))
        out.deepstack.push_back(deepstack_merger_list->ptr<VisionPatchMergerImpl>(j)->forward(h));
  }
  out.embeds = merger->forward(h);
  return out;
}

}  // namespace robometer::model
