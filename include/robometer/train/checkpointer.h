// Saving and resuming a training run (torchtitan's CheckpointManager in spirit): the trainer
// hands over references to what a checkpoint holds (model, optimizer, schedule, loader) once,
// then calls save(state) / load(dir). Per-rank parts (ZeRO-1 optimizer shards, each rank's RNG
// streams and loader counters) are staged and gathered here (sharded_checkpoint.h), so the
// trainer never sees more than one rank's view. Every rank calls save() and load().
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "robometer/config/run_config.h"
#include "robometer/data/loader.h"
#include "robometer/train/checkpoint.h"
#include "robometer/train/lr_schedule.h"
#include "robometer/train/param_optimizer.h"
#include "robometer/train/world.h"

namespace torch::nn {
class Module;
}

namespace robometer::train {

// The trainer's own counters, saved as trainer_state.json.
struct TrainState {
  int64_t step = 0;             // optimizer steps done
  int64_t consecutive_bad = 0;  // non-finite steps in a row
  int64_t skipped = 0;          // non-finite steps in all
};

struct CheckpointerOptions {
  std::filesystem::path run_dir;
  Retention retention;            // keep_last_n, keep_best by best_metric
  std::string config_yaml;        // the resolved run config, saved as config.yaml
  std::string model_config_json;  // the backbone config.json read when the model was built

  // train.keep_last_n / keep_best / best_metric, output.run_dir, the config as YAML.
  static CheckpointerOptions from_config(const config::RunConfig& cfg, std::string model_config_json);
};

class TrainCheckpointer {
 public:
  TrainCheckpointer(CheckpointerOptions opts, World& world, torch::nn::Module& model,
                    ParamOptimizer& optimizer, const LrSchedule& schedule, data::Loader& loader);

  // Writes run_dir/checkpoints/step_<state.step> (rank 0 writes, every rank stages its own
  // parts); `last_eval` goes into metrics.json. Returns the directory (empty on other ranks).
  std::string save(const TrainState& state, const nlohmann::json& last_eval);

  // Restores model, optimizer, loader and RNG streams from a complete checkpoint; returns the
  // trainer's counters. Any failure names the checkpoint file it came from.
  TrainState load(const std::filesystem::path& dir);

 private:
  CheckpointerOptions opts_;
  World& world_;
  torch::nn::Module& model_;
  ParamOptimizer& optimizer_;
  const LrSchedule& schedule_;
  data::Loader& loader_;
};

// Which checkpoint a run starts from, decided before anything is built so that a refused
// run_dir fails at once. spec "" / "none": fresh, refused when run_dir holds a checkpoint that
// verifies (never silently on top of an old run); "auto": find_resume's choice (refused when
// every checkpoint is damaged); a DIR: that checkpoint, which must verify, and when it belongs
// to another run this run_dir must not hold checkpoints yet (they would be overwritten and
// pruned). Throws ConfigError/Error saying why.
std::optional<std::filesystem::path> decide_resume(const std::filesystem::path& run_dir,
                                                   const std::string& spec);

}  // namespace robometer::train
