// Loading a model for inference (eval, score, serve, export): from a training checkpoint or an
// export directory (config.yaml + config.json + model.safetensors[.index.json]), or a randomly
// initialised model from a run config (the "untrained" baseline).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "robometer/config/run_config.h"
#include "robometer/data/video_reader.h"
#include "robometer/model/factory.h"

namespace robometer::eval {

struct LoadedModel {
  config::RunConfig config;  // the run config the model was trained with (or given)
  model::ModelBundle bundle;
};

// CUDA when available (or when device == "cuda"), else CPU. "cpu" forces CPU.
at::Device pick_device(const std::string& device = "auto");

// The model of a checkpoint/export dir: its config.yaml (the `model:` section; `overrides` are
// applied to it), the backbone config.json found next to the weights, the architecture built
// (LoRA adapters attached when the run used LoRA) and then every tensor of the directory loaded
// strictly, adapters included. Throws Error/ConfigError naming the directory.
LoadedModel load_checkpoint(const std::string& dir, at::Device device,
                            const std::vector<std::string>& overrides = {});

// A random-init model from a YAML run config (seed = train.seed).
LoadedModel load_untrained(const std::string& config_yaml, at::Device device,
                           const std::vector<std::string>& overrides = {});

// All frames of a video (uint8 [T, H, W, 3]), resized; with fps > 0 first subsampled to
// max(1, round(T * fps / native_fps)) frames at rint(linspace) positions, like the original's
// --fps (round(n_frames * fps / 10) for its 10 fps example videos). Throws FormatError.
at::Tensor read_video(const std::string& path, const data::ResizeSpec& resize, double fps = 0.0);

// Frames at inference (score, serve, eval): eval.resize of a run config (default none: native
// frames into smart_resize, as the original example_inference_local.py and the LeRobot port).
data::ResizeSpec resize_spec(const config::RunConfig& cfg);

}  // namespace robometer::eval
