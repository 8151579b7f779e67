// Procedural robot-like episodes for the demo (`robometer synth`): a top-down 2-D table, a
// two-link arm from a fixed base with a square gripper that reaches an object, grasps it and
// carries it to a target, then returns home. Each task has its own object colour/shape and
// target, so the task is visible in the frames; the three qualities differ only in the motion
// (the scene layout is drawn from the same distribution), so a reward model must watch what
// happens. Objects and targets are large (9-20 px of 64) so that a 16-px vision patch sees them,
// the carried object leaves a trail on the table (how far it went, and which way, shows in each
// frame), and the arm keeps moving to the last frame, so that no two late frames look the same.
//
// Ground-truth progress of every frame is a function of the scene state:
//   before the first grasp  g = 0.25 · clamp(1 − |gripper − object₀| / |home − object₀|)
//   after it                g = 0.25 + 0.75 · clamp(1 − |object − target| / |object₀ − target|)
//   successful  → the object ends exactly on the target: g ends at exactly 1;
//   suboptimal  → a detour, then the object is left part-way: final g = partial_success ∈ [0.3, 0.7];
//   failure     → carried to the distractor zone, or dropped and knocked back: final g ≈ 0.25.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "robometer/data/trajectory.h"

namespace robometer::data {

struct SynthOptions {
  int train_episodes = 120;
  int eval_episodes = 40;
  int tasks = 5;        // 1..kSynthMaxTasks
  int size = 64;        // square frames; even, >= 32
  int min_frames = 16;  // frames per episode drawn uniformly in [min_frames, max_frames]
  int max_frames = 24;
  double fps = 10.0;
  uint64_t seed = 0;
  // Scene variation. >= 0: each task has one canonical scene (object start, target, distractor
  // zone, drawn from `seed`) and every episode moves them by up to ± this many pixels of the
  // 64-pixel design; the default keeps scenes close enough that the 0.7 M-parameter demo model
  // learns progress from a few hundred episodes in minutes. < 0: every episode draws its whole
  // scene afresh (a much harder task, for larger models).
  double layout_jitter = 4.0;
  // Whether the manifest gives suboptimal episodes their partial_success (ground_truth.jsonl
  // always has it). Off: they are plain unsuccessful trajectories (no progress supervision),
  // since labels.h maps partial-success clips ending on the last frame to all-zero progress
  // labels but for that frame, which the frames contradict.
  bool partial_success_labels = false;
};

constexpr int kSynthMaxTasks = 6;

// The instruction of task i (0-based, < kSynthMaxTasks).
const std::string& synth_instruction(int task);

struct SynthEpisode {
  std::string id;
  int task_index = 0;
  std::string task;  // instruction
  Quality quality = Quality::Successful;
  std::optional<float> partial_success;  // suboptimal episodes only (= final progress)
  std::string failure_mode;              // "" | "wrong_target" | "drop"
  int num_frames = 0;
  int size = 0;
  std::vector<double> progress;  // ground truth per frame, in [0, 1]
  std::vector<uint8_t> frames;   // num_frames × size × size × 3, RGB HWC
};

// Renders one episode. Everything random comes from `episode_seed`, so an episode is the same
// whatever else is generated. Throws ConfigError on bad options.
SynthEpisode render_synth_episode(const SynthOptions& opts, int task, Quality quality, int num_frames,
                                  uint64_t episode_seed, const std::string& id);

// The (task, quality, frames, seed) of episode `index` of a split ("train" / "eval"):
// tasks cycle, qualities cycle successful, successful, suboptimal, failure per task.
struct SynthEpisodeSpec {
  std::string id;
  int task = 0;
  Quality quality = Quality::Successful;
  int num_frames = 0;
  uint64_t seed = 0;
};
std::vector<SynthEpisodeSpec> synth_episode_specs(const SynthOptions& opts, const std::string& split);

struct SynthSummary {
  int64_t episodes = 0;
  int64_t frames = 0;
  int64_t bytes = 0;  // mp4 bytes written
};

// Writes <out>/<split>/{videos/<id>.mp4, manifest.json, trajectories.jsonl, ground_truth.jsonl}
// for split in {train, eval} (a split with 0 episodes is skipped). ground_truth.jsonl has one
// line per episode: {"id","task","task_index","quality_label","partial_success",
// "failure_mode","num_frames","progress":[...]}. Throws ConfigError on bad options, Error on
// I/O failure.
SynthSummary write_synth_dataset(const std::string& out_dir, const SynthOptions& opts);

}  // namespace robometer::data
