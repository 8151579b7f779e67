// The dataset side of the web UI (`robometer view DIR`, `robometer serve --data DIR`): what a
// manifest holds, one trajectory's stored frames with its labels, and the training sampler's pair
// for a seed with the labels and masks the objective sees. Everything is JSON for the page;
// frames are PNG data URLs.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "robometer/data/sampler.h"
#include "robometer/data/trajectory_index.h"
#include "robometer/data/video_reader.h"

namespace robometer::serve {

struct DatasetViewOptions {
  data::ResizeSpec resize = data::ResizeSpec::none();  // frames as the model sees them
  data::SamplerOptions sampling;                       // pairs as training draws them
};

class DatasetView {
 public:
  // Reads the manifest in `dir`. Throws Error / FormatError naming the file.
  DatasetView(const std::string& dir, DatasetViewOptions opts);

  // {"dir", "sources": {name: {"trajectories", "frames", "tasks": {task: n}, "quality": {label: n}}},
  //  "trajectories": [{"id", "task", "data_source", "quality", "num_frames", "partial_success"?}]}
  nlohmann::json summary() const;

  // One trajectory's S stored frames (the training cap): {"id", "task", ..., "stored_frames": S,
  // "video_frame_indices", "thumbs": [data URL per stored frame], "gt_progress": [S] or null when
  // the objective does not supervise its progress, "gt_note"}. With raw: also "raw" (base64 of the
  // uint8 [S, H, W, 3] frames) and "shape", ready for POST /score. Throws Error for an unknown id.
  nlohmann::json trajectory(const std::string& id, bool raw) const;

  // The training sampler's pair for `seed` (data::Rng(seed), training mode): {"seed", "task",
  // "strategy", "preference", "different_task", "a": clip, "b": clip}; a clip is {"trajectory_id",
  // "data_source", "quality", "frame_indices", "video_frame_indices", "valid_frames", "thumbs",
  // "progress", "success", "success_mask", "progress_mask"}.
  nlohmann::json training_pair(uint64_t seed) const;

  const data::TrajectoryIndex& index() const { return *index_; }

 private:
  std::string dir_;
  DatasetViewOptions opts_;
  std::shared_ptr<const data::TrajectoryIndex> index_;
  std::unique_ptr<data::PairSampler> sampler_;
};

// "data:image/png;base64,..." of a uint8 [H, W, 3] frame.
std::string png_data_url(const at::Tensor& frame);

}  // namespace robometer::serve
