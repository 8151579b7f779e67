// `robometer train CONFIG [key=value ...] [--resume auto|DIR]`
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "robometer/cli/command.h"
#include "robometer/cli/run_setup.h"
#include "robometer/config/loader.h"
#include "robometer/train/trainer.h"

namespace robometer::cli {
namespace {

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string resume;
  bool no_progress = false;
};

extern "C" void on_stop_signal(int sig) { train::stop_signal().store(sig); }

int run_train(const TrainArgs& a) {
  auto loaded = config::load_run_config(a.config, a.overrides);
  auto& cfg = loaded.config;
  RunContext ctx = start_run(cfg, /*log_to_run_dir=*/true);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);

  train::TrainerSetup setup = make_trainer_setup(cfg, ctx);
  setup.resume = a.resume;
  setup.progress_bar = !a.no_progress;
  train::Trainer trainer(cfg, std::move(setup));
  const auto s = trainer.fit();
  if (ctx.world->is_main()) {
    std::printf("train: steps %lld..%lld%s, last loss %.4f", static_cast<long long>(s.first_step),
                static_cast<long long>(s.last_step), s.interrupted ? " (interrupted)" : "", s.last_loss);
    if (s.eval_loss >= 0)
      std::printf(", eval loss %.4f, eval preference accuracy %.3f", s.eval_loss, s.eval_preference_accuracy);
    std::printf("\ncheckpoint: %s\n", s.last_checkpoint.c_str());
  }
  return 0;
}

Registrar reg("train", "Train or fine-tune a reward model from a YAML config",
              [](CLI::App& sub, int& exit_code) {
                static TrainArgs a;
                sub.add_option("config", a.config, "YAML config (see configs/)")->required();
                sub.add_option("overrides", a.overrides, "key.sub=value overrides");
                sub.add_option(
                    "--resume", a.resume,
                    "auto (latest complete checkpoint of output.run_dir, if any) or a checkpoint DIR");
                sub.add_flag("--no-progress", a.no_progress, "plain log lines instead of a progress bar");
                sub.callback([&exit_code] { exit_code = run_train(a); });
              });

}  // namespace
}  // namespace robometer::cli
