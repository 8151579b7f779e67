#include "robometer/dist/setup.h"

#include "robometer/core/error.h"
#include "robometer/dist/env.h"
#include "robometer/dist/grad_sync.h"
#include "robometer/dist/process_group.h"
#include "robometer/dist/sharded_adamw.h"
#include "robometer/dist/sharded_grad_sync.h"

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
  if (!setup.world || setup.world->size() <= 1) return;  // one process: nothing to shard
  auto world = std::dynamic_pointer_cast<C10dWorld>(setup.world);
  if (!world) throw Error("configure_trainer: a multi-rank World that is not a C10dWorld");
  const std::string mode = cfg.dist.shard_mode();
  if (mode == "none") {
    setup.grad_sync = std::make_unique<BucketedGradSync>(world, cfg.dist.bucket_mb);
    return;
  }
  if (mode == "parameters")
    throw ConfigError("dist.shard = parameters (ZeRO-3) is not implemented yet; use gradients (ZeRO-2)");
  // optimizer (ZeRO-1) / gradients (ZeRO-2): the gradient shard is reduced during backward by
  // the grad sync, which the optimizer reads (the trainer owns both; the optimizer is
  // destroyed first).
  auto sync = std::make_unique<ShardedGradSync>(
      world, mode == "gradients" ? ShardedGradSync::Mode::Gradients : ShardedGradSync::Mode::Optimizer,
      cfg.dist.bucket_mb);
  ShardedGradSync* grads = sync.get();
  setup.grad_sync = std::move(sync);
  const double gather_mb = cfg.dist.bucket_mb;
  setup.make_optimizer = [world, grads, gather_mb](const train::NamedParameters& params,
                                                   const train::AdamWConfig& oc) {
    return std::unique_ptr<train::ParamOptimizer>(
        std::make_unique<ShardedAdamW>(world, params, oc, grads, gather_mb));
  };
}

}  // namespace robometer::dist
