// Runs the real `robometer train` binary on a small synth dataset: exact resume after SIGKILL,
// half-written checkpoints, explicit --resume of an incomplete dir, SIGTERM, and the refusal to
// train on top of an existing run.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "common/test_util.h"

using robometer::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string binary() {
  const char* bin = std::getenv("ROBOMETER_BINARY");
  return bin ? bin : "robometer";
}

using Run = robometer::test::CommandResult;

Run run(const std::string& args) { return robometer::test::run_robometer(args); }

// Starts the binary in the background (its own pid, output to `log`).
pid_t spawn(const std::string& args, const fs::path& log) {
  const std::string cmd = "cd " + robometer::test::source_dir().string() + " && exec " + binary() + " " +
                          args + " > '" + log.string() + "' 2>&1";
  const pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// step → record of a metrics.jsonl (a torn last line is skipped).
std::map<int64_t, nlohmann::json> read_metrics(const fs::path& p) {
  std::map<int64_t, nlohmann::json> out;
  std::ifstream f(p);
  for (std::string line; std::getline(f, line);) {
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step")) out[j["step"].get<int64_t>()] = j;
  }
  return out;
}

// Polls metrics.jsonl until it records `step` (true), or the process exits / 120 s pass (false).
bool wait_for_step(const fs::path& metrics, int64_t step, pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_metrics(metrics).count(step)) return true;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int wait_exit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return -1;
}

// Every loss term, the accuracy, lr and grad norm of each step must be the same doubles.
void expect_same_losses(const std::map<int64_t, nlohmann::json>& want,
                        const std::map<int64_t, nlohmann::json>& got, int64_t steps) {
  ASSERT_EQ(got.size(), static_cast<size_t>(steps));
  for (int64_t s = 1; s <= steps; ++s) {
    ASSERT_TRUE(got.count(s)) << "no metrics for step " << s;
    for (const char* key : {"loss", "loss_preference", "loss_progress", "loss_success", "preference_accuracy",
                            "lr", "grad_norm"}) {
      const double a = want.at(s).at(key).get<double>();
      const double b = got.at(s).at(key).get<double>();
      EXPECT_EQ(a, b) << "step " << s << " " << key;
    }
  }
}

constexpr int64_t kSteps = 8;

class CliTrain : public ::testing::Test {
 protected:
  // One dataset and one uninterrupted reference run for the whole suite.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto data = dir_->path() / "synth";
    const auto r = run("synth --out " + data.string() +
                       " --episodes 16 --eval-episodes 6 --size 64 --min-frames 12 --max-frames 16");
    ASSERT_EQ(r.code, 0) << r.out;
    const auto ref = dir_->path() / "reference";
    const auto t = run(train_args(ref));
    ASSERT_EQ(t.code, 0) << t.out;
    reference_ = new std::map<int64_t, nlohmann::json>(read_metrics(ref / "metrics.jsonl"));
    ASSERT_EQ(reference_->size(), static_cast<size_t>(kSteps)) << t.out;
  }
  static void TearDownTestSuite() {
    delete reference_;
    reference_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (!reference_ || reference_->size() != static_cast<size_t>(kSteps))
      GTEST_SKIP() << "suite setup failed (synth dataset or reference run)";
  }

  // The small run of the acceptance criterion, plus `extra` overrides / flags.
  static std::string train_args(const fs::path& run_dir, const std::string& extra = "") {
    const auto data = dir_->path() / "synth";
    return "train configs/tiny.yaml '--no-progress' 'data.train=[{path: " + (data / "train").string() +
           ", weight: 1}]' 'data.eval=[{path: " + (data / "eval").string() +
           ", weight: 1}]' train.max_steps=" + std::to_string(kSteps) +
           " train.batch_size=2 train.checkpoint_every=1 data.num_workers=2 train.eval_every=0 "
           "output.tensorboard=false output.run_dir=" +
           run_dir.string() + " " + extra;
  }

  static TempDir* dir_;
  static std::map<int64_t, nlohmann::json>* reference_;
};

TempDir* CliTrain::dir_ = nullptr;
std::map<int64_t, nlohmann::json>* CliTrain::reference_ = nullptr;

