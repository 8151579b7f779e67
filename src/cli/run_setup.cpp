#include "robometer/cli/run_setup.h"

#include <cstdio>
#include <filesystem>

#include "robometer/cli/command.h"
#include "robometer/core/log.h"
#include "robometer/dist/setup.h"

namespace robometer::cli {

RunContext start_run(const config::RunConfig& cfg, bool log_to_run_dir) {
  RunContext ctx;
  // A c10d process group under torchrun / `robometer launch` / SLURM, else one process.
  ctx.world = dist::world_from_environment(cfg.dist);
  LogOptions lo;
  lo.level = global_options().log_level != "info" ? global_options().log_level : cfg.output.log_level;
  lo.rank = ctx.world->size() > 1 ? ctx.world->rank() : -1;
  // One log file per rank: appends of several nodes to one file on a shared filesystem (NFS)
  // are not atomic. Rank 0 keeps log.txt.
  if (log_to_run_dir) {
    char name[32] = "log.txt";
    if (lo.rank > 0) std::snprintf(name, sizeof(name), "log.rank%05d.txt", lo.rank);
    lo.file = (std::filesystem::path(cfg.output.run_dir) / name).string();
  }
  init_logging(lo);
  return ctx;
}

train::TrainerSetup make_trainer_setup(const config::RunConfig& cfg, const RunContext& ctx) {
  train::TrainerSetup s;
  s.world = ctx.world;
  dist::configure_trainer(s, cfg);  // bucketed all-reduce or ZeRO-1/2 (dist.shard) when world size > 1
  return s;
}

}  // namespace robometer::cli
