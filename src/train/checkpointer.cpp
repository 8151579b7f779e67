#include "robometer/train/checkpointer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/core/remove_tree.h"
#include "robometer/model/weights.h"
#include "robometer/train/rng_state.h"
#include "robometer/train/sharded_checkpoint.h"

namespace robometer::train {
namespace fs = std::filesystem;

namespace {

// Runs fn, which reads `file` of checkpoint `ck`; any failure that does not name a file yet
// (a missing key, a value of the wrong type, a tensor of the wrong shape) is reported as a
// FormatError naming the checkpoint file.
template <class F>
auto reading(const Checkpoint& ck, const std::string& file, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const FormatError&) {
    throw;
  } catch (const std::exception& e) {
    throw FormatError((ck.dir() / file).string(), std::string("cannot resume from it: ") + e.what());
  }
}

}  // namespace

CheckpointerOptions CheckpointerOptions::from_config(const config::RunConfig& cfg,
                                                     std::string model_config_json) {
  CheckpointerOptions o;
  o.run_dir = cfg.output.run_dir;
  o.retention.keep_last_n = cfg.train.keep_last_n;
  o.retention.keep_best = cfg.train.keep_best;
  o.retention.best_metric = cfg.train.best_metric;
  o.config_yaml = config::to_yaml(cfg);
  o.model_config_json = std::move(model_config_json);
  return o;
}

TrainCheckpointer::TrainCheckpointer(CheckpointerOptions opts, World& world, torch::nn::Module& model,
                                     ParamOptimizer& optimizer, const LrSchedule& schedule,
                                     data::Loader& loader)
    : opts_(std::move(opts)),
      world_(world),
      model_(model),
      optimizer_(optimizer),
      schedule_(schedule),
      loader_(loader) {}

std::string TrainCheckpointer::save(const TrainState& state, const nlohmann::json& last_eval) {
  std::string where;
  // ZeRO-1: each rank stages its own optimizer shard; rank 0 adds them to the checkpoint.
  const fs::path staging = staging_dir(opts_.run_dir, state.step);
  const bool per_rank = world_.size() > 1;  // each rank's own RNG streams and loader counters
  if (optimizer_.sharded()) stage_optimizer_shard(world_, optimizer_, staging);
  if (per_rank)
    stage_rank_state(world_, rng_state_tensors(capture_rng_state()), loader_.state().to_json(), staging);
  if (world_.is_main()) {
    CheckpointWriter w(opts_.run_dir, state.step);
    model::StateDictOptions so;  // model dtype kept: fp32 stays bit-exact
    w.write_tensors(checkpoint_files::kModel, model::state_dict(model_, so),
                    {{"format", "pt"}, {"producer", "robometer.cpp"}});
    if (optimizer_.sharded()) {
      add_staged_shards(w, staging, world_.size());
    } else {
      w.write_tensors(checkpoint_files::kOptimizer, optimizer_.state_tensors());
      w.write_json(checkpoint_files::kOptimizerState, optimizer_.state_json());
    }
    w.write_json(checkpoint_files::kScheduler, schedule_.to_json());
    w.write_tensors(checkpoint_files::kRng, rng_state_tensors(capture_rng_state()));
    if (per_rank) add_staged_rank_state(w, staging, world_.size());
    w.write_json(checkpoint_files::kTrainerState, {{"step", state.step},
                                                   {"consecutive_bad", state.consecutive_bad},
                                                   {"skipped", state.skipped},
                                                   {"world_size", world_.size()},
                                                   {"format", "robometer-checkpoint"},
                                                   {"version", 1}});
    w.write_json(checkpoint_files::kLoader, loader_.state().to_json());
    w.write_text(checkpoint_files::kConfig, opts_.config_yaml);
    w.write_json(checkpoint_files::kMetrics, {{"step", state.step}, {"eval", last_eval}});
    // What inference needs next to the weights, so a checkpoint dir is self-contained.
    w.write_text("config.json", opts_.model_config_json);
    where = w.commit(opts_.retention).string();
    if (optimizer_.sharded() || per_rank) {  // committed: a failure here must not skip the barrier
      std::error_code ec;
      remove_tree(staging.string(), ec);
      if (ec) spdlog::warn("checkpoint: cannot remove {}: {}", staging.string(), ec.message());
    }
    spdlog::info("checkpoint: {}", where);
  }
  world_.barrier();
  return where;
}

