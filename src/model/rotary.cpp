#include "robometer/model/rotary.h"

#include <algorithm>
#include <string>
#include <vector>

#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"

namespace robometer::model {

using at::indexing::Slice;

namespace {

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half);
  auto x2 = x.narrow(-1, half, half);
  return at::cat({-x2, x1}, -1);
}

}  // namespace

at::Tensor vision_rotary_angles(const at::Tensor& grid_thw, int64_t head_dim, int64_t merge_size,
                                double theta) {
  auto grid = grid_thw.to(at::kCPU, at::kLong).contiguous();
  const int64_t n_img = grid.size(0);
  const int64_t* g = grid.data_ptr<int64_t>();
  int64_t max_hw = 0;
  int64_t total = 0;
  for (int64_t i = 0; i < n_img; ++i) {
    max_hw = std::max({max_hw, g[3 * i + 1], g[3 * i + 2]});
    total += g[3 * i] * g[3 * i + 1] * g[3 * i + 2];
  }
  // Frequencies of a 1-D rotary of dim head_dim/2 (HF Qwen3VLVisionRotaryEmbedding).
  const int64_t dim = head_dim / 2;
  auto inv_freq = 1.0 / at::pow(theta, at::arange(0, dim, 2, at::kFloat) / static_cast<double>(dim));
  auto table = at::outer(at::arange(max_hw, at::kFloat), inv_freq);  // [max_hw, dim/2]

  auto rows = at::empty({total}, at::kLong);
  auto cols = at::empty({total}, at::kLong);
  int64_t* r = rows.data_ptr<int64_t>();
  int64_t* c = cols.data_ptr<int64_t>();
  int64_t o = 0;
  for (int64_t i = 0; i < n_img; ++i) {
    const int64_t t = g[3 * i], h = g[3 * i + 1], w = g[3 * i + 2];
    // Patches come grouped by 2x2 merge blocks: block row, block col, row in block, col in block.
    for (int64_t f = 0; f < t; ++f)
      for (int64_t br = 0; br < h / merge_size; ++br)
        for (int64_t bc = 0; bc < w / merge_size; ++bc)
          for (int64_t ir = 0; ir < merge_size; ++ir)
            for (int64_t ic = 0; ic < merge_size; ++ic) {
              r[o] = br * merge_size + ir;
              c[o] = bc * merge_size + ic;
              ++o;
            }
  }
  return at::cat({table.index_select(0, rows), table.index_select(0, cols)}, 1);  // [N, dim]
}

std::pair<at::Tensor, at::Tensor> apply_vision_rotary(const at::Tensor& q, const at::Tensor& k,
                                                      const at::Tensor& cos, const at::Tensor& sin) {
  auto c = cos.unsqueeze(-2).to(at::kFloat);
  auto s = sin.unsqueeze(-2).to(at::kFloat);
  auto qf = q.to(at::kFloat);
  auto kf = k.to(at::kFloat);
  auto qe = qf * c + rotate_half(qf) * s;
  auto ke = kf * c + rotate_half(kf) * s;
  return {qe.to(q.scalar_type()), ke.to(k.scalar_type())};
}

