// Checkpoint directories: round trip, crash leftovers ignored and reported, keep_last_n,
// explicit incomplete directories rejected; RNG state capture/restore.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/train/checkpoint.h"
#include "robometer/train/rng_state.h"

using namespace robometer;
using namespace robometer::train;
using robometer::test::TempDir;

namespace {

fs::path save(const fs::path& run, int64_t step, int keep = 0) {
  CheckpointWriter w(run, step);
  w.write_tensors(checkpoint_files::kModel,
                  {{"w", at::full({2, 3}, static_cast<float>(step))}, {"b", at::arange(3)}});
  w.write_json(checkpoint_files::kTrainerState, {{"step", step}});
  w.write_text(checkpoint_files::kConfig, "lr: 2.0e-5\n");
  return w.commit(keep);
}

// Flips one byte at `offset` from the end (inside the tensor data: safetensors put the header first).
void flip_byte(const fs::path& p, int64_t offset_from_end = 1) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(-offset_from_end, std::ios::end);
  char c;
  f.get(c);
  f.seekp(-offset_from_end, std::ios::end);
  f.put(static_cast<char>(c ^ 0x5a));
}

bool mentions(const std::vector<std::string>& lines, const std::string& what) {
  for (const auto& l : lines)
    if (l.find(what) != std::string::npos) return true;
  return false;
}

void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST(Checkpoint, DirName) {
  EXPECT_EQ(checkpoint_dir_name(42), "step_00000042");
  EXPECT_EQ(parse_checkpoint_dir_name("step_00000042"), 42);
  EXPECT_FALSE(parse_checkpoint_dir_name("step_42").has_value());
  EXPECT_FALSE(parse_checkpoint_dir_name(".tmp-step_00000042-1").has_value());
}

TEST(Checkpoint, RoundTrip) {
  TempDir run;
  const auto dir = save(run.path(), 7);
  EXPECT_EQ(dir, run.path() / "checkpoints" / "step_00000007");
  EXPECT_EQ(slurp(run.path() / "checkpoints" / "latest"), "step_00000007\n");
  EXPECT_TRUE(fs::exists(dir / "COMPLETE"));
  EXPECT_EQ(checkpoint_problem(dir), "");

  auto found = find_resume(run.path(), "auto");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, dir);
  Checkpoint ck(*found);
  EXPECT_EQ(ck.step(), 7);
  EXPECT_TRUE(ck.has(checkpoint_files::kModel));
  EXPECT_FALSE(ck.has(checkpoint_files::kOptimizer));
  auto t = ck.tensors(checkpoint_files::kModel);
  ASSERT_EQ(t.size(), 2u);
  std::map<std::string, at::Tensor> m(t.begin(), t.end());
  EXPECT_TRUE(at::equal(m["w"], at::full({2, 3}, 7.0f)));
  EXPECT_TRUE(at::equal(m["b"], at::arange(3)));
  EXPECT_EQ(ck.json(checkpoint_files::kTrainerState)["step"], 7);
  EXPECT_EQ(ck.text(checkpoint_files::kConfig), "lr: 2.0e-5\n");
  EXPECT_THROW(ck.json(checkpoint_files::kScheduler), Error);
  // No temp dirs left behind.
  for (const auto& e : fs::directory_iterator(run.path() / "checkpoints"))
    EXPECT_EQ(e.path().filename().string().rfind(".tmp-", 0), std::string::npos);
}

TEST(Checkpoint, NothingToResume) {
  TempDir run;
  EXPECT_FALSE(find_resume(run.path(), "auto").has_value());
  EXPECT_FALSE(find_resume(run.path(), "none").has_value());
}