TrainState TrainCheckpointer::load(const fs::path& dir) {
  Checkpoint ck(dir);
  const auto st = ck.json(checkpoint_files::kTrainerState);
  auto int_of = [&](const char* key, std::optional<int64_t> fallback) -> int64_t {
    return reading(ck, checkpoint_files::kTrainerState, [&]() -> int64_t {
      if (!st.contains(key)) {
        if (fallback) return *fallback;
        throw Error(std::string("missing key '") + key + "'");
      }
      if (!st[key].is_number_integer())
        throw Error(std::string("key '") + key + "' must be an integer, got " + st[key].dump());
      return st[key].get<int64_t>();
    });
  };
  const int saved_world = static_cast<int>(int_of("world_size", 1));
  TrainState state;
  state.step = int_of("step", std::nullopt);
  // Resuming at another step than the directory's would skip (or repeat) steps silently.
  if (state.step != ck.step())
    throw FormatError((dir / checkpoint_files::kTrainerState).string(),
                      "says step " + std::to_string(state.step) + " but COMPLETE and the directory say " +
                          std::to_string(ck.step()));
  state.consecutive_bad = int_of("consecutive_bad", 0);
  state.skipped = int_of("skipped", 0);
  model::LoadOptions lo;
  lo.source = (dir / checkpoint_files::kModel).string();
  reading(ck, checkpoint_files::kModel,
          [&] { model::load_weights(model_, ck.tensors(checkpoint_files::kModel), lo); });
  // Optimizer state: a sharded run's shards (same world size: this rank's own, bitwise;
  // another: re-cut by the optimizer), or one whole AdamW state.
  const bool saved_sharded = ck.has(optimizer_shard_file(0, false));
  if (saved_sharded && (saved_world != world_.size() || !optimizer_.sharded()))
    reading(ck, optimizer_shard_file(0, true),
            [&] { load_optimizer_resharded(ck, optimizer_, saved_world); });
  else if (saved_sharded)
    reading(ck, optimizer_shard_file(world_.rank(), false),
            [&] { load_optimizer_shard(ck, optimizer_, world_.rank()); });
  else
    reading(ck, checkpoint_files::kOptimizer, [&] {
      optimizer_.load_state(ck.tensors(checkpoint_files::kOptimizer),
                            ck.json(checkpoint_files::kOptimizerState));
    });
  // Rank r continues from its own loader counters and RNG streams when the checkpoint has
  // them (saved by as many ranks); otherwise from rank 0's.
  const bool own = saved_world == world_.size() && world_.size() > 1;
  const std::string loader_file = own && ck.has(rank_loader_file(world_.rank()))
                                      ? rank_loader_file(world_.rank())
                                      : checkpoint_files::kLoader;
  const std::string rng_file =
      own && ck.has(rank_rng_file(world_.rank())) ? rank_rng_file(world_.rank()) : checkpoint_files::kRng;
  if (world_.size() > 1 && rng_file == checkpoint_files::kRng)
    spdlog::warn(
        "{}: no RNG state of rank {} (saved by {} rank(s)): using rank 0's; dropout "
        "masks will differ from an uninterrupted run",
        dir.string(), world_.rank(), saved_world);
  const auto ls =
      reading(ck, loader_file, [&] { return data::LoaderState::from_json(ck.json(loader_file)); });
  if (saved_world == world_.size()) {
    loader_.restore(ls);
  } else {
    // Another world size: same epoch, continue from the samples already consumed globally.
    data::LoaderState s = ls;
    s.next_sample = ls.next_sample * saved_world / world_.size();
    loader_.restore(s);
    spdlog::warn("resuming a {}-rank checkpoint on {} ranks: data order is not bitwise", saved_world,
                 world_.size());
  }
  reading(ck, rng_file, [&] { restore_rng_state(rng_state_from_tensors(ck.tensors(rng_file))); });
  spdlog::info("resumed from {} at step {}", dir.string(), state.step);
  return state;
}

std::optional<fs::path> decide_resume(const fs::path& run_dir, const std::string& spec) {
  if (spec.empty() || spec == "none") {
    // Only checkpoints that verify count: when every one is damaged, --resume none is the way
    // to start afresh over them (--resume auto refuses).
    if (!scan_checkpoints(run_dir).complete.empty()) {
      std::vector<std::string> problems;
      if (newest_verified_checkpoint(run_dir, &problems))
        throw ConfigError("output.run_dir '" + run_dir.string() +
                          "' already holds checkpoints: pass --resume auto to continue, or choose "
                          "another output.run_dir");
      spdlog::warn("--resume none: every checkpoint in {} is damaged; starting afresh over them",
                   checkpoints_root(run_dir).string());
    }
    return std::nullopt;
  }
  auto dir = find_resume(run_dir, spec);  // logs each ignored dir itself; throws on a bad DIR
  // A checkpoint of another run: this run's own checkpoints would be overwritten at the same
  // steps and pruned by keep_last_n, so the run dir must not hold any yet.
  if (dir && spec != "auto") {
    std::error_code ec;
    const fs::path own = fs::weakly_canonical(checkpoints_root(run_dir), ec);
    const fs::path from = fs::weakly_canonical(*dir, ec).parent_path();
    if (from != own && !scan_checkpoints(run_dir).complete.empty())
      throw ConfigError("--resume " + spec + " is a checkpoint of another run, and output.run_dir '" +
                        run_dir.string() +
                        "' already holds checkpoints that it would overwrite or "
                        "prune: choose an empty output.run_dir");
  }
  return dir;
}

}  // namespace robometer::train
