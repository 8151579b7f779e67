#include "robometer/cli/run_setup.h"

#include <filesystem>

#include "robometer/cli/command.h"
#include "robometer/core/log.h"

namespace robometer::cli {

RunContext start_run(const config::RunConfig& cfg, bool log_to_run_dir) {
  RunContext ctx;
  // Single process until the dist layer provides the c10d world.
  ctx.world = std::make_shared<train::LocalWorld>();
  LogOptions lo;
  lo.level = global_options().log_level != "info" ? global_options().log_level : cfg.output.log_level;
  if (log_to_run_dir) lo.file = (std::filesystem::path(cfg.output.run_dir) / "log.txt").string();
  lo.rank = ctx.world->size() > 1 ? ctx.world->rank() : -1;
  init_logging(lo);
  return ctx;
}

train::TrainerSetup make_trainer_setup(const config::RunConfig&, const RunContext& ctx) {
  train::TrainerSetup s;
  s.world = ctx.world;
  return s;
}

}  // namespace robometer::cli
