// The training loop on a tiny in-process synth dataset: the NaN guard (skipped steps leave the
// parameters alone, training goes on; too many in a row abort with a clear Error).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/test_util.h"
#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"
#include "robometer/data/options_from_config.h"
#include "robometer/data/synth.h"
#include "robometer/io/xxhash64.h"
#include "robometer/train/metrics_log.h"
#include "robometer/train/options_from_config.h"
#include "robometer/train/trainer.h"

using robometer::test::TempDir;
namespace fs = std::filesystem;
namespace train = robometer::train;

namespace {

class TrainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    robometer::data::SynthOptions o;
    o.train_episodes = 8;
    o.eval_episodes = 0;
    o.size = 32;
    o.min_frames = 8;
    o.max_frames = 10;
    robometer::data::write_synth_dataset((dir_->path() / "synth").string(), o);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static robometer::config::RunConfig config(const fs::path& run_dir, int64_t steps,
                                             const std::vector<std::string>& extra = {}) {
    const auto src = robometer::test::source_dir();
    std::vector<std::string> ov = {
        "data.train=[{path: " + (dir_->path() / "synth" / "train").string() + ", weight: 1}]",
        "data.eval=[]",
        "data.resize={mode: exact, width: 32, height: 32}",
        "data.num_workers=1",
        "model.config_json=" + (src / "configs" / "models" / "tiny.json").string(),
        "train.max_steps=" + std::to_string(steps),
        "train.batch_size=2",
        "train.grad_accum=1",
        "train.warmup_ratio=0",  // the first step already moves the weights
        "train.eval_every=0",
        "train.checkpoint_every=0",
        "output.tensorboard=false",
        "output.run_dir=" + run_dir.string()};
    ov.insert(ov.end(), extra.begin(), extra.end());
    return robometer::config::load_run_config((src / "configs" / "tiny.yaml").string(), ov).config;
  }

  static std::vector<at::Tensor> snapshot(train::Trainer& t) {
    std::vector<at::Tensor> out;
    for (const auto& p : t.model().model->parameters()) out.push_back(p.detach().clone());
    return out;
  }
  static bool same(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!at::equal(a[i], b[i])) return false;
    return true;
  }

  static TempDir* dir_;
};

TempDir* TrainerTest::dir_ = nullptr;

void poison(train::LossTerms& terms) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  terms.total = terms.total * nan;
  terms.total_value = nan;
}

TEST_F(TrainerTest, NonFiniteStepsAreSkippedCountedAndLeaveParametersUnchanged) {
  TempDir run;
  // Steps are 0-based in the hook: poison the 2nd and 4th optimizer steps.
  const std::set<int64_t> bad = {1, 3};
  train::TrainerSetup setup;
  setup.progress_bar = false;
  train::Trainer* trainer = nullptr;
  std::vector<std::vector<at::Tensor>> before(6);  // parameters seen when step s begins
  setup.loss_hook = [&](int64_t step, train::LossTerms& terms) {
    before.at(step) = snapshot(*trainer);
    if (bad.count(step)) poison(terms);
  };
  train::Trainer t(config(run.path(), 5), std::move(setup));
  trainer = &t;
  const auto summary = t.fit();
  EXPECT_EQ(summary.last_step, 5);
  EXPECT_EQ(summary.skipped_steps, 2);
  EXPECT_TRUE(std::isfinite(summary.last_loss));

  const auto after = snapshot(t);
  // A skipped step changes nothing; a good one does (else this test could not fail).
  EXPECT_TRUE(same(before[1], before[2])) << "parameters changed across the skipped step 2";
  EXPECT_TRUE(same(before[3], before[4])) << "parameters changed across the skipped step 4";
  EXPECT_FALSE(same(before[0], before[1]));
  EXPECT_FALSE(same(before[2], before[3]));
  EXPECT_FALSE(same(before[4], after));

  // The log counts them and has every step.
  const auto recs = train::MetricsLog::read(run.path() / "metrics.jsonl");
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs[0]["skipped_steps"].get<int64_t>(), 0);
  EXPECT_EQ(recs[1]["skipped_steps"].get<int64_t>(), 1);
  EXPECT_TRUE(recs[1]["loss"].is_null());  // NaN is written as null
  EXPECT_EQ(recs[4]["skipped_steps"].get<int64_t>(), 2);
}

