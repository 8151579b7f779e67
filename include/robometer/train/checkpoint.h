// Training checkpoints: run_dir/checkpoints/step_XXXXXXXX/ (8 digits), written crash-safely.
//
//   CheckpointWriter w(run_dir, step);            // → checkpoints/.tmp-step_XXXXXXXX-<pid>/
//   w.write_tensors(checkpoint_files::kModel, model_tensors);
//   w.write_json(checkpoint_files::kOptimizerState, opt.state_json());  ...
//   w.commit(keep_last_n);
//
// commit() writes COMPLETE (JSON: step, time, every file with its size and XXH64 content hash) last inside
// the temp dir, fsyncs, renames the directory into place, then rewrites checkpoints/latest (the directory
// name) atomically, then deletes old checkpoints beyond keep_last_n. A crash at any point leaves either the
// previous state or a complete new checkpoint; half-written directories are recognisable (temp name, or no
// valid COMPLETE) and ignored on resume; so are checkpoints whose files no longer match their recorded hash
// (checked when resuming), and leftovers of killed saves are removed once a later checkpoint is complete.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "robometer/io/safetensors.h"

namespace robometer::train {

namespace fs = std::filesystem;

// Conventional file names inside a checkpoint (the trainer may add others).
namespace checkpoint_files {
inline constexpr const char* kModel = "model.safetensors";
inline constexpr const char* kOptimizer = "optimizer.safetensors";
inline constexpr const char* kOptimizerState = "optimizer.json";
inline constexpr const char* kScheduler = "scheduler.json";
inline constexpr const char* kRng = "rng.safetensors";
inline constexpr const char* kTrainerState = "trainer_state.json";  // step, engines, ...
inline constexpr const char* kLoader = "loader.json";
inline constexpr const char* kConfig = "config.yaml";
inline constexpr const char* kMetrics = "metrics.json";
inline constexpr const char* kComplete = "COMPLETE";
}  // namespace checkpoint_files

std::string checkpoint_dir_name(int64_t step);       // "step_00000042"
fs::path checkpoints_root(const fs::path& run_dir);  // run_dir/checkpoints
// Step of a "step_XXXXXXXX" name, or nullopt for anything else.
std::optional<int64_t> parse_checkpoint_dir_name(const std::string& name);

// Which checkpoints commit() keeps: the keep_last_n newest, plus the keep_best best by the
// metric `best_metric` of their metrics.json ("eval" object; higher is better unless the name
// ends in "loss"). 0 keeps everything / no best.
struct Retention {
  int keep_last_n = 0;
  int keep_best = 0;
  std::string best_metric;
  bool higher_is_better() const;
};

// The value of `metric` in dir/metrics.json's "eval" object, nullopt when absent or not finite.
std::optional<double> checkpoint_metric(const fs::path& dir, const std::string& metric);

class CheckpointWriter {
 public:
  // Creates the temp directory (and run_dir/checkpoints). Throws Error on failure.
  CheckpointWriter(const fs::path& run_dir, int64_t step);
  // Removes the temp directory unless commit() succeeded.
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  void write_tensors(const std::string& file, const io::NamedTensors& tensors,
                     const io::Metadata& metadata = {});
  void write_json(const std::string& file, const nlohmann::json& j);
  void write_text(const std::string& file, const std::string& text);

  // Publishes the checkpoint; returns its final directory. keep_last_n > 0 then deletes the
  // oldest complete checkpoints with a smaller step so that keep_last_n remain (checkpoints
  // with a larger step, left by an earlier timeline, are not touched).
  fs::path commit(int keep_last_n = 0);
  fs::path commit(const Retention& retention);

  const fs::path& temp_dir() const { return temp_; }
  int64_t step() const { return step_; }

 private:
  void prune(const Retention& retention) const;
  fs::path run_dir_, root_, temp_;
  int64_t step_;
  std::vector<std::string> files_;
  bool committed_ = false;
};

// Empty when `dir` holds a valid COMPLETE whose files all exist with the recorded sizes;
// otherwise the reason it is not a complete checkpoint. Cheap (no file is read).
std::string checkpoint_problem(const fs::path& dir);
// checkpoint_problem, then every file's content against its recorded XXH64 (reads every byte)
// and trainer_state.json's step against COMPLETE's; the problem names the file.
std::string checkpoint_content_problem(const fs::path& dir);

struct CheckpointScan {
  std::vector<fs::path> complete;    // sorted by step, ascending
  std::vector<std::string> ignored;  // one line per leftover temp / incomplete dir
  std::optional<fs::path> latest;    // where `latest` points, if it is complete
  std::optional<fs::path> resume;    // latest if complete, else the newest complete one
};
CheckpointScan scan_checkpoints(const fs::path& run_dir);

// The checkpoint to resume from: scan_checkpoints(run_dir).resume if its content verifies, else
// the newest older one that does (nullopt when there is none). Every directory passed over is
// appended to `problems` with the reason.
std::optional<fs::path> newest_verified_checkpoint(const fs::path& run_dir,
                                                   std::vector<std::string>* problems = nullptr);
// Whether run_dir/checkpoints holds any step_XXXXXXXX directory, complete or not.
bool holds_step_directories(const fs::path& run_dir);

// spec "auto": newest_verified_checkpoint (nullopt when there is no checkpoint directory at
// all); each ignored directory and a stale/broken `latest` is logged as a warning and appended
// to `ignored`. When checkpoint directories exist but none verifies: ConfigError naming each.
// spec "" or "none": nullopt. Any other spec is a checkpoint directory that must be complete
// and verify, else Error saying why.
std::optional<fs::path> find_resume(const fs::path& run_dir, const std::string& spec,
                                    std::vector<std::string>* ignored = nullptr);

// A complete checkpoint opened for reading.
class Checkpoint {
 public:
  explicit Checkpoint(const fs::path& dir);  // throws Error when incomplete (with the reason)
  const fs::path& dir() const { return dir_; }
  int64_t step() const { return step_; }
  std::vector<std::string> files() const;  // as listed in COMPLETE
  bool has(const std::string& file) const;
  io::NamedTensors tensors(const std::string& file) const;  // owning CPU tensors
  nlohmann::json json(const std::string& file) const;
  std::string text(const std::string& file) const;

 private:
  fs::path path_of(const std::string& file) const;  // throws Error when not listed
  fs::path dir_;
  int64_t step_ = 0;
  nlohmann::json complete_;
};

}  // namespace robometer::train
