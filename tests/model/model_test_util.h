// Tiny Qwen3-VL inputs for the model tests: prompts with images laid out as the Processor does
// (<|vision_start|> image-pad x N <|vision_end|>), random pixels, progress/preference positions.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "robometer/model/model_inputs.h"
#include "robometer/model/qwen3vl_config.h"
#include "robometer/model/reward_model.h"

namespace robometer::test {

struct ImageSpec {
  int64_t h = 4, w = 6;  // grid in patches (multiples of the merge size 2)
};

// One sample: `text_before` text tokens, then for each image: vision_start, pads, vision_end,
// one "prog" token (id 7); then `text_after` tokens and a "pref" token (id 9).
struct SampleTokens {
  std::vector<int64_t> ids;
  std::vector<int64_t> prog;
  int64_t pref = -1;
};

inline SampleTokens make_sample_tokens(const model::Qwen3VLConfig& c, const std::vector<ImageSpec>& imgs,
                                       int64_t text_before, int64_t text_after, int64_t seed) {
  SampleTokens s;
  auto text = [&](int64_t k) { return 10 + (seed * 31 + k * 7) % 100; };
  for (int64_t i = 0; i < text_before; ++i) s.ids.push_back(text(i));
  for (const auto& im : imgs) {
    s.ids.push_back(c.vision_start_token_id);
    const int64_t n = (im.h / 2) * (im.w / 2);
    for (int64_t i = 0; i < n; ++i) s.ids.push_back(c.image_token_id);
    s.ids.push_back(c.vision_end_token_id);
    s.prog.push_back(static_cast<int64_t>(s.ids.size()));
    s.ids.push_back(7);
  }
  for (int64_t i = 0; i < text_after; ++i) s.ids.push_back(text(100 + i));
  s.pref = static_cast<int64_t>(s.ids.size());
  s.ids.push_back(9);
  return s;
}

// Batches samples with right padding (pad id 0) and draws pixels for every image in order.
inline model::ModelInputs make_inputs(const model::Qwen3VLConfig& c,
                                      const std::vector<std::vector<ImageSpec>>& images_per_sample,
                                      const std::vector<SampleTokens>& samples,
                                      const std::vector<at::Tensor>& pixels_per_image = {}) {
  model::ModelInputs in;
  const int64_t B = static_cast<int64_t>(samples.size());
  int64_t L = 0, T = 0;
  for (const auto& s : samples) {
    L = std::max<int64_t>(L, s.ids.size());
    T = std::max<int64_t>(T, s.prog.size());
  }
  in.input_ids = at::zeros({B, L}, at::kLong);
  in.attention_mask = at::zeros({B, L}, at::kLong);
  in.prog_positions = at::full({B, T}, -1, at::kLong);
  in.pref_positions = at::full({B}, -1, at::kLong);
  for (int64_t b = 0; b < B; ++b) {
    const auto& s = samples[b];
    for (size_t j = 0; j < s.ids.size(); ++j) {
      in.input_ids[b][j] = s.ids[j];
      in.attention_mask[b][j] = 1;
    }
    for (size_t t = 0; t < s.prog.size(); ++t) in.prog_positions[b][t] = s.prog[t];
    in.pref_positions[b] = s.pref;
  }
  std::vector<at::Tensor> pix;
  std::vector<int64_t> grid;
  size_t k = 0;
  for (const auto& imgs : images_per_sample)
    for (const auto& im : imgs) {
      at::Tensor p =
          k < pixels_per_image.size() ? pixels_per_image[k] : at::randn({im.h * im.w, c.vision.patch_dim()});
      ++k;
      pix.push_back(p);
      grid.insert(grid.end(), {1, im.h, im.w});
    }
  if (!pix.empty()) {
    in.pixel_values = at::cat(pix, 0);
    in.image_grid_thw = at::tensor(grid, at::kLong).view({-1, 3});
  }
  return in;
}

inline double max_rel_err(const at::Tensor& a, const at::Tensor& b) {
  auto x = a.to(at::kDouble), y = b.to(at::kDouble);
  return ((x - y).abs().max() / (y.abs().max() + 1e-12)).item<double>();
}

}  // namespace robometer::test