TEST_F(TrainerTest, TooManyConsecutiveNonFiniteStepsAbortWithAClearError) {
  TempDir run;
  train::TrainerSetup setup;
  setup.progress_bar = false;
  int64_t calls = 0;
  setup.loss_hook = [&](int64_t step, train::LossTerms& terms) {
    ++calls;
    if (step >= 1) poison(terms);
  };
  train::Trainer t(config(run.path(), 10, {"train.nan_abort_after=3"}), std::move(setup));
  try {
    t.fit();
    FAIL() << "fit() returned although every step from the 2nd on was NaN";
  } catch (const robometer::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("3 consecutive steps"), std::string::npos) << msg;
    EXPECT_NE(msg.find("train.nan_abort_after"), std::string::npos) << msg;
  }
  EXPECT_EQ(calls, 4);  // one good step, then three bad ones
}

// The model config.json goes into each checkpoint as it was when the model was built: removing
// the file mid-run must not leave empty config.json files in later checkpoints.
TEST_F(TrainerTest, CheckpointCarriesTheConfigJsonReadAtStart) {
  TempDir run, cfgdir;
  const fs::path tiny = robometer::test::source_dir() / "configs" / "models" / "tiny.json";
  const fs::path copy = cfgdir / "tiny.json";
  fs::copy_file(tiny, copy);
  train::TrainerSetup setup;
  setup.progress_bar = false;
  train::Trainer t(config(run.path(), 2, {"model.config_json=" + copy.string()}), std::move(setup));
  fs::remove(copy);
  const auto summary = t.fit();
  std::ifstream a(tiny), b(fs::path(summary.last_checkpoint) / "config.json");
  const std::string want((std::istreambuf_iterator<char>(a)), {});
  const std::string got((std::istreambuf_iterator<char>(b)), {});
  EXPECT_FALSE(want.empty());
  EXPECT_EQ(got, want);
}

// --resume none starts fresh like no flag; --resume DIR of another run is refused when this
// run_dir already holds checkpoints (they would be overwritten and pruned); a broken
// trainer_state.json names the file and the key.
TEST_F(TrainerTest, ResumeSpecsAndBrokenStateErrors) {
  TempDir first, second;
  auto run = [&](const fs::path& dir, int64_t steps, const std::string& resume) {
    train::TrainerSetup setup;
    setup.progress_bar = false;
    setup.resume = resume;
    train::Trainer t(config(dir, steps), std::move(setup));
    return t.fit();
  };
  const auto a = run(first.path(), 2, "none");
  EXPECT_EQ(a.first_step, 0);
  run(second.path(), 1, "");
  robometer::test::expect_throw_contains([&] { run(second.path(), 3, a.last_checkpoint); },
                                         {"another run", second.path().string()});
  const auto c = run(second.path() / "fresh", 3, a.last_checkpoint);  // empty run_dir: allowed
  EXPECT_EQ(c.first_step, 2);
  EXPECT_EQ(c.last_step, 3);

  const fs::path state = fs::path(a.last_checkpoint) / "trainer_state.json";
  std::string text;
  {
    std::ifstream in(state);
    text.assign((std::istreambuf_iterator<char>(in)), {});
  }
  const auto pos = text.find("\"world_size\": 1");
  ASSERT_NE(pos, std::string::npos) << text;
  text.replace(pos, 15, "\"world_size\":{}");  // same length: COMPLETE's size still holds
  std::ofstream(state, std::ios::trunc) << text;
  // ... and its recorded hash too, as a writer that wrote the bad value itself would have.
  const fs::path complete = fs::path(a.last_checkpoint) / "COMPLETE";
  nlohmann::json marker;
  {
    std::ifstream in(complete);
    marker = nlohmann::json::parse(in);
  }
  marker["files"]["trainer_state.json"]["xxh64"] =
      robometer::io::xxh64_hex(robometer::io::xxh64_file(state.string()));
  std::ofstream(complete, std::ios::trunc) << marker.dump();
  robometer::test::expect_throw_contains([&] { run(first.path(), 4, "auto"); },
                                         {"trainer_state.json", "'world_size' must be an integer, got {}"});
}

