// Robometer's frame selection and per-frame labels (spec §2.1-2.3, §3.3), as pure functions on
// frame indices so each rule can be pinned by a hand-computed test.
//
// Labels are computed in double (as Python does) so that g >= c comparisons are exact; they
// become float32 tensors only when a Clip is assembled.
//
// Index spaces: a trajectory of N video frames is first capped to S = min(N, max_stored) "stored"
// frames (the original preprocessing); every clip index and every label below lives in stored
// space, exactly as the original samplers work on the 32-frame npz arrays.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "robometer/data/trajectory.h"

namespace robometer::data {

// Stored frame j -> video frame floor(j * N / S) for N > S (identity otherwise). This is the
// original preprocess_datasets.py rule int(i * total / max): the first frame is kept, the last
// one usually not (32 of 64 frames -> 0, 2, ..., 62).
std::vector<int64_t> stored_frame_indices(int64_t num_video_frames, int max_stored);
// Entry j of stored_frame_indices(n, max_stored), without building the list.
int64_t stored_frame_index(int64_t num_video_frames, int max_stored, int64_t j);

// Positions (into a list of n items) that keep k of them evenly spaced: numpy
// rint(linspace(0, n-1, k)) (round half to even), first = 0 and last = n-1 forced, made
// non-decreasing. n <= k: all positions 0..n-1. Example: n=32, k=8 -> 0,4,9,13,18,22,27,31.
std::vector<int64_t> linspace_positions(int64_t n, int k);

// The original get_segment_indices_with_middle: all frames start->middle, then middle->end
// (each leg forwards or backwards), the middle frame once. No middle: start->end.
std::vector<int64_t> segment_indices(int64_t num_stored, int64_t start, int64_t end,
                                     std::optional<int64_t> middle = std::nullopt);

// Progress g_t of each index ("absolute_first_frame"): s = min(indices), C = floor(c * S),
//   g_t = min(1, (i_t - s) / max(1, C - s - 1)).
// With p given (a graded trajectory's partial_success) and p != 1: when the last stored frame
// S-1 is among the indices, every g is 0 except at (the first occurrence of) S-1, which gets p
// (original compute_progress_from_segment, applied whatever predict_last_frame_partial_progress).
std::vector<double> progress_labels(int64_t num_stored, const std::vector<int64_t>& indices,
                                    double success_cutoff,
                                    std::optional<float> partial_success = std::nullopt);

// y_t = 1[g_t >= c]; all 0 for suboptimal / failure trajectories.
std::vector<double> success_labels(const std::vector<double>& progress, double success_cutoff,
                                   Quality quality);

// Frames the success loss sees: g_t < min_success or y_t = 1, every frame of a suboptimal /
// failure trajectory (the trainer's combined_mask).
std::vector<double> success_inclusion(const std::vector<double>& progress, const std::vector<double>& success,
                                      Quality quality, double min_success);

// Per-clip progress-loss mask (the collator's should_compute_progress):
//   0 when the source is preference-only; 1 when the trajectory carries partial_success;
//   0 for suboptimal / failure (checked before the original's "or rewound" clause, so a rewound
//   clip of a failed trajectory stays 0); 1 for successful trajectories (any strategy).
// has_partial_success is true only where partial_success counts for progress: the original
// keys it on sources named "roboreward" (SamplerOptions::partial_success_progress_match).
float progress_mask(Quality quality, bool preference_only_source, bool has_partial_success);

// Per-frame progress mask of a clip (the original RBMBaseSampler._get_traj_from_data
// predict_last_frame_mask), `indices` the selected stored frames before right padding, K the
// padded length. All 1 unless `enabled` (predict_last_frame_partial_progress) and the trajectory
// has partial_success p, where p == 1 on a non-preference-only source also keeps all 1;
// otherwise 1 exactly at the positions showing the last stored frame S-1 (0 elsewhere, padding
// included), all 0 when the clip does not show it.
std::vector<double> last_frame_progress_mask(int64_t num_stored, const std::vector<int64_t>& indices, int K,
                                             bool enabled, std::optional<float> partial_success,
                                             bool preference_only_source);

// C51 two-hot target over `bins` centres k/(bins-1): b = (bins-1)*g, q[floor b] = ceil b - b,
// q[ceil b] = b - floor b, q[b] = 1 when b is an integer. float [n, bins].
at::Tensor two_hot(const std::vector<double>& progress, int bins);

}  // namespace robometer::data
