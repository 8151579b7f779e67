// Reward-curve figure (Cairo → PNG): progress and P(success) against the frame index, above a
// strip of (up to `max_thumbs`) frames of the video with the scored frames marked.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace robometer::plot {

struct RewardPlot {
  std::string title;                   // e.g. the task
  std::vector<int64_t> frame_indices;  // x of each value (frame numbers of `frames`)
  std::vector<double> progress;
  std::vector<double> success;       // may be empty
  std::vector<double> ground_truth;  // true progress at the same frames; may be empty
  at::Tensor frames;                 // uint8 [T, H, W, 3] (for the strip; may be undefined)
  int max_thumbs = 8;
};

// Writes a PNG (960 px wide). Throws Error when Cairo fails or the file cannot be written.
void write_reward_plot(const RewardPlot& plot, const std::string& png_path);

}  // namespace robometer::plot