// The optimizer the trainer builds (and `bench model-step` too) exempts the heads' LayerNorms.
TEST_F(TrainerTest, OptimizerOptionsExemptTheHeadsLayerNormsFromDecay) {
  TempDir run;
  train::TrainerSetup setup;
  setup.progress_bar = false;
  const auto cfg = config(run.path(), 1);
  train::Trainer t(cfg, std::move(setup));
  const auto oc = train::adamw_config_from_config(cfg, *t.model().model);
  for (const char* head : {"progress_head", "success_head", "preference_head"})
    for (const char* p : {".1.weight", ".1.bias"})
      EXPECT_NE(std::find(oc.no_decay_names.begin(), oc.no_decay_names.end(), std::string(head) + p),
                oc.no_decay_names.end())
          << head << p;
}

void flip_last_byte(const fs::path& p) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-1, std::ios::end);
  char c;
  f.get(c);
  f.seekp(-1, std::ios::end);
  f.put(static_cast<char>(c ^ 0x5a));
}

// A NaN weight makes every loss term NaN: the loss used to read 0 with grad norm 0, so nothing
// counted as skipped and nan_abort_after never fired. Every such step is a skipped step now.
TEST_F(TrainerTest, EveryLossTermNaNIsASkippedStepAndAbortsAfterNanAbortAfter) {
  for (const std::string rule : {"original", "per_term"}) {
    SCOPED_TRACE(rule);
    TempDir run;
    train::TrainerSetup setup;
    setup.progress_bar = false;
    train::Trainer t(config(run.path(), 10, {"train.nan_abort_after=3", "train.nan_rule=" + rule}),
                     std::move(setup));
    bool poisoned = false;
    {
      torch::NoGradGuard no_grad;
      for (auto& p : t.model().model->named_parameters())
        if (p.key().find("embed_tokens") != std::string::npos) {
          p.value().fill_(std::numeric_limits<float>::quiet_NaN());
          poisoned = true;
        }
    }
    ASSERT_TRUE(poisoned);
    robometer::test::expect_throw_contains([&] { t.fit(); },
                                           {"3 consecutive steps", "train.nan_abort_after"});
    const auto recs = train::MetricsLog::read(run.path() / "metrics.jsonl");
    ASSERT_EQ(recs.size(), 2u);  // the third bad step aborts before it is logged
    EXPECT_EQ(recs[1]["skipped_steps"].get<int64_t>(), 2);
    EXPECT_TRUE(recs[1]["loss"].is_null()) << recs[1].dump();  // not 0.0
  }
}

// Flipped bytes inside a checkpoint's optimizer data: resume auto skips it (naming the file)
// and continues from the previous good checkpoint; with every checkpoint damaged it refuses,
// unless --resume none.
TEST_F(TrainerTest, DamagedCheckpointIsSkippedAndAllDamagedRefusesResumeAuto) {
  auto run = [&](const fs::path& dir, int64_t steps, const std::string& resume) {
    train::TrainerSetup setup;
    setup.progress_bar = false;
    setup.resume = resume;
    train::Trainer t(config(dir, steps, {"train.checkpoint_every=2"}), std::move(setup));
    return t.fit();
  };
  TempDir a;
  run(a.path(), 4, "");
  const fs::path ck = a.path() / "checkpoints";
  flip_last_byte(ck / "step_00000004" / "optimizer.safetensors");
  const auto resumed = run(a.path(), 5, "auto");
  EXPECT_EQ(resumed.first_step, 2);
  EXPECT_EQ(resumed.last_step, 5);

  TempDir b;
  run(b.path(), 2, "");
  flip_last_byte(b.path() / "checkpoints" / "step_00000002" / "model.safetensors");
  robometer::test::expect_throw_contains(
      [&] { run(b.path(), 3, "auto"); },
      {"no usable checkpoint", "step_00000002", "model.safetensors", "--resume none"});
  robometer::test::expect_throw_contains(
      [&] { run(b.path(), 3, b.path().string() + "/checkpoints/step_00000002"); },
      {"model.safetensors", "content hash"});
  const auto fresh = run(b.path(), 3, "none");
  EXPECT_EQ(fresh.first_step, 0);
  EXPECT_EQ(fresh.last_step, 3);
}

