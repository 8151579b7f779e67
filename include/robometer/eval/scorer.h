// Reward scoring with a trained model (spec §6): per-frame progress and success probability for
// one video and a task, in two modes, plus preference queries between two clips.
//
//   linspace: K frames of the video (numpy rint(linspace), first and last kept), ONE progress
//             query; returns one value per selected frame.
//   dense:    for every frame t, the prefix o_0..o_t linspace-subsampled to K frames (first and
//             current frame kept; short prefixes right-padded by repeating the last frame, as
//             the training sampler does); reward_t = the prediction at the clip's last position,
//             i.e. at frame t. Prefixes are batched (batch_size queries per forward).
//   all:      every given frame in one query (what the original example_inference_local.py does).
//   stream:   the numbers of `all`, computed as an online RL client would get them: frames
//             appended one at a time to a KV-cached session (model/stream_session.h).
//
// Progress is the expectation over the discrete bins (RewardOutputs::progress); success is
// σ(success logit). The model is put in eval mode and run under NoGradGuard.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "robometer/model/factory.h"

namespace robometer::eval {

enum class ScoreMode { Linspace, Dense, All, Stream };
ScoreMode parse_score_mode(const std::string& s);  // "linspace" | "dense" | "all" | "stream"; ConfigError
const char* score_mode_name(ScoreMode m);

struct ScorerOptions {
  int frames = 8;      // K
  int batch_size = 8;  // progress queries per forward pass (dense mode, evaluation)
};

struct ScoreResult {
  std::vector<int64_t> frame_indices;  // which input frames the values belong to
  std::vector<double> progress;        // in [0, 1]
  std::vector<double> success;         // P(success)
};

// One clip's per-position outputs.
struct ClipOutputs {
  std::vector<double> progress, success;
};

// Positions of K frames for the prefix 0..t: linspace over t+1 frames, right-padded with t.
std::vector<int64_t> prefix_positions(int64_t t, int k);

class Scorer {
 public:
  explicit Scorer(model::ModelBundle& bundle, ScorerOptions opts = {});

  // Each query's frames as given (no subsampling); batched by options().batch_size.
  std::vector<ClipOutputs> score_clips(const std::vector<model::ProgressQuery>& queries);

  // frames: uint8 [T, H, W, 3]. Throws Error on a bad tensor or an empty task.
  ScoreResult score(const at::Tensor& frames, const std::string& task, ScoreMode mode);
  ScoreResult linspace(const at::Tensor& frames, const std::string& task);
  ScoreResult dense(const at::Tensor& frames, const std::string& task);
  ScoreResult all_frames(const at::Tensor& frames, const std::string& task);
  ScoreResult stream(const at::Tensor& frames, const std::string& task);

  // P(A ≻ B) = σ(preference logit) for the pair prompt with A first; both clips linspace-
  // subsampled to K frames.
  double preference(const at::Tensor& frames_a, const at::Tensor& frames_b, const std::string& task);
  std::vector<double> preferences(const std::vector<model::PairQuery>& queries);

  const ScorerOptions& options() const { return opts_; }
  model::ModelBundle& bundle() { return bundle_; }
  at::Device device() const { return device_; }

 private:
  model::ModelInputs to_device(model::ModelInputs in) const;
  model::ModelBundle& bundle_;
  ScorerOptions opts_;
  at::Device device_{at::kCPU};
};

// frames[positions] along dim 0 (uint8 [K, H, W, 3]).
at::Tensor select_frames(const at::Tensor& frames, const std::vector<int64_t>& positions);

}  // namespace robometer::eval
