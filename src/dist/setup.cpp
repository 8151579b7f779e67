#include "robometer/dist/setup.h"

#include "robometer/core/error.h"
#include "robometer/dist/env.h"
#include "robometer/dist/grad_sync.h"
#include "robometer/dist/process_group.h"
#include "robometer/dist/sharded_adamw.h"

namespace robometer::dist {

std::shared_ptr<train::World> world_from_environment(const config::DistConfig& cfg) {
  const DistEnv env = read_dist_env();
  if (!env.distributed()) return std::make_shared<train::LocalWorld>();
  ProcessGroupConfig pc;
  pc.backend = cfg.backend;
  pc.timeout = std::chrono::seconds(cfg.timeout_s);
  return std::make_shared<C10dWorld>(env, pc);
}

void configure_trainer(train::TrainerSetup& setup, const config::RunConfig& cfg) {
  if (!setup.world || setup.world->size() <= 1) return;
  auto world = std::dynamic_pointer_cast<C10dWorld>(setup.world);
  if (!world) throw Error("configure_trainer: a multi-rank World that is not a C10dWorld");
  if (cfg.dist.zero1) {
    setup.grad_sync = std::make_unique<train::NoGradSync>();
    setup.make_optimizer = [world](const train::NamedParameters& params, const train::AdamWConfig& oc) {
      return std::unique_ptr<train::ParamOptimizer>(std::make_unique<ShardedAdamW>(world, params, oc));
    };
  } else {
    setup.grad_sync = std::make_unique<BucketedGradSync>(world, cfg.dist.bucket_mb);
  }
}

}  // namespace robometer::dist
