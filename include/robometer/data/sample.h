// What the data layer hands to the model/trainer: model-agnostic pairs of frame clips with
// Robometer's labels. Nothing here knows about tokens or the backbone.
#pragma once
#include <ATen/ATen.h>

#include <any>
#include <cstdint>
#include <string>
#include <vector>

#include "robometer/data/trajectory.h"

namespace robometer::data {

// How the rejected trajectory of a pair was made (spec §2.6).
enum class Strategy { Rewind, Suboptimal, DifferentTask, Reverse };
const char* strategy_name(Strategy s);

constexpr int kProgressBins = 10;

// K frames of one trajectory with their per-frame labels. Short clips are right-padded by
// repeating the last frame and its labels, so every tensor has exactly K rows.
struct Clip {
  at::Tensor frames;                         // uint8 [K, H, W, 3]
  at::Tensor progress;                       // float [K]     g_t in [0,1]
  at::Tensor progress_target;                // float [K, 10] two-hot over bin centres k/9
  at::Tensor success;                        // float [K]     1[g_t >= cutoff], 0 for failures / other task
  at::Tensor success_mask;                   // float [K]     inclusion rule of spec §2.3
  float progress_mask = 0.f;                 // 1 if progress is supervised on this clip
  at::Tensor progress_frame_mask;            // float [K] per-frame progress mask (all 1 unless
                                             // predict_last_frame_partial_progress); undefined = all 1
  std::vector<int64_t> frame_indices;        // into the trajectory (after the stored-frame cap)
  std::vector<int64_t> video_frame_indices;  // the same frames as frame numbers of the video
  int64_t valid_frames = 0;                  // frames before right padding (<= K)
  std::string trajectory_id;
  std::string data_source;
  Quality quality = Quality::Successful;
};

struct PairSample {
  std::string task;        // the instruction in the prompt (the chosen trajectory's)
  Clip a, b;               // a is first in the prompt
  float preference = 1.f;  // 1 if A is the chosen (better) trajectory
  Strategy strategy = Strategy::Rewind;
  bool different_task = false;
  // What LoaderOptions::prepare made of this sample in the worker (for the trainer: the
  // processed prompt); empty without a prepare hook. The data layer only carries it.
  std::any prepared;
};

// A collated batch. Labels are stacked; frames stay per sample (sizes may differ by source).
struct Batch {
  std::vector<PairSample> samples;
  at::Tensor preference;             // float [B]
  at::Tensor progress_a;             // float [B, K]
  at::Tensor progress_target_a;      // float [B, K, 10]
  at::Tensor progress_mask_a;        // float [B]
  at::Tensor progress_frame_mask_a;  // float [B, K] (the original predict_last_frame_mask_A)
  at::Tensor success_a;              // float [B, K]
  at::Tensor success_mask_a;         // float [B, K]
  // The same labels for trajectory B (the original trainer supervises A only; kept for
  // evaluation and for experiments).
  at::Tensor progress_b;             // float [B, K]
  at::Tensor progress_target_b;      // float [B, K, 10]
  at::Tensor progress_mask_b;        // float [B]
  at::Tensor progress_frame_mask_b;  // float [B, K]
  at::Tensor success_b;              // float [B, K]
  at::Tensor success_mask_b;         // float [B, K]
  int64_t size() const { return static_cast<int64_t>(samples.size()); }
};

// Stacks the label tensors of `samples` (all with the same K). Throws Error on mismatched K.
Batch collate(std::vector<PairSample> samples);

// Samples [begin, end) of `batch` with their label tensors (views, no copy). Throws Error on an
// empty or out-of-range slice.
Batch slice_batch(const Batch& batch, int64_t begin, int64_t end);

}  // namespace robometer::data