// The processor's per-sample half runs in the loader's workers; whatever the worker count, the
// model sees the same bytes as when the training thread processed the raw frames itself.
TEST_F(TrainerTest, InputsPreparedInLoaderWorkersAreByteIdenticalWithAnyWorkerCount) {
  TempDir run;
  const auto cfg = config(run.path(), 1);
  train::TrainerSetup setup;
  setup.progress_bar = false;
  train::Trainer t(cfg, std::move(setup));
  const auto& proc = *t.model().processor;
  const auto index = train::load_index(cfg.data.train, "train");
  auto batches = [&](int workers, bool prepare) {
    auto o = robometer::data::loader_options_from_config(cfg, false, 0, 1);
    o.num_workers = workers;
    o.batch_size = 2;
    if (prepare) o.prepare = train::prepare_pair_prompt(proc);
    robometer::data::Loader loader(index, o);
    std::vector<robometer::model::ModelInputs> out;
    for (int i = 0; i < 3; ++i) {
      auto b = loader.next();
      EXPECT_TRUE(b.has_value());
      if (!b) break;
      for (const auto& smp : b->samples) EXPECT_EQ(smp.prepared.has_value(), prepare);
      out.push_back(train::host_pair_inputs(proc, *b));
    }
    return out;
  };
  const auto reference = batches(0, false);  // the processor on this thread, from the frames
  ASSERT_EQ(reference.size(), 3u);
  for (int workers : {0, 1, 4}) {
    const auto got = batches(workers, true);
    ASSERT_EQ(got.size(), reference.size()) << workers << " workers";
    for (size_t i = 0; i < got.size(); ++i) {
      const auto &a = got[i], &b = reference[i];
      SCOPED_TRACE("workers " + std::to_string(workers) + ", batch " + std::to_string(i));
      for (auto [x, y] :
           {std::pair{a.input_ids, b.input_ids}, std::pair{a.attention_mask, b.attention_mask},
            std::pair{a.pixel_values, b.pixel_values}, std::pair{a.image_grid_thw, b.image_grid_thw},
            std::pair{a.prog_positions, b.prog_positions}, std::pair{a.pref_positions, b.pref_positions}}) {
        ASSERT_EQ(x.sizes(), y.sizes());
        ASSERT_EQ(x.scalar_type(), y.scalar_type());
        EXPECT_EQ(std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()), 0);
      }
    }
  }
}

// The same run with the processor in the loader and on the training thread: bitwise the same
// losses, gradient norms and final weights.
TEST_F(TrainerTest, ProcessorInTheLoaderTrainsBitwiseLikeTheProcessorOnTheTrainingThread) {
  auto run = [&](bool in_loader, int workers) {
    TempDir dir;
    train::TrainerSetup setup;
    setup.progress_bar = false;
    setup.prepare_in_loader = in_loader;
    train::Trainer t(config(dir.path(), 20, {"data.num_workers=" + std::to_string(workers)}),
                     std::move(setup));
    std::vector<double> trace;
    for (int i = 0; i < 20; ++i) {
      const auto r = t.step_once();
      trace.push_back(r.terms.total_value);
      trace.push_back(r.grad_norm);
      trace.push_back(static_cast<double>(r.tokens));
      EXPECT_GE(r.times.input_s, 0.0);
      EXPECT_LE(r.times.input_s, r.times.forward_s);
    }
    return std::pair{trace, snapshot(t)};
  };
  const auto before = run(false, 1);
  const auto after = run(true, 2);
  ASSERT_EQ(before.first.size(), after.first.size());
  for (size_t i = 0; i < before.first.size(); ++i)
    EXPECT_EQ(before.first[i], after.first[i]) << "value " << i % 3 << " of step " << i / 3;
  EXPECT_TRUE(same(before.second, after.second));
}

