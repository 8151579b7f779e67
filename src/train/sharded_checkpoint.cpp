#include "robometer/train/sharded_checkpoint.h"

#include <cstdio>
#include <fstream>

#include "robometer/core/error.h"
#include "robometer/io/atomic_file.h"
#include "robometer/io/safetensors.h"

namespace robometer::train {

namespace fs = std::filesystem;

namespace {

std::string rank_file(const char* stem, int rank, const char* ext) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s.rank%05d.%s", stem, rank, ext);
  return buf;
}

nlohmann::json read_staged_json(const fs::path& p) {
  std::ifstream f(p);
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(p.string(), std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace

std::string optimizer_shard_file(int rank, bool json) {
  return rank_file("optimizer", rank, json ? "json" : "safetensors");
}
std::string rank_rng_file(int rank) { return rank_file("rng", rank, "safetensors"); }
std::string rank_loader_file(int rank) { return rank_file("loader", rank, "json"); }

fs::path staging_dir(const fs::path& run_dir, int64_t step) {
  return train::checkpoints_root(run_dir) / (".staging-" + train::checkpoint_dir_name(step));
}

void stage_optimizer_shard(World& world, const ParamOptimizer& opt, const fs::path& staging) {
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) throw Error("creating " + staging.string() + ": " + ec.message());
  const int r = world.rank();
  io::save_safetensors((staging / optimizer_shard_file(r, false)).string(), opt.state_tensors());
  io::write_file_atomic((staging / optimizer_shard_file(r, true)).string(), opt.state_json().dump(1));
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
    w.write_json(optimizer_shard_file(r, true), read_staged_json(j));
  }
}

void load_optimizer_shard(const Checkpoint& ck, ParamOptimizer& opt, int rank) {
  const auto t = optimizer_shard_file(rank, false);
  if (!ck.has(t))
    throw Error(ck.dir().string() + " has no " + t +
                " (saved with a smaller world size, or not by a sharded optimizer)");
  opt.load_state(ck.tensors(t), ck.json(optimizer_shard_file(rank, true)));
}

void load_optimizer_resharded(const Checkpoint& ck, ParamOptimizer& opt, int saved_world) {
  for (int k = 0; k < saved_world; ++k)
    if (!ck.has(optimizer_shard_file(k, false)) || !ck.has(optimizer_shard_file(k, true)))
      throw Error(ck.dir().string() + " lacks " + optimizer_shard_file(k, false) + " (saved by " +
                  std::to_string(saved_world) + " ranks)");
  opt.load_resharded(
      saved_world, [&](int k) { return ck.json(optimizer_shard_file(k, true)); },
      [&](int k) { return ck.tensors(optimizer_shard_file(k, false)); });
}

void stage_rank_state(World& world, const io::NamedTensors& rng, const nlohmann::json& loader,
                      const fs::path& staging) {
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) throw Error("creating " + staging.string() + ": " + ec.message());
  const int r = world.rank();
  io::save_safetensors((staging / rank_rng_file(r)).string(), rng);
  io::write_file_atomic((staging / rank_loader_file(r)).string(), loader.dump(1));
  world.barrier();  // every rank's state is on disk before rank 0 commits
}

void add_staged_rank_state(CheckpointWriter& w, const fs::path& staging, int world) {
  for (int r = 0; r < world; ++r) {
    const auto t = staging / rank_rng_file(r);
    const auto j = staging / rank_loader_file(r);
    if (!fs::exists(t) || !fs::exists(j))
      throw Error("checkpoint: rank " + std::to_string(r) + "'s RNG/loader state is missing in " +
                  staging.string());
    w.write_tensors(rank_rng_file(r), io::load_safetensors(t.string()));
    w.write_json(rank_loader_file(r), read_staged_json(j));
  }
}

}  // namespace robometer::train
