#include "robometer/train/sharded_checkpoint.h"

#include <cstdio>
#include <fstream>

#include "robometer/core/error.h"
#include "robometer/io/atomic_file.h"
#include "robometer/io/safetensors.h"

namespace robometer::train {

namespace fs = std::filesystem;

std::string optimizer_shard_file(int rank, bool json) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "optimizer.rank%05d.%s", rank, json ? "json" : "safetensors");
  return buf;
}

fs::path staging_dir(const fs::path& run_dir, int64_t step) {
  return train::checkpoints_root(run_dir) / (".staging-" + train::checkpoint_dir_name(step));
}

void stage_optimizer_shard(World& world, const ParamOptimizer& opt,
                           const fs::path& staging) {
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) throw Error("creating " + staging.string() + ": " + ec.message());
  const int r = world.rank();
  io::save_safetensors((staging / optimizer_shard_file(r, false)).string(), opt.state_tensors());
  const auto json_path = staging / optimizer_shard_file(r, true);
  {
    std::ofstream f(json_path.string() + ".tmp");
    f << opt.state_json().dump(1);
    if (!f) throw Error("writing " + json_path.string());
  }
  fs::rename(json_path.string() + ".tmp", json_path, ec);
  if (ec) throw Error("writing " + json_path.string() + ": " + ec.message());
  world.barrier();  // every shard is on disk before rank 0 commits
}

void add_staged_shards(CheckpointWriter& w, const fs::path& staging, int world) {
  for (int r = 0; r < world; ++r) {
    const auto t = staging / optimizer_shard_file(r, false);
    const auto j = staging / optimizer_shard_file(r, true);
    if (!fs::exists(t) || !fs::exists(j))
      throw Error("checkpoint: rank " + std::to_string(r) + "'s optimizer shard is missing in " +
                  staging.string());
    w.write_tensors(optimizer_shard_file(r, false), io::load_safetensors(t.string()));
    std::ifstream f(j);
    w.write_json(optimizer_shard_file(r, true), nlohmann::json::parse(f));
  }
}

void load_optimizer_shard(const Checkpoint& ck, ParamOptimizer& opt, int rank) {
  const auto t = optimizer_shard_file(rank, false);
  if (!ck.has(t))
    throw Error(ck.dir().string() + " has no " + t +
                " (saved with a smaller world size, or not by a sharded optimizer)");
  opt.load_state(ck.tensors(t), ck.json(optimizer_shard_file(rank, true)));
}

}  // namespace robometer::train
