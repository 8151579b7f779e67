// `robometer launch`: spawning ranks with torchrun's environment, failure propagation and
// signal forwarding. Runs the real binary (<build dir>/robometer).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>

#include "common/test_util.h"
#include "robometer/dist/launcher.h"

namespace fs = std::filesystem;

namespace {

fs::path robometer_binary() {
  return fs::canonical("/proc/self/exe").parent_path().parent_path() / "robometer";
}

#define REQUIRE_BINARY()               \
  if (!fs::exists(robometer_binary())) \
  GTEST_SKIP() << robometer_binary() << " is absent (build the robometer target)"

struct Run {
  int status = -1;
  std::string output;
  double seconds = 0;
};

// Runs a shell command line, capturing stdout+stderr.
Run run(const std::string& cmd) {
  Run r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (auto pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST(DistLaunch, RunsEveryRankOfASubcommand) {
  REQUIRE_BINARY();
  auto r = run(robometer_binary().string() + " launch --nproc-per-node 2 --master-port 0 -- version");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(count(r.output, "libtorch"), 2u) << r.output;
}

TEST(DistLaunch, SetsTorchrunEnvironment) {
  REQUIRE_BINARY();
  robometer::test::TempDir dir;
  auto r = run(robometer_binary().string() +
               " launch --nproc-per-node 3 --master-port 0 --program /bin/sh -- -c "
               "'echo $RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR > " +
               dir.path().string() + "/r$RANK'");
  ASSERT_EQ(r.status, 0) << r.output;
  for (int k = 0; k < 3; ++k) {
    std::ifstream f(dir.path() / ("r" + std::to_string(k)));
    std::string line;
    std::getline(f, line);
    EXPECT_EQ(line, std::to_string(k) + " " + std::to_string(k) + " 3 3 127.0.0.1");
  }
}

TEST(DistLaunch, FailingRankStopsTheOthers) {
  REQUIRE_BINARY();
  // Rank 1 fails at once; rank 0 would sleep 60 s unless stopped.
  auto r = run(robometer_binary().string() +
               " launch --nproc-per-node 2 --master-port 0 --grace 2 --program /bin/sh -- -c "
               "'if [ $RANK = 1 ]; then exit 7; fi; exec sleep 60'");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("rank 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("exit status 7"), std::string::npos) << r.output;
  EXPECT_LT(r.seconds, 30) << r.output;
}

// Stopping a rank stops what it started too: each rank's process group is signalled (a
// shell's child of rank 0 was left running after rank 1 failed).
TEST(DistLaunch, StoppingARankStopsItsChildren) {
  REQUIRE_BINARY();
  robometer::test::TempDir dir;
  const std::string pidfile = (dir / "child.pid").string();
  auto r = run(robometer_binary().string() +
               " launch --nproc-per-node 2 --master-port 0 --grace 2 --program /bin/sh -- -c "
               "'if [ $RANK = 1 ]; then sleep 1; exit 3; fi; sleep 77 >/dev/null 2>&1 & echo $! > " +
               pidfile + "; wait'");
  EXPECT_NE(r.status, 0) << r.output;
  std::ifstream in(pidfile);
  pid_t child = 0;
  ASSERT_TRUE(in >> child) << "rank 0 did not start its child: " << r.output;
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {  // it was sent SIGTERM before the launcher returned
    gone = kill(child, 0) != 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!gone) kill(child, SIGKILL);
  EXPECT_TRUE(gone) << "pid " << child << " (rank 0's child) outlived the launch";
}

TEST(DistLaunch, FailingSubcommandFails) {
  REQUIRE_BINARY();
  auto r =
      run(robometer_binary().string() + " launch --nproc-per-node 2 --master-port 0 -- no-such-subcommand");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("failed"), std::string::npos) << r.output;
}

TEST(DistLaunch, ForwardsSigtermToEveryRank) {
  REQUIRE_BINARY();
  robometer::test::TempDir dir;
  const std::string d = dir.path().string();
  // Each rank traps TERM, records it and exits 0 (as the trainer does after checkpointing).
  const std::string script = "trap 'echo term > " + d + "/t$RANK; exit 0' TERM; touch " + d +
                             "/up$RANK; while true; do sleep 0.05; done";
  const pid_t pid = fork();
  if (pid == 0) {
    execl(robometer_binary().c_str(), "robometer", "launch", "--nproc-per-node", "2", "--master-port", "0",
          "--program", "/bin/sh", "--", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!(fs::exists(dir.path() / "up0") && fs::exists(dir.path() / "up1")) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  kill(pid, SIGTERM);
  int st = 0;
  while (waitpid(pid, &st, WNOHANG) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (std::chrono::steady_clock::now() >= deadline) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    FAIL() << "launcher did not exit after SIGTERM";
  }
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status " << st;
  EXPECT_TRUE(fs::exists(dir.path() / "t0"));
  EXPECT_TRUE(fs::exists(dir.path() / "t1"));
}

namespace {

// step -> loss from a run's metrics.jsonl (training records only).
std::map<int, double> losses(const fs::path& metrics) {
  std::map<int, double> out;
  std::ifstream f(metrics);
  std::string line;
  while (std::getline(f, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("step") && j.contains("loss"))
      out[j["step"].get<int>()] = j["loss"].get<double>();
  }
  return out;
}

// A 16-episode, 2-task synth dataset in dir/synth for the training runs below.
testing::AssertionResult write_small_synth(const std::string& dir) {
  const auto s = run("cd '" + robometer::test::source_dir().string() + "' && " + robometer_binary().string() +
                     " synth --out " + dir + "/synth --episodes 16 --eval-episodes 4 --tasks 2");
  if (s.status == 0) return testing::AssertionSuccess();
  return testing::AssertionFailure() << s.output;
}

}  // namespace

// The acceptance check of the distributed issue, through the binary: 2 ranks x batch B give the
// loss curve of 1 process x batch 2B (same global batches, means over the global batch, the same
// averaged gradient). Head dropout is switched off: its masks come from per-rank generators.
TEST(DistLaunch, TwoRanksTrainLikeOneProcessWithTwiceTheBatch) {
  REQUIRE_BINARY();
  robometer::test::TempDir dir;
  const std::string d = dir.path().string();
  const std::string src = robometer::test::source_dir().string();
  ASSERT_TRUE(write_small_synth(d));
  std::ifstream in(src + "/configs/models/tiny.json");
  std::string model_json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = model_json.find("\"head_dropout\": 0.1");
  ASSERT_NE(at, std::string::npos) << "configs/models/tiny.json changed: update this test";
  model_json.replace(at, std::string("\"head_dropout\": 0.1").size(), "\"head_dropout\": 0.0");
  std::ofstream(d + "/tiny_nodrop.json") << model_json;
  const std::string common = " train configs/tiny.yaml 'data.train=[{path: " + d +
                             "/synth/train}]' 'data.eval=[]' "
                             "model.config_json=" +
                             d +
                             "/tiny_nodrop.json train.max_steps=4 train.log_every=1 "
                             "train.eval_every=0 train.checkpoint_every=0 data.num_workers=1 "
                             "output.tensorboard=false --no-progress ";
  auto one = run("cd '" + src + "' && " + robometer_binary().string() + common +
                 "train.batch_size=4 output.run_dir=" + d + "/one");
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = run("cd '" + src + "' && " + robometer_binary().string() +
                 " launch --nproc-per-node 2 --master-port 0 --" + common +
                 "train.batch_size=2 output.run_dir=" + d + "/two");
  ASSERT_EQ(two.status, 0) << two.output;
  const auto a = losses(d + "/one/metrics.jsonl"), b = losses(d + "/two/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u) << one.output;
  ASSERT_EQ(b.size(), 4u) << two.output;
  for (const auto& [step, loss] : a) {
    ASSERT_TRUE(b.count(step)) << "step " << step;
    // fp32 sums in another order (per-rank partial sums, then the all-reduce).
    EXPECT_NEAR(b.at(step), loss, 1e-4 * std::max(1.0, std::abs(loss))) << "step " << step;
  }
}

// Multi-rank resume is exact: each rank saves and restores its own RNG streams (head dropout
// is on here, so rank 1 resuming with rank 0's generator would change the losses) and loader
// counters. Resuming a fresh run_dir from the uninterrupted run's step-2 checkpoint repeats
// steps 3 and 4 to the bit.
TEST(DistLaunch, TwoRanksResumeFromACheckpointExactly) {
  REQUIRE_BINARY();
  robometer::test::TempDir dir;
  const std::string d = dir.path().string();
  const std::string src = robometer::test::source_dir().string();
  ASSERT_TRUE(write_small_synth(d));
  const std::string launch =
      "cd '" + src + "' && " + robometer_binary().string() +
      " launch --nproc-per-node 2 --master-port 0 -- train configs/tiny.yaml "
      "'data.train=[{path: " +
      d +
      "/synth/train}]' 'data.eval=[]' train.max_steps=4 "
      "train.batch_size=2 train.log_every=1 train.eval_every=0 train.checkpoint_every=2 "
      "train.keep_last_n=2 data.num_workers=1 output.tensorboard=false --no-progress ";
  auto whole = run(launch + "output.run_dir=" + d + "/whole");
  ASSERT_EQ(whole.status, 0) << whole.output;
  const fs::path step2 = dir.path() / "whole" / "checkpoints" / "step_00000002";
  ASSERT_TRUE(fs::exists(step2 / "rng.rank00001.safetensors")) << whole.output;
  ASSERT_TRUE(fs::exists(step2 / "loader.rank00001.json")) << whole.output;
  auto resumed = run(launch + "output.run_dir=" + d + "/resumed --resume " + step2.string());
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  const auto a = losses(d + "/whole/metrics.jsonl"), b = losses(d + "/resumed/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 2u) << resumed.output;
  EXPECT_EQ(b.at(3), a.at(3));
  EXPECT_EQ(b.at(4), a.at(4));
}

namespace {

// `robometer train` on the tiny config without head dropout (its masks come from per-rank
// generators), 4 steps, no eval, no checkpoints unless `extra` asks.
std::string tiny_train_args(const std::string& d) {
  const std::string src = robometer::test::source_dir().string();
  std::ifstream in(src + "/configs/models/tiny.json");
  std::string model_json((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = model_json.find("\"head_dropout\": 0.1");
  if (at == std::string::npos) return "";
  model_json.replace(at, std::string("\"head_dropout\": 0.1").size(), "\"head_dropout\": 0.0");
  std::ofstream(d + "/tiny_nodrop.json") << model_json;
  return " train configs/tiny.yaml 'data.train=[{path: " + d +
         "/synth/train}]' 'data.eval=[]' model.config_json=" + d +
         "/tiny_nodrop.json train.max_steps=4 train.log_every=1 train.eval_every=0 "
         "train.checkpoint_every=0 data.num_workers=1 output.tensorboard=false --no-progress ";
}

std::string in_source_dir() { return "cd '" + robometer::test::source_dir().string() + "' && "; }

}  // namespace

// dist.shard optimizer (ZeRO-1, overlapped) and gradients (ZeRO-2) through the trainer: 2 ranks
// × batch 2 with 2 accumulation micro-steps give the loss curve of 1 process × batch 4.
TEST(DistLaunch, ShardedRanksTrainLikeOneProcessWithTwiceTheBatch) {
  REQUIRE_BINARY();
  robometer::test::TempDir dir;
  const std::string d = dir.path().string();
  ASSERT_TRUE(write_small_synth(d));
  const std::string common = tiny_train_args(d);
  ASSERT_FALSE(common.empty()) << "configs/models/tiny.json changed: update this test";
  auto one = run(in_source_dir() + robometer_binary().string() + common +
                 "train.batch_size=4 train.grad_accum=2 output.run_dir=" + d + "/one");
  ASSERT_EQ(one.status, 0) << one.output;
  const auto a = losses(d + "/one/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u) << one.output;
  // "gradients+budget": ZeRO-2 with train.max_tokens_per_batch below one sample, so every
  // micro-batch runs as one forward and backward (one reduce-scatter) per sample.
  for (const std::string variant : {"optimizer", "gradients", "gradients+budget"}) {
    const std::string mode = variant.substr(0, variant.find('+'));
    const std::string budget = variant == mode ? "" : "train.max_tokens_per_batch=1 ";
    auto two =
        run(in_source_dir() + robometer_binary().string() + " launch --nproc-per-node 2 --master-port 0 --" +
            common + "train.batch_size=2 train.grad_accum=2 " + budget + "dist.shard=" + mode +
            " output.run_dir=" + d + "/" + mode + (budget.empty() ? "" : "-budget"));
    ASSERT_EQ(two.status, 0) << two.output;
    EXPECT_NE(two.output.find(mode == "gradients" ? "ZeRO-2" : "ZeRO-1"), std::string::npos) << two.output;
    const auto b = losses(d + "/" + mode + (budget.empty() ? "" : "-budget") + "/metrics.jsonl");
    ASSERT_EQ(b.size(), 4u) << two.output;
    for (const auto& [step, loss] : a) {
      ASSERT_TRUE(b.count(step)) << variant << " step " << step;
      EXPECT_NEAR(b.at(step), loss, 1e-4 * std::max(1.0, std::abs(loss))) << variant << " step " << step;
    }
  }
}

// A ZeRO-2 checkpoint of 2 ranks resumes on 3 ranks (the optimizer shards are re-cut on load)
// and on 2 ranks to the bit; a 1-process run refuses it with a clear message.
TEST(DistLaunch, ShardedCheckpointResumesOnAnotherWorldSize) {
  REQUIRE_BINARY();
  robometer::test::TempDir dir;
  const std::string d = dir.path().string();
  ASSERT_TRUE(write_small_synth(d));
  const std::string common =
      tiny_train_args(d) + "train.batch_size=2 dist.shard=gradients train.checkpoint_every=2 ";
  const std::string launch = in_source_dir() + robometer_binary().string() + " launch --master-port 0 ";
  auto whole = run(launch + "--nproc-per-node 2 --" + common + "output.run_dir=" + d + "/whole");
  ASSERT_EQ(whole.status, 0) << whole.output;
  const fs::path step2 = dir.path() / "whole" / "checkpoints" / "step_00000002";
  ASSERT_TRUE(fs::exists(step2 / "optimizer.rank00001.safetensors")) << whole.output;
  auto same = run(launch + "--nproc-per-node 2 --" + common + "output.run_dir=" + d + "/same --resume " +
                  step2.string());
  ASSERT_EQ(same.status, 0) << same.output;
  const auto a = losses(d + "/whole/metrics.jsonl"), b = losses(d + "/same/metrics.jsonl");
  ASSERT_EQ(b.size(), 2u) << same.output;
  EXPECT_EQ(b.at(3), a.at(3));
  EXPECT_EQ(b.at(4), a.at(4));
  auto three = run(launch + "--nproc-per-node 3 --" + common + "output.run_dir=" + d + "/three --resume " +
                   step2.string());
  ASSERT_EQ(three.status, 0) << three.output;
  EXPECT_NE(three.output.find("re-sharded onto rank 0 of 3"), std::string::npos) << three.output;
  const auto c = losses(d + "/three/metrics.jsonl");
  ASSERT_EQ(c.size(), 2u) << three.output;
  EXPECT_TRUE(std::isfinite(c.at(4)));
  auto single = run(in_source_dir() + robometer_binary().string() + common + "output.run_dir=" + d +
                    "/single --resume " + step2.string());
  EXPECT_NE(single.status, 0) << single.output;
  EXPECT_NE(single.output.find("not sharded"), std::string::npos) << single.output;
}

// Multi-node on one machine: two launchers with --nnodes 2 (node ranks 0 and 1, 2 ranks each,
// rendezvous at 127.0.0.1) train exactly like one launcher with 4 ranks.
TEST(DistLaunch, TwoNodesOnLocalhostTrainLikeFourRanks) {
  REQUIRE_BINARY();
  robometer::test::TempDir dir;
  const std::string d = dir.path().string();
  ASSERT_TRUE(write_small_synth(d));
  // A short collective timeout: a node that never joins fails the test in a minute, not five.
  const std::string common =
      tiny_train_args(d) + "train.batch_size=1 dist.shard=gradients dist.timeout_s=60 ";
  auto four = run(in_source_dir() + robometer_binary().string() +
                  " launch --nproc-per-node 4 --master-port 0 --" + common + "output.run_dir=" + d + "/four");
  ASSERT_EQ(four.status, 0) << four.output;
  const int port = robometer::dist::pick_free_port();
  auto node = [&](int rank) {
    return robometer_binary().string() + " launch --nnodes 2 --node-rank " + std::to_string(rank) +
           " --nproc-per-node 2 --master-addr 127.0.0.1 --master-port " + std::to_string(port) + " --" +
           common + "output.run_dir=" + d + "/nodes > " + d + "/node" + std::to_string(rank) + ".log 2>&1";
  };
  // Both nodes write the same run_dir (a shared filesystem): only global rank 0 writes there.
  // The braces keep both launchers after the `cd`: `cd X && (a) & b` would background the `cd`
  // with node 1 and start node 0 in the wrong directory.
  auto both = run(in_source_dir() + "{ (" + node(1) + "; echo $? > " + d + "/node1.rc) & " + node(0) +
                  "; rc0=$?; wait; echo node0 $rc0 node1 $(cat " + d + "/node1.rc); }");
  std::ifstream l0(d + "/node0.log"), l1(d + "/node1.log");
  const std::string log0((std::istreambuf_iterator<char>(l0)), std::istreambuf_iterator<char>());
  const std::string log1((std::istreambuf_iterator<char>(l1)), std::istreambuf_iterator<char>());
  ASSERT_NE(both.output.find("node0 0 node1 0"), std::string::npos) << both.output << log0 << log1;
  const auto a = losses(d + "/four/metrics.jsonl"), b = losses(d + "/nodes/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u) << four.output;
  ASSERT_EQ(b.size(), 4u) << log0;
  for (const auto& [step, loss] : a) EXPECT_EQ(b.at(step), loss) << "step " << step;
  EXPECT_EQ(count(log0 + log1, "rank 3 of 4"), 1u) << log0 << log1;
}