TEST_F(CliTrain, SigkillThenResumeAutoIsBitwiseIdentical) {
  // k in [2, 6], seeded (ROBOMETER_TEST_SEED picks another one).
  const char* env_seed = std::getenv("ROBOMETER_TEST_SEED");
  std::mt19937 rng(env_seed ? std::stoul(env_seed) : 20261126u);
  const int64_t k = std::uniform_int_distribution<int64_t>(2, 6)(rng);
  SCOPED_TRACE("killed at step " + std::to_string(k));

  TempDir t;
  const auto run_dir = t / "run";
  const pid_t pid = spawn(train_args(run_dir), t / "first.log");
  ASSERT_TRUE(wait_for_step(run_dir / "metrics.jsonl", k, pid)) << read_file(t / "first.log");
  kill(pid, SIGKILL);
  ASSERT_EQ(wait_exit(pid), 128 + SIGKILL);

  // Whatever the kill left half-written must be ignored and reported.
  std::vector<std::string> leftovers;
  for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) leftovers.push_back(e.path().string());

  const auto r = run(train_args(run_dir, "--resume auto"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("resumed from"), std::string::npos) << r.out;
  for (const auto& l : leftovers) EXPECT_NE(r.out.find(l + ": leftover"), std::string::npos) << r.out;
  expect_same_losses(*reference_, read_metrics(run_dir / "metrics.jsonl"), kSteps);
}

TEST_F(CliTrain, HalfWrittenCheckpointsAreIgnoredAndReported) {
  TempDir t;
  const auto run_dir = t / "run";
  auto r = run(train_args(run_dir, "train.max_steps=2"));
  ASSERT_EQ(r.code, 0) << r.out;
  const auto ck = run_dir / "checkpoints";
  ASSERT_TRUE(fs::exists(ck / "step_00000002" / "COMPLETE"));

  // Without --resume an existing run is never overwritten.
  r = run(train_args(run_dir, "train.max_steps=3"));
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("already holds checkpoints: pass --resume auto"), std::string::npos) << r.out;

  // Three kinds of debris: a temp dir, a step dir without COMPLETE, `latest` to a missing dir.
  fs::create_directories(ck / ".tmp-step_00000003-99999");
  std::ofstream(ck / ".tmp-step_00000003-99999" / "model.safetensors") << "partial";
  fs::create_directories(ck / "step_00000004");
  std::ofstream(ck / "step_00000004" / "model.safetensors") << "partial";
  std::ofstream(ck / "latest", std::ios::trunc) << "step_00000009\n";

  // An explicit --resume of the incomplete dir fails clearly.
  r = run(train_args(run_dir, "train.max_steps=3 --resume " + (ck / "step_00000004").string()));
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find((ck / "step_00000004").string() + " is not a complete checkpoint: no COMPLETE"),
            std::string::npos)
      << r.out;
  r = run(train_args(run_dir, "train.max_steps=3 --resume " + (t / "nowhere").string()));
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("is not a complete checkpoint"), std::string::npos) << r.out;

  // --resume auto skips all three (each reported) and continues from step 2.
  r = run(train_args(run_dir, "train.max_steps=3 --resume auto"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(".tmp-step_00000003-99999: leftover of an interrupted checkpoint save"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("step_00000004: no COMPLETE marker"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("points to 'step_00000009'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("resumed from " + (ck / "step_00000002").string() + " at step 2"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("train: steps 2..3"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(ck / "step_00000003" / "COMPLETE"));
  EXPECT_EQ(read_metrics(run_dir / "metrics.jsonl").size(), 3u);
}

TEST_F(CliTrain, SigtermCheckpointsTheCurrentStepAndResumes) {
  TempDir t;
  const auto run_dir = t / "run";
  // No periodic checkpoints: the only one is the signal's.
  const pid_t pid = spawn(train_args(run_dir, "train.checkpoint_every=0"), t / "first.log");
  ASSERT_TRUE(wait_for_step(run_dir / "metrics.jsonl", 2, pid)) << read_file(t / "first.log");
  kill(pid, SIGTERM);
  const int code = wait_exit(pid);
  const auto out = read_file(t / "first.log");
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("stopped by signal"), std::string::npos) << out;
  EXPECT_NE(out.find("(interrupted)"), std::string::npos) << out;

  const auto metrics = read_metrics(run_dir / "metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  const int64_t stopped = metrics.rbegin()->first;
  ASSERT_LT(stopped, kSteps) << "the run finished before the signal arrived";
  const auto ck = run_dir / "checkpoints" /
                  ("step_" + std::string(8 - std::to_string(stopped).size(), '0') + std::to_string(stopped));
  EXPECT_TRUE(fs::exists(ck / "COMPLETE")) << ck;
  EXPECT_EQ(read_file(run_dir / "checkpoints" / "latest").find(ck.filename().string()), 0u);

  const auto r = run(train_args(run_dir, "train.checkpoint_every=0 --resume auto"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("train: steps " + std::to_string(stopped) + ".." + std::to_string(kSteps)),
            std::string::npos)
      << r.out;
  // Checkpoint cadence must not change the numbers either.
  expect_same_losses(*reference_, read_metrics(run_dir / "metrics.jsonl"), kSteps);
}

}  // namespace