// The host-read budget of a training step (core::HostSyncCounter): the model forward on the
// processor's host inputs reads nothing back; what the objective and optimizer still read is
// listed here, so a new host read in the step (a sync per read on a GPU) fails this test.
TEST_F(TrainerTest, TheForwardReadsNothingBackAndTheStepStaysWithinItsHostReadBudget) {
  TempDir dir;
  train::TrainerSetup setup;
  setup.progress_bar = false;
  train::Trainer t(config(dir.path(), 3, {"train.grad_accum=2"}), std::move(setup));
  auto& counter = robometer::core::HostSyncCounter::instance();
  t.step_once();  // warm-up (first-use paths)

  auto batch = t.train_loader().next();
  ASSERT_TRUE(batch.has_value());
  const auto in = train::host_pair_inputs(*t.model().processor, *batch);
  const int64_t before_forward = counter.total();
  const auto out = t.model().model->forward(in);
  EXPECT_TRUE(out.progress.defined());
  EXPECT_EQ(counter.total() - before_forward, 0) << "the model forward read a computed value on the host";

  const auto sites_before = counter.by_site();
  const auto r = t.step_once();
  std::map<std::string, int64_t> got;
  for (const auto& [site, n] : counter.by_site()) {
    const auto it = sites_before.find(site);
    const int64_t d = n - (it == sites_before.end() ? 0 : it->second);
    if (d > 0) got[site] = d;
  }
  int64_t sum = 0;
  for (const auto& [site, n] : got) sum += n;
  EXPECT_EQ(r.host_syncs, sum);
  // Per micro-batch (2 here): the objective's loss values and counts; per step: the optimizer's
  // gradient norm and clip coefficient (the NaN guard and the log need them on the host).
  const std::map<std::string, int64_t> budget = {
      {"objective: loss term value", 2 * 3},    {"objective: preference accuracy", 2},
      {"objective: progress weight sum", 2},    {"objective: success frame count", 2},
      {"objective: supervised frame count", 2}, {"objective: supervised sample count", 2},
      {"objective: total loss value", 2},       {"optimizer: clip coefficient", 1},
      {"optimizer: gradient norm", 1}};
  EXPECT_EQ(got, budget);
  for (const auto& [site, n] : got) EXPECT_EQ(site.rfind("model", 0), std::string::npos) << site;
}

// train.packing: the same run with the batch's sequences laid end to end trains like the padded
// one (to rounding: per-sequence attention calls sum in another order).
TEST_F(TrainerTest, PackingTrainsLikeThePaddedBatch) {
  auto run = [&](bool packing) {
    TempDir dir;
    train::TrainerSetup setup;
    setup.progress_bar = false;
    train::Trainer t(config(dir.path(), 20, {std::string("train.packing=") + (packing ? "true" : "false")}),
                     std::move(setup));
    std::vector<double> losses;
    for (int i = 0; i < 20; ++i) losses.push_back(t.step_once().terms.total_value);
    return losses;
  };
  const auto padded = run(false), packed = run(true);
  ASSERT_EQ(padded.size(), packed.size());
  for (size_t i = 0; i < padded.size(); ++i)
    EXPECT_NEAR(packed[i], padded[i], 1e-5 * std::abs(padded[i])) << "step " << i + 1;
}

