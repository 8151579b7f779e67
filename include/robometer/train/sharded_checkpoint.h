// Per-rank parts of a checkpoint. A sharded (ZeRO-1) optimizer: every rank holds a different
// part of the state, so each writes optimizer.rank<r>.safetensors / .json. With several ranks,
// every rank also has its own RNG streams (dropout, CUDA device) and loader counters:
// rng.rank<r>.safetensors and loader.rank<r>.json. Protocol inside the trainer's
// save_checkpoint():
//   stage_optimizer_shard(world, opt, staging)   // every rank, ends with a barrier
//   stage_rank_state(world, rng, loader, staging)  // every rank when world > 1, ditto
//   rank 0: CheckpointWriter w(...); ...; add_staged_shards / add_staged_rank_state; commit
//   world.barrier();  remove_staging(staging) on rank 0
// On resume: load_optimizer_shard() (same world size) or load_optimizer_resharded() (another).
// The staging dir is run_dir/checkpoints/.staging-step_XXXXXXXX (a name every rank can
// compute; ignored on resume like the writer's temp dirs). Resume: load_optimizer_shard().
#pragma once
#include <filesystem>
#include <string>

#include "robometer/train/checkpoint.h"
#include "robometer/train/param_optimizer.h"
#include "robometer/train/world.h"

namespace robometer::train {

std::string optimizer_shard_file(int rank, bool json);  // optimizer.rank00003.safetensors/.json
std::filesystem::path staging_dir(const std::filesystem::path& run_dir, int64_t step);
void stage_optimizer_shard(World& world, const ParamOptimizer& opt, const std::filesystem::path& staging);
// Copies every rank's staged shard into the checkpoint being written (rank 0), one at a time.
void add_staged_shards(CheckpointWriter& w, const std::filesystem::path& staging, int world);
// This rank's shard from a committed checkpoint; a clear Error when it was saved with
// another world size (its shard file is missing).
void load_optimizer_shard(const Checkpoint& ck, ParamOptimizer& opt, int rank);
// Every rank: the shards of a run of `saved_world` ranks, re-cut for this world size by
// ParamOptimizer::load_resharded (each rank reads only the shards overlapping its slice).
void load_optimizer_resharded(const Checkpoint& ck, ParamOptimizer& opt, int saved_world);

std::string rank_rng_file(int rank);     // rng.rank00003.safetensors
std::string rank_loader_file(int rank);  // loader.rank00003.json
void stage_rank_state(World& world, const io::NamedTensors& rng, const nlohmann::json& loader,
                      const std::filesystem::path& staging);
void add_staged_rank_state(CheckpointWriter& w, const std::filesystem::path& staging, int world);

}  // namespace robometer::train