std::pair<at::Tensor, at::Tensor> text_mrope_cos_sin(const at::Tensor& position_ids, const TextConfig& cfg,
                                                     at::ScalarType dtype) {
  const int64_t dim = cfg.head_dim;
  auto exps = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  auto inv_freq = (1.0 / at::pow(cfg.rope_theta, exps)).to(position_ids.device());  // [D/2]
  auto pos = position_ids.to(at::kFloat);                                           // [3, B, L]
  auto freqs = pos.unsqueeze(-1) * inv_freq;                                        // [3, B, L, D/2]
  // Interleave: slot j carries T unless j%3==1 (H, j < 3*sec[1]) or j%3==2 (W, j < 3*sec[2]).
  auto f = freqs[0].clone();
  for (int64_t d = 1; d <= 2; ++d) {
    const int64_t len = cfg.mrope_section[d] * 3;
    f.index_put_({"...", Slice(d, len, 3)}, freqs[d].index({"...", Slice(d, len, 3)}));
  }
  auto emb = at::cat({f, f}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

std::pair<at::Tensor, at::Tensor> apply_text_rotary(const at::Tensor& q, const at::Tensor& k,
                                                    const at::Tensor& cos, const at::Tensor& sin) {
  auto c = cos.unsqueeze(1);
  auto s = sin.unsqueeze(1);
  return {q * c + rotate_half(q) * s, k * c + rotate_half(k) * s};
}

at::Tensor mrope_position_ids(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                              const at::Tensor& image_grid_thw, const Qwen3VLConfig& cfg) {
  auto ids = core::on_host(input_ids, "mrope: input_ids on the host").to(at::kLong).contiguous();
  const int64_t B = ids.size(0), L = ids.size(1);
  auto mask =
      attention_mask.defined()
          ? core::on_host(attention_mask, "mrope: attention_mask on the host").to(at::kLong).contiguous()
          : at::ones({B, L}, at::kLong);
  auto pos = at::ones({3, B, L}, at::kLong);
  auto P = pos.accessor<int64_t, 3>();
  auto I = ids.accessor<int64_t, 2>();
  auto M = mask.accessor<int64_t, 2>();
  at::Tensor grid;
  int64_t n_grids = 0;
  if (image_grid_thw.defined() && image_grid_thw.numel() > 0) {
    grid = core::on_host(image_grid_thw, "mrope: image_grid_thw on the host").to(at::kLong).contiguous();
    n_grids = grid.size(0);
  }
  const int64_t merge = cfg.vision.spatial_merge_size;
  int64_t image_index = 0;

  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> tok, where;  // real tokens and their columns
    for (int64_t j = 0; j < L; ++j)
      if (M[b][j] == 1) {
        tok.push_back(I[b][j]);
        where.push_back(j);
      }
    const int64_t n = static_cast<int64_t>(tok.size());
    int64_t image_nums = 0;
    for (int64_t j = 0; j + 1 < n; ++j) {
      if (tok[j] != cfg.vision_start_token_id) continue;
      if (tok[j + 1] == cfg.image_token_id) ++image_nums;
      if (tok[j + 1] == cfg.video_token_id)
        throw Error("mrope_position_ids: sample " + std::to_string(b) +
                    " contains a video; only image inputs are supported");
    }
    std::vector<int64_t> out[3];
    int64_t last_max = -1;  // max of the previous segment (HF: llm_pos_ids_list[-1].max())
    int64_t st = 0;
    for (int64_t k = 0; k < image_nums; ++k) {
      auto it = std::find(tok.begin() + st, tok.end(), cfg.image_token_id);
      if (it == tok.end())
        throw Error("mrope_position_ids: sample " + std::to_string(b) + ": image " + std::to_string(k) +
                    " has a <|vision_start|> but no image tokens");
      if (image_index >= n_grids)
        throw Error("mrope_position_ids: more images in input_ids than rows in image_grid_thw (" +
                    std::to_string(n_grids) + ")");
      const int64_t ed = it - tok.begin();
      auto G = grid.accessor<int64_t, 2>();
      const int64_t gt = G[image_index][0], gh = G[image_index][1] / merge, gw = G[image_index][2] / merge;
      ++image_index;
      const int64_t span = gt * gh * gw;
      // The grid must cover exactly this run of image tokens (HF would fail later, on features).
      const bool fits = ed + span <= n &&
                        std::all_of(tok.begin() + ed, tok.begin() + ed + span,
                                    [&](int64_t x) { return x == cfg.image_token_id; }) &&
                        (ed + span == n || tok[ed + span] != cfg.image_token_id);
      if (!fits)
        throw Error("mrope_position_ids: sample " + std::to_string(b) + ": image " + std::to_string(k) +
                    " (image_grid_thw row " + std::to_string(image_index - 1) + ") expects " +
                    std::to_string(span) + " image tokens, the prompt has a different run");
      const int64_t text_len = ed - st;
      const int64_t st_idx = last_max + 1;
      for (int64_t j = 0; j < text_len; ++j)
        for (int d = 0; d < 3; ++d) out[d].push_back(st_idx + j);
      int64_t seg_max = text_len > 0 ? st_idx + text_len - 1 : -1;
      for (int64_t ti = 0; ti < gt; ++ti)
        for (int64_t hi = 0; hi < gh; ++hi)
          for (int64_t wi = 0; wi < gw; ++wi) {
            out[0].push_back(ti + text_len + st_idx);
            out[1].push_back(hi + text_len + st_idx);
            out[2].push_back(wi + text_len + st_idx);
          }
      // The image segment's own max decides the next start (HF appends it as its own entry).
      seg_max = text_len + st_idx + std::max({gt - 1, gh - 1, gw - 1});
      last_max = seg_max;
      st = ed + gt * gh * gw;
    }
    if (st < n) {
      const int64_t st_idx = last_max + 1;
      for (int64_t j = 0; j < n - st; ++j)
        for (int d = 0; d < 3; ++d) out[d].push_back(st_idx + j);
    }
    if (static_cast<int64_t>(out[0].size()) != n)
      throw Error("mrope_position_ids: sample " + std::to_string(b) + ": image tokens (" + std::to_string(n) +
                  " real tokens) do not match image_grid_thw");
    for (int64_t j = 0; j < n; ++j)
      for (int d = 0; d < 3; ++d) P[d][b][where[j]] = out[d][j];
  }
  if (image_index != n_grids)
    throw Error("mrope_position_ids: image_grid_thw has " + std::to_string(n_grids) +
                " rows but input_ids hold " + std::to_string(image_index) + " images");
  return pos;
}

}  // namespace robometer::model
