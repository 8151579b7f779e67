// What every run-like command (train, eval, score) does first: logging with the rank prefix,
// the process group from the environment, the trainer's distributed pieces.
#pragma once
#include <memory>

#include "robometer/config/run_config.h"
#include "robometer/train/trainer.h"
#include "robometer/train/world.h"

namespace robometer::cli {

struct RunContext {
  std::shared_ptr<train::World> world;
};

// Initialises logging (console + <run_dir>/log.txt when asked) and the World: a c10d process
// group when RANK/WORLD_SIZE (torchrun, `robometer launch`) or SLURM variables are set, else
// a single process.
RunContext start_run(const config::RunConfig& cfg, bool log_to_run_dir);

// GradSync and optimizer factory for the world size and config (bucketed all-reduce or ZeRO-1).
train::TrainerSetup make_trainer_setup(const config::RunConfig& cfg, const RunContext& ctx);

}  // namespace robometer::cli