TEST(Checkpoint, HalfWrittenCheckpointsAreIgnoredAndReported) {
  TempDir run;
  save(run.path(), 1);
  const auto good = save(run.path(), 2);
  const auto root = run.path() / "checkpoints";
  // (a) a temp dir of a save that crashed before the rename
  fs::create_directories(root / ".tmp-step_00000003-99999");
  write(root / ".tmp-step_00000003-99999" / "model.safetensors", "partial");
  // (b) a step dir without COMPLETE
  fs::create_directories(root / "step_00000004");
  write(root / "step_00000004" / "model.safetensors", "x");
  // (c) a step dir whose file is shorter than COMPLETE says
  fs::copy(good, root / "step_00000005", fs::copy_options::recursive);
  std::ofstream(root / "step_00000005" / "COMPLETE", std::ios::trunc)
      << R"({"step": 5, "files": {"model.safetensors": 1000000}})";
  // (d) `latest` pointing to a directory that does not exist
  write(root / "latest", "step_00000006\n");
  // (e) ZeRO-1 ranks' staged optimizer shards of a save that never committed
  fs::create_directories(root / ".staging-step_00000007");

  std::vector<std::string> ignored;
  auto found = find_resume(run.path(), "auto", &ignored);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, good);
  ASSERT_EQ(ignored.size(), 5u);
  auto mentions = [&](const std::string& what) {
    for (const auto& l : ignored)
      if (l.find(what) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(mentions(".tmp-step_00000003-99999"));
  EXPECT_TRUE(mentions("step_00000004: no COMPLETE"));
  EXPECT_TRUE(mentions("step_00000005: file model.safetensors has"));
  EXPECT_TRUE(mentions("latest: points to 'step_00000006'"));
  EXPECT_TRUE(mentions(".staging-step_00000007: leftover"));

  // Explicit directories must be complete.
  EXPECT_THROW(find_resume(run.path(), (root / "step_00000004").string()), Error);
  EXPECT_THROW(find_resume(run.path(), (root / "step_00000099").string()), Error);
  try {
    find_resume(run.path(), (root / "step_00000005").string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_EQ(*find_resume(run.path(), good.string()), good);
  EXPECT_THROW(Checkpoint(root / "step_00000004"), Error);
}

TEST(Checkpoint, LatestWinsOverNewerStepFromAnotherTimeline) {
  // A run resumed from step 1 after having reached step 3 writes step 2: `latest` says 2.
  TempDir run;
  save(run.path(), 1);
  save(run.path(), 3);
  save(run.path(), 2);
  EXPECT_EQ(find_resume(run.path(), "auto")->filename(), "step_00000002");
}

TEST(Checkpoint, KeepLastN) {
  TempDir run;
  for (int s = 1; s <= 5; ++s) save(run.path(), s * 10, 2);
  auto scan = scan_checkpoints(run.path());
  ASSERT_EQ(scan.complete.size(), 2u);
  EXPECT_EQ(scan.complete[0].filename(), "step_00000040");
  EXPECT_EQ(scan.complete[1].filename(), "step_00000050");
  EXPECT_TRUE(scan.ignored.empty());
}

TEST(Checkpoint, ResaveSameStepReplaces) {
  TempDir run;
  save(run.path(), 3);
  CheckpointWriter w(run.path(), 3);
  w.write_text("note.txt", "second");
  w.commit();
  Checkpoint ck(run.path() / "checkpoints" / "step_00000003");
  EXPECT_EQ(ck.text("note.txt"), "second");
  EXPECT_FALSE(ck.has(checkpoint_files::kModel));
  // Swapped in whole: nothing of the previous directory is left behind.
  const auto scan = scan_checkpoints(run.path());
  EXPECT_TRUE(scan.ignored.empty()) << scan.ignored.front();
  int entries = 0;
  for (const auto& e : fs::directory_iterator(run.path() / "checkpoints")) entries += e.is_directory();
  EXPECT_EQ(entries, 1);
}

TEST(Checkpoint, AbandonedWriterLeavesNothing) {
  TempDir run;
  fs::path temp;
  {
    CheckpointWriter w(run.path(), 9);
    w.write_text("a.txt", "x");
    temp = w.temp_dir();
    EXPECT_TRUE(fs::exists(temp));
    EXPECT_THROW(w.write_text("../escape", "x"), Error);
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(find_resume(run.path(), "auto").has_value());
}

// COMPLETE records each file's XXH64; bytes changed inside the data (same size, so the size
// check alone passes) make the checkpoint unusable, named with its file, and resume falls back
// to the previous good one.
TEST(Checkpoint, CorruptedContentIsSkippedAndThePreviousOneUsed) {
  TempDir run;
  const auto first = save(run.path(), 1);
  const auto second = save(run.path(), 2);
  const auto third = save(run.path(), 3);
  flip_byte(third / checkpoint_files::kModel);
  {  // an "optimizer" file of step 2, damaged too
    CheckpointWriter w(run.path(), 2);
    w.write_tensors(checkpoint_files::kModel, {{"w", at::full({2, 3}, 2.0f)}});
    w.write_tensors(checkpoint_files::kOptimizer, {{"w.exp_avg", at::randn({64})}});
    w.write_json(checkpoint_files::kTrainerState, {{"step", 2}});
    w.commit();
  }
  flip_byte(second / checkpoint_files::kOptimizer, 17);
  write(run.path() / "checkpoints" / "latest", "step_00000003\n");
  EXPECT_EQ(checkpoint_problem(third), "");  // sizes still match
  EXPECT_NE(checkpoint_content_problem(third).find("model.safetensors has content hash"), std::string::npos)
      << checkpoint_content_problem(third);

  std::vector<std::string> ignored;
  const auto found = find_resume(run.path(), "auto", &ignored);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found, first);
  EXPECT_TRUE(mentions(ignored, "step_00000003: file model.safetensors has content hash"));
  EXPECT_TRUE(mentions(ignored, "step_00000002: file optimizer.safetensors has content hash"));
  robometer::test::expect_throw_contains([&] { find_resume(run.path(), third.string()); },
                                         {"step_00000003", "model.safetensors", "content hash"});
}

TEST(Checkpoint, ChecksumlessCheckpointsOfEarlierVersionsStillResume) {
  TempDir run;
  const auto dir = save(run.path(), 4);
  // COMPLETE as written before hashes were recorded: sizes only.
  auto complete = nlohmann::json::parse(slurp(dir / "COMPLETE"));
  for (auto& [f, entry] : complete["files"].items()) entry = entry["bytes"];
  write(dir / "COMPLETE", complete.dump());
  EXPECT_EQ(checkpoint_content_problem(dir), "");
  EXPECT_EQ(*find_resume(run.path(), "auto"), dir);
}

// Nothing usable among existing checkpoint directories: `--resume auto` refuses (starting from
// step 0 would overwrite them) and names each; --resume none is the way to start afresh.
TEST(Checkpoint, ResumeAutoRefusesWhenEveryCheckpointIsDamaged) {
  TempDir run;
  const auto only = save(run.path(), 5);
  flip_byte(only / checkpoint_files::kModel);
  fs::create_directories(run.path() / "checkpoints" / "step_00000007");  // no COMPLETE
  try {
    find_resume(run.path(), "auto");
    FAIL() << "resume auto accepted a run dir whose checkpoints are all damaged";
  } catch (const ConfigError& e) {
    FAIL() << "a usage error (exit 2); the refusal is a runtime error (exit 1): " << e.what();
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("step_00000005: file model.safetensors has content hash"), std::string::npos) << msg;
    EXPECT_NE(msg.find("step_00000007: no COMPLETE"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--resume none"), std::string::npos) << msg;
  }
  EXPECT_FALSE(find_resume(run.path(), "none").has_value());
  // Leftovers of a save killed before the first checkpoint are no checkpoint: start fresh.
  TempDir first;
  fs::create_directories(first.path() / "checkpoints" / ".tmp-step_00000001-4242");
  EXPECT_FALSE(find_resume(first.path(), "auto").has_value());
}

// trainer_state.json's step must be the directory's: resuming at 29 inside step_00000020 would
// skip 9 steps silently.
TEST(Checkpoint, TrainerStateStepMustMatchTheDirectory) {
  TempDir run;
  const auto good = save(run.path(), 10);
  CheckpointWriter w(run.path(), 20);
  w.write_json(checkpoint_files::kTrainerState, {{"step", 29}});  // hashed as written
  const auto bad = w.commit();
  EXPECT_EQ(checkpoint_content_problem(bad),
            "trainer_state.json says step 29 but COMPLETE and the directory name say 20");
  std::vector<std::string> ignored;
  EXPECT_EQ(*find_resume(run.path(), "auto", &ignored), good);
  EXPECT_TRUE(mentions(ignored, "step_00000020: trainer_state.json says step 29"));
}

// Leftovers of killed saves are removed once a later checkpoint is complete; those of later
// steps (a save that may still become complete in another timeline) stay.
TEST(Checkpoint, LeftoversOfKilledSavesAreRemovedOnceANewerOneIsComplete) {
  TempDir run;
  const auto root = run.path() / "checkpoints";
  save(run.path(), 1);
  for (const char* d : {".tmp-step_00000003-4242", ".staging-step_00000003", ".old-step_00000002-17",
                        ".tmp-step_00000009-4242"}) {
    fs::create_directories(root / d);
    write(root / d / "model.safetensors", "partial");
  }
  EXPECT_EQ(scan_checkpoints(run.path()).ignored.size(), 4u);
  save(run.path(), 5);
  EXPECT_FALSE(fs::exists(root / ".tmp-step_00000003-4242"));
  EXPECT_FALSE(fs::exists(root / ".staging-step_00000003"));
  EXPECT_FALSE(fs::exists(root / ".old-step_00000002-17"));
  EXPECT_TRUE(fs::exists(root / ".tmp-step_00000009-4242"));
  EXPECT_TRUE(fs::exists(root / "step_00000001"));
}

// Besides the keep_last_n newest, the keep_best best by an eval metric stay (the original's
// SaveBestCallback keeps its top 5 by Kendall τ); "…loss" metrics rank lower as better.
TEST(Checkpoint, KeepBestByMetricBesidesTheLastN) {
  auto save_with = [](const fs::path& run, int64_t step, double metric, const Retention& r,
                      const char* name) {
    CheckpointWriter w(run, step);
    w.write_json(checkpoint_files::kTrainerState, {{"step", step}});
    w.write_json(checkpoint_files::kMetrics, {{"step", step}, {"eval", {{name, metric}}}});
    return w.commit(r);
  };
  auto kept = [](const fs::path& run) {
    std::vector<int64_t> steps;
    for (const auto& d : scan_checkpoints(run).complete)
      steps.push_back(*parse_checkpoint_dir_name(d.filename().string()));
    return steps;
  };
  const std::vector<double> tau = {0.1, 0.9, 0.3, 0.8, 0.2, 0.4, 0.5};  // steps 1..7
  TempDir run;
  Retention r;
  r.keep_last_n = 2;
  r.keep_best = 2;
  r.best_metric = "eval_kendall_tau";
  for (size_t i = 0; i < tau.size(); ++i)
    save_with(run.path(), static_cast<int64_t>(i + 1), tau[i], r, "eval_kendall_tau");
  EXPECT_EQ(kept(run.path()), (std::vector<int64_t>{2, 4, 6, 7}));  // best: 2 (0.9), 4 (0.8); last: 6, 7

  TempDir loss_run;
  r.best_metric = "eval_loss";  // lower is better
  for (size_t i = 0; i < tau.size(); ++i)
    save_with(loss_run.path(), static_cast<int64_t>(i + 1), tau[i], r, "eval_loss");
  EXPECT_EQ(kept(loss_run.path()), (std::vector<int64_t>{1, 5, 6, 7}));  // best: 1 (0.1), 5 (0.2)

  TempDir none;
  r.keep_best = 0;
  for (size_t i = 0; i < tau.size(); ++i)
    save_with(none.path(), static_cast<int64_t>(i + 1), tau[i], r, "eval_loss");
  EXPECT_EQ(kept(none.path()), (std::vector<int64_t>{6, 7}));
}

TEST(RngState, CpuGeneratorRoundTripThroughCheckpoint) {
  TempDir run;
  at::manual_seed(123);
  (void)at::randn({5});
  auto state = capture_rng_state();
  auto expected = at::randn({8});
  std::mt19937 engine(7);
  engine();
  const auto engine_text = engine_state(engine);
  const auto engine_next = engine();

  {
    CheckpointWriter w(run.path(), 1);
    w.write_tensors(checkpoint_files::kRng, rng_state_tensors(state));
    w.write_json(checkpoint_files::kTrainerState, {{"engine", engine_text}});
    w.commit();
  }
  (void)at::randn({100});  // move the generator on
  Checkpoint ck(*find_resume(run.path(), "auto"));
  restore_rng_state(rng_state_from_tensors(ck.tensors(checkpoint_files::kRng)));
  EXPECT_TRUE(at::equal(at::randn({8}), expected));

  std::mt19937 restored;
  restore_engine_state(restored, ck.json(checkpoint_files::kTrainerState)["engine"]);
  EXPECT_EQ(restored(), engine_next);
  EXPECT_THROW(restore_engine_state(restored, "not a state"), Error);
  EXPECT_THROW(rng_state_from_tensors({}), Error);
}
