// Training works: the tiny recipe, trained for a few dozen steps on a handful of synth episodes,
// lowers the loss and raises the preference accuracy on fixed pairs of those same episodes.
// (The demo shows held-out generalisation in 2000 steps; this is the quick check that the whole
// loop — sampler, labels, processor, model, objective, backward, AdamW, schedule — learns.)
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "robometer/config/loader.h"
#include "robometer/data/synth.h"
#include "robometer/train/metrics_log.h"
#include "robometer/train/trainer.h"

using robometer::test::TempDir;
namespace fs = std::filesystem;
namespace train = robometer::train;

TEST(Learning, TinyModelLowersLossAndRaisesPreferenceAccuracyOnItsPairs) {
  TempDir dir;
  robometer::data::SynthOptions o;
  o.tasks = 1;  // one task: rewind/reverse pairs are learnable without reading the instruction
  o.train_episodes = 8;
  o.eval_episodes = 0;
  o.size = 32;
  o.min_frames = 12;
  o.max_frames = 16;
  robometer::data::write_synth_dataset((dir.path() / "synth").string(), o);
  const std::string train_set = (dir.path() / "synth" / "train").string();

  const auto src = robometer::test::source_dir();
  const int steps = 300, eval_every = 50;
  // The "eval" set is the training set itself with the loader's fixed eval seed: the same
  // eval_batches pairs are scored at every eval, so the curve compares like with like.
  const std::vector<std::string> ov = {
      "data.train=[{path: " + train_set + ", weight: 1}]",
      "data.eval=[{path: " + train_set + ", weight: 1}]",
      "data.resize={mode: exact, width: 32, height: 32}",
      "data.frames_per_trajectory=4",
      "data.num_workers=1",
      "data.samples_per_epoch=64",  // epochs of 8 batches over the 8 episodes
      "data.strategy_ratios={rewind: 1, suboptimal: 0, different_task: 0, reverse: 1}",
      "model.config_json=" + (src / "configs" / "models" / "tiny.json").string(),
      "train.max_steps=" + std::to_string(steps),
      "train.batch_size=8",
      "train.eval_every=" + std::to_string(eval_every),
      "train.eval_batches=4",
      "train.checkpoint_every=0",
      "output.tensorboard=false",
      "output.run_dir=" + (dir.path() / "run").string()};
  auto cfg = robometer::config::load_run_config((src / "configs" / "tiny.yaml").string(), ov).config;
  train::TrainerSetup setup;
  setup.progress_bar = false;
  train::Trainer t(std::move(cfg), std::move(setup));
  const auto summary = t.fit();
  ASSERT_EQ(summary.last_step, steps);
  EXPECT_EQ(summary.skipped_steps, 0);

  std::vector<double> loss, acc;
  for (const auto& r : train::MetricsLog::read(dir.path() / "run" / "metrics.jsonl")) {
    if (!r.contains("eval_loss")) continue;
    loss.push_back(r["eval_loss"].get<double>());
    acc.push_back(r["eval_preference_accuracy"].get<double>());
  }
  ASSERT_EQ(loss.size(), static_cast<size_t>(steps / eval_every));
  for (size_t i = 0; i < loss.size(); ++i)
    std::printf("eval after step %3zu: loss %.4f  preference accuracy %.3f\n", (i + 1) * eval_every, loss[i],
                acc[i]);
  EXPECT_LT(loss.back(), 0.8 * loss.front()) << "the loss on the fixed pairs did not fall by 20%";
  EXPECT_GE(acc.back(), acc.front() + 0.25) << "preference accuracy did not rise";
  EXPECT_GE(acc.back(), 0.85);
}
