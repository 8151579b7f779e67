// Qwen3-VL processor as Robometer drives it: each frame goes through qwen_vl_utils.fetch_image
// (smart_resize to multiples of 32, PIL bicubic), then HF's Qwen2-VL image processor with
// do_resize=False (rescale + normalise, temporal duplication, patch flattening), and the prompt
// is rendered with the chat template, image pads expanded and tokenized (right padding).
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "robometer/model/model_inputs.h"
#include "robometer/model/tokenizer.h"

namespace robometer::model {

struct ProcessorOptions {
  int64_t patch_size = 16;          // Qwen3-VL vision patch
  int64_t merge_size = 2;           // 2x2 patches -> one LLM token
  int64_t temporal_patch_size = 2;  // a still image is duplicated to 2 frames
  // qwen_vl_utils defaults: IMAGE_MIN/MAX_TOKEN_NUM (4 / 16384) x (patch_size*merge_size)^2.
  int64_t min_pixels = 4LL * 32 * 32;
  int64_t max_pixels = 16384LL * 32 * 32;
  std::array<float, 3> image_mean{0.5f, 0.5f, 0.5f};
  std::array<float, 3> image_std{0.5f, 0.5f, 0.5f};
  bool predict_pref_progress = true;        // Robometer-4B trains with prog_pref on
  std::string pad_token = "<|endoftext|>";  // Qwen3-VL's pad_token (robometer keeps it)
};

struct ProgressQuery {
  std::string task;
  at::Tensor frames;  // uint8 [K, H, W, 3] (data::Clip::frames)
};

struct PairQuery {
  std::string task;     // instruction of the chosen trajectory
  at::Tensor frames_a;  // uint8 [K, H, W, 3], first in the prompt
  at::Tensor frames_b;
};

// qwen_vl_utils.smart_resize: (height, width) rounded to multiples of `factor` (Python's
// round-half-even), scaled into [min_pixels, max_pixels] keeping the aspect ratio.
std::pair<int64_t, int64_t> smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels,
                                         int64_t max_pixels);

// PIL Image.resize(..., BICUBIC) bit for bit: uint8 [H, W, 3] -> uint8 [out_h, out_w, 3].
at::Tensor resize_bicubic_pil(const at::Tensor& image, int64_t out_h, int64_t out_w);

struct ImagePatches {
  at::Tensor pixel_values;          // float [t*h*w, 3*T*P*P]
  std::array<int64_t, 3> grid_thw;  // in patches
};

// HF Qwen2VLImageProcessor(Fast) with do_resize=False on an already resized uint8 [H, W, 3].
ImagePatches patchify(const at::Tensor& resized, const ProcessorOptions& opts);
// fetch_image resize + patchify for one frame.
ImagePatches preprocess_image(const at::Tensor& image, const ProcessorOptions& opts);

// One prompt made ready for the model, before batching: what a loader worker computes for a
// sample (Processor::prepare_pair) so that the training thread only collates.
struct PreparedPrompt {
  std::vector<int64_t> ids;          // the tokenized prompt, unpadded
  std::vector<int64_t> prog;         // positions of <|prog_token|> in ids
  int64_t pref = -1;                 // position of <|pref_token|>, -1 = none
  std::vector<ImagePatches> images;  // in prompt order
  int64_t num_patches() const;       // rows of all images' pixel_values
};

class Processor {
 public:
  explicit Processor(const Tokenizer& tokenizer, ProcessorOptions opts = {});

  ModelInputs progress_inputs(const std::vector<ProgressQuery>& queries) const;
  ModelInputs pair_inputs(const std::vector<PairQuery>& queries) const;

  // pair_inputs in two halves: prepare_pair per sample (pure, thread-safe: loader workers call
  // it), collate per batch. collate(prepare_pair(q_0..q_n)) is pair_inputs(q) byte for byte.
  // `index` only names the sample in errors. `pinned`: pixel_values and ids in page-locked
  // memory, for a non-blocking host-to-device copy (only where CUDA is present).
  PreparedPrompt prepare_pair(const PairQuery& query, size_t index = 0) const;
  ModelInputs collate(const std::vector<const PreparedPrompt*>& prompts, bool pinned = false) const;

  // <|image_pad|> count of one frame of size height x width (after smart_resize).
  int64_t image_pad_count(int64_t height, int64_t width) const;
  const ProcessorOptions& options() const { return opts_; }
  const Tokenizer& tokenizer() const { return *tok_; }

 private:
  // Tokenizes one rendered prompt, checks its image pads, and finds the head positions.
  PreparedPrompt tokenize(const std::string& prompt, std::vector<ImagePatches> images, int64_t image_pads,
                          size_t index) const;

  const Tokenizer* tok_;
  ProcessorOptions opts_;
  int64_t pad_id_, image_pad_id_, prog_id_, pref_id_;
};

}  // namespace robometer::model