// train.max_tokens_per_batch: a micro-batch over the budget runs as several forwards within it,
// and the step is that of the whole micro-batch (the same sums over the same denominators, to
// summation order), padded and packed, with gradient accumulation.
TEST_F(TrainerTest, ATokenBudgetSplitsTheMicroBatchAndTrainsLikeTheWholeBatch) {
  // Without head dropout: its masks are drawn per forward, so more forwards draw other masks
  // (the same distribution, not the same numbers).
  TempDir models;
  std::string model_json;
  {
    std::ifstream f(robometer::test::source_dir() / "configs" / "models" / "tiny.json");
    model_json.assign(std::istreambuf_iterator<char>(f), {});
  }
  const std::string drop = "\"head_dropout\": 0.1";
  const auto at = model_json.find(drop);
  ASSERT_NE(at, std::string::npos) << "configs/models/tiny.json changed: update this test";
  model_json.replace(at, drop.size(), "\"head_dropout\": 0.0");
  const fs::path nodrop = models.path() / "tiny_nodrop.json";
  std::ofstream(nodrop) << model_json;
  for (const bool packing : {false, true}) {
    const std::string pack = std::string("train.packing=") + (packing ? "true" : "false");
    auto run = [&](int64_t budget, int64_t* forwards, int64_t* largest) {
      TempDir dir;
      train::TrainerSetup setup;
      setup.progress_bar = false;
      train::Trainer t(config(dir.path(), 8,
                              {pack, "model.config_json=" + nodrop.string(), "train.batch_size=4",
                               "train.grad_accum=2", "train.max_tokens_per_batch=" + std::to_string(budget)}),
                       std::move(setup));
      std::vector<double> trace;
      for (int i = 0; i < 8; ++i) {
        const auto r = t.step_once();
        trace.push_back(r.terms.total_value);
        trace.push_back(r.terms.preference_accuracy);
        trace.push_back(r.grad_norm);
        trace.push_back(static_cast<double>(r.tokens));
        *forwards = std::max(*forwards, r.forwards);
        *largest = std::max(*largest, r.max_forward_tokens);
      }
      return std::pair{trace, snapshot(t)};
    };
    int64_t whole_forwards = 0, whole_tokens = 0;
    const auto whole = run(0, &whole_forwards, &whole_tokens);
    EXPECT_EQ(whole_forwards, 2) << pack;  // one per micro-batch
    // A budget of about half the largest whole forward: every micro-batch needs two or more.
    const int64_t budget = whole_tokens / 2;
    int64_t split_forwards = 0, split_tokens = 0;
    const auto split = run(budget, &split_forwards, &split_tokens);
    EXPECT_GE(split_forwards, 4) << pack;
    EXPECT_LE(split_tokens, budget) << pack;
    ASSERT_EQ(whole.first.size(), split.first.size());
    for (size_t i = 0; i < whole.first.size(); ++i)
      EXPECT_NEAR(split.first[i], whole.first[i], 1e-5 * std::max(1.0, std::abs(whole.first[i])))
          << pack << ": value " << i % 4 << " of step " << i / 4 + 1;
    // Weights after 8 AdamW steps at lr 1e-3: within 1% of one step's update (Adam's normalised
    // step turns a rounding-level gradient difference on a near-zero gradient into ~1e-6).
    ASSERT_EQ(whole.second.size(), split.second.size());
    for (size_t i = 0; i < whole.second.size(); ++i)
      EXPECT_TRUE(at::allclose(split.second[i], whole.second[i], 1e-4, 1e-5))
          << pack << ": parameter " << i << " max |diff| "
          << (split.second[i] - whole.second[i]).abs().max().item<double>() << " max |p| "
          << whole.second[i].abs().max().item<double>() << " numel " << whole.second[i].numel();
    // Below one sample: each sample runs alone.
    int64_t single_forwards = 0, single_tokens = 0;
    run(1, &single_forwards, &single_tokens);
    EXPECT_EQ(single_forwards, 8) << pack;
  }
}

}  // namespace
