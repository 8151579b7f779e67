// Glue between the run config and the trainer: which World, GradSync and optimizer to use.
#pragma once
#include <memory>

#include "robometer/config/run_config.h"
#include "robometer/train/trainer.h"
#include "robometer/train/world.h"

namespace robometer::dist {

// A C10dWorld when the environment names more than one rank (torchrun, `robometer launch`,
// SLURM), else a LocalWorld. A 1-rank torchrun environment is also a LocalWorld.
std::shared_ptr<train::World> world_from_environment(const config::DistConfig& cfg);

// world size > 1, by dist.shard: none → BucketedGradSync + LocalAdamW; optimizer (ZeRO-1) /
// gradients (ZeRO-2) → ShardedGradSync (reduce-scatter during backward) + ShardedAdamW.
// Reads setup.world (must be set first); leaves a 1-process setup unchanged.
void configure_trainer(train::TrainerSetup& setup, const config::RunConfig& cfg);

}  // namespace robometer::dist
