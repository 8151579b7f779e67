#include <gtest/gtest.h>

#include <fstream>

#include "common/test_util.h"
#include "robometer/config/loader.h"
#include "robometer/core/error.h"

using robometer::ConfigError;
using namespace robometer::config;
using robometer::test::TempDir;

namespace {

std::string write(const TempDir& d, const std::string& name, const std::string& text) {
  const auto p = (d / name).string();
  std::ofstream(p) << text;
  return p;
}

// Runs load_run_config and returns the ConfigError message ("" if it loaded).
std::string error_of(const std::string& path, const std::vector<std::string>& ov = {}) {
  try {
    load_run_config(path, ov);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Config, DefaultsThenFileThenOverrides) {
  TempDir d;
  write(d, "base.yaml", "train:\n  lr: 0.001\n  max_steps: 50\nmodel:\n  dtype: bfloat16\n");
  const auto main = write(d, "run.yaml", "defaults: [base.yaml]\ntrain:\n  max_steps: 70\n");
  const auto r = load_run_config(main, {"train.batch_size=3", "data.strategy_ratios.reverse=0"});
  EXPECT_DOUBLE_EQ(r.config.train.lr, 0.001);  // from defaults
  EXPECT_EQ(r.config.train.max_steps, 70);     // file wins over defaults
  EXPECT_EQ(r.config.train.batch_size, 3);     // override wins over file
  EXPECT_EQ(r.config.model.dtype, "bfloat16");
  EXPECT_DOUBLE_EQ(r.config.data.strategy_ratios.reverse, 0.0);
  EXPECT_DOUBLE_EQ(r.config.data.strategy_ratios.rewind, 1.0);  // untouched default
  ASSERT_EQ(r.files.size(), 2u);
  EXPECT_NE(r.files[0].find("base.yaml"), std::string::npos);
}

TEST(Config, NestedDefaultsAndListOfStructs) {
  TempDir d;
  write(d, "a.yaml", "train: {seed: 7}\n");
  write(d, "b.yaml", "defaults: [a.yaml]\ntrain: {seed: 8, lr: 0.5}\n");
  const auto main =
      write(d, "c.yaml", "defaults: [b]\ndata:\n  train:\n    - {path: '', weight: 2}\n    - ''\n");
  const auto r = load_run_config(main);
  EXPECT_EQ(r.config.train.seed, 8);
  EXPECT_DOUBLE_EQ(r.config.train.lr, 0.5);
  ASSERT_EQ(r.config.data.train.size(), 2u);
  EXPECT_DOUBLE_EQ(r.config.data.train[0].weight, 2.0);
  EXPECT_DOUBLE_EQ(r.config.data.train[1].weight, 1.0);
}

TEST(Config, UnknownKeyNamesFileLineAndSuggestion) {
  TempDir d;
  const auto p = write(d, "bad.yaml", "train:\n  max_steps: 5\n  lrr: 0.1\n");
  const auto msg = error_of(p);
  EXPECT_NE(msg.find("bad.yaml:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown key 'train.lrr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'train.lr'"), std::string::npos) << msg;
}

TEST(Config, UnknownTopLevelSection) {
  TempDir d;
  const auto p = write(d, "bad.yaml", "trian:\n  lr: 0.1\n");
  const auto msg = error_of(p);
  EXPECT_NE(msg.find("bad.yaml:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("did you mean 'train'"), std::string::npos) << msg;
}

TEST(Config, WrongTypeNamesExpectedType) {
  TempDir d;
  auto msg = error_of(write(d, "t1.yaml", "\ntrain:\n  lr: fast\n"));
  EXPECT_NE(msg.find("t1.yaml:3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lr: expected a number, got 'fast'"), std::string::npos) << msg;
  msg = error_of(write(d, "t2.yaml", "train:\n  max_steps: 1.5\n"));
  EXPECT_NE(msg.find("train.max_steps: expected an integer, got '1.5'"), std::string::npos) << msg;
  msg = error_of(write(d, "t3.yaml", "model:\n  activation_checkpointing: maybe\n"));
  EXPECT_NE(msg.find("t3.yaml:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.activation_checkpointing = 'maybe' is not valid: expected none, full, selective"),
            std::string::npos)
      << msg;
  msg = error_of(write(d, "t4.yaml", "model:\n  freeze: model.visual\n"));
  EXPECT_NE(msg.find("model.freeze: expected a list"), std::string::npos) << msg;
  msg = error_of(write(d, "t5.yaml", "train: 3\n"));
  EXPECT_NE(msg.find("train: expected a mapping"), std::string::npos) << msg;
}

TEST(Config, OutOfRangeNamesWhereTheValueWasSet) {
  TempDir d;
  auto msg = error_of(write(d, "r.yaml", "train:\n  warmup_ratio: 1.5\n"));
  EXPECT_NE(msg.find("r.yaml:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.warmup_ratio = 1.5 is out of range: expected a value in [0, 1]"),
            std::string::npos)
      << msg;
  msg = error_of(write(d, "r2.yaml", "dist:\n  bucket_mb: 0\n"));
  EXPECT_NE(msg.find("expected a value > 0"), std::string::npos) << msg;
  msg = error_of(write(d, "r3.yaml", "train:\n  schedule: exponential\n"));
  EXPECT_NE(msg.find("train.schedule = 'exponential' is not one of: cosine, linear, constant"),
            std::string::npos)
      << msg;
  // An out-of-range override is blamed on the override.
  msg = error_of(write(d, "ok.yaml", "train: {lr: 0.1}\n"), {"train.lr=3"});
  EXPECT_NE(msg.find("override 'train.lr=3'"), std::string::npos) << msg;
}

// Values that would slip past the range checks: integers that do not fit the field (they
// wrapped: 5000000000 became 705032704), NaN (every comparison with it is false).
TEST(Config, OversizedIntegersAndNaNAreRejected) {
  TempDir d;
  const auto ok = write(d, "ok.yaml", "train: {lr: 0.1}\n");
  for (const char* v : {"5000000000", "1e10", "-3000000000"}) {
    const auto msg = error_of(ok, {std::string("train.max_steps=") + v});
    EXPECT_NE(msg.find("does not fit"), std::string::npos) << v << ": " << msg;
    EXPECT_NE(msg.find(v), std::string::npos) << msg;
  }
  const auto msg = error_of(ok, {"train.lr=.nan"});
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train.lr"), std::string::npos) << msg;
}

// A dotted key inside a file and a directory given as the config get messages that say what
// is wrong (a did-you-mean naming the same key; a raw stdio error with exit code 1).
TEST(Config, DottedKeyInAFileAndADirectoryAsTheConfig) {
  TempDir d;
  auto msg = error_of(write(d, "dot.yaml", "train.lr: 0.1\n"));
  EXPECT_NE(msg.find("dot.yaml:1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dotted keys are for command-line overrides only"), std::string::npos) << msg;
  std::filesystem::create_directories(d / "dir.yaml");
  msg = error_of((d / "dir.yaml").string());
  EXPECT_NE(msg.find("dir.yaml' is not a regular file"), std::string::npos) << msg;
}

TEST(Config, MissingFilesAndDefaults) {
  TempDir d;
  auto msg = error_of((d / "nope.yaml").string());
  EXPECT_NE(msg.find("nope.yaml' not found"), std::string::npos) << msg;
  msg = error_of(write(d, "m.yaml", "defaults:\n  - base_missing.yaml\n"));
  EXPECT_NE(msg.find("m.yaml:2: defaults: config file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("base_missing.yaml' not found"), std::string::npos) << msg;
  msg = error_of(write(d, "p.yaml", "model:\n  config_json: /no/such/config.json\n"));
  EXPECT_NE(msg.find("p.yaml:2: model.config_json: path '/no/such/config.json' does not exist"),
            std::string::npos)
      << msg;
  msg = error_of(write(d, "y.yaml", "train: [1, 2\n"));
  EXPECT_NE(msg.find("invalid YAML"), std::string::npos) << msg;
}

TEST(Config, DefaultsCycleIsAnError) {
  TempDir d;
  write(d, "x.yaml", "defaults: [y.yaml]\n");
  const auto msg = error_of(write(d, "y.yaml", "defaults: [x.yaml]\n"));
  EXPECT_NE(msg.find("defaults cycle"), std::string::npos) << msg;
}

TEST(Config, OverrideOfMissingKey) {
  TempDir d;
  const auto p = write(d, "ok.yaml", "train: {lr: 0.1}\n");
  auto msg = error_of(p, {"train.max_step=10"});
  EXPECT_NE(msg.find("override 'train.max_step=10': unknown key 'train.max_step' (did you mean "
                     "'train.max_steps'?)"),
            std::string::npos)
      << msg;
  msg = error_of(p, {"train.lr"});
  EXPECT_NE(msg.find("expected key.sub=value"), std::string::npos) << msg;
}

TEST(Config, PrintRoundTripsThroughYaml) {
  TempDir d;
  RunConfig cfg;
  cfg.train.lr = 3e-4;
  cfg.data.success_cutoffs["bridge"] = 0.9;
  cfg.model.freeze = {"a.", "b."};
  const auto p = write(d, "printed.yaml", to_yaml(cfg));
  const auto back = load_run_config(p).config;
  EXPECT_EQ(to_yaml(back), to_yaml(cfg));
  EXPECT_DOUBLE_EQ(back.train.lr, 3e-4);
  EXPECT_DOUBLE_EQ(back.data.success_cutoffs.at("bridge"), 0.9);
}

TEST(Config, ShippedConfigsValidate) {
  namespace fs = std::filesystem;
  const auto dir = robometer::test::source_dir() / "configs";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".yaml") continue;
    // Dataset paths are produced at run time (synth/ingest); point them at an existing dir.
    const auto cwd = fs::current_path();
    fs::current_path(robometer::test::source_dir());
    EXPECT_NO_THROW(load_run_config(e.path().string(), {"data.train=[]", "data.eval=[]"})) << e.path();
    fs::current_path(cwd);
    ++n;
  }
  EXPECT_GE(n, 1);
}

// dist.shard, and dist.zero1 as its older spelling: zero1 alone means shard: optimizer; zero1
// with another sharding is refused naming both keys and where each was set.
TEST(Config, DistShardAndTheZero1Alias) {
  TempDir d;
  const auto p = write(d, "run.yaml", "dist:\n  zero1: true\n");
  EXPECT_EQ(load_run_config(p).config.dist.shard_mode(), "optimizer");
  EXPECT_EQ(load_run_config(p, {"dist.shard=optimizer"}).config.dist.shard_mode(), "optimizer");
  const auto q = write(d, "plain.yaml", "dist:\n  shard: gradients\n");
  EXPECT_EQ(load_run_config(q).config.dist.shard_mode(), "gradients");
  EXPECT_EQ(load_run_config(q, {"dist.shard=none"}).config.dist.shard_mode(), "none");
  const auto msg = error_of(p, {"dist.shard=gradients"});
  EXPECT_NE(msg.find("run.yaml:2"), std::string::npos) << msg;            // where zero1 was set
  EXPECT_NE(msg.find("dist.shard=gradients"), std::string::npos) << msg;  // the override
  EXPECT_NE(msg.find("conflicts"), std::string::npos) << msg;
  EXPECT_NE(error_of(q, {"dist.shard=zero3"}).find("not one of"), std::string::npos);
  // The resolved config a run writes (both keys present) loads back to the same mode.
  const auto r = write(d, "resolved.yaml", to_yaml(load_run_config(p).config));
  EXPECT_EQ(load_run_config(r).config.dist.shard_mode(), "optimizer");
}

TEST(Config, ActivationCheckpointingPlansAndBooleanAliases) {
  TempDir d;
  for (const char* v : {"none", "full", "selective", "12", "true", "false", "On"}) {
    const auto p = write(d, "ac.yaml", std::string("model:\n  activation_checkpointing: ") + v + "\n");
    EXPECT_EQ(error_of(p), "") << v;
    EXPECT_EQ(load_run_config(p).config.model.activation_checkpointing, v);
  }
  EXPECT_EQ(load_run_config(write(d, "e.yaml", "train:\n  lr: 0.1\n"), {"model.activation_checkpointing=4"})
                .config.model.activation_checkpointing,
            "4");
  auto msg = error_of(write(d, "bad.yaml", "train:\n  lr: 0.1\n"), {"model.activation_checkpointing=-2"});
  EXPECT_NE(msg.find("model.activation_checkpointing = '-2' is not valid"), std::string::npos) << msg;
  msg = error_of(write(d, "bad2.yaml", "model:\n  activation_checkpointing: [full]\n"));
  EXPECT_NE(msg.find("model.activation_checkpointing: expected a string"), std::string::npos) << msg;
}
