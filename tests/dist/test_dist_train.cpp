// Multi-process data-parallel tests on CPU with Gloo (2 and 4 ranks): collectives, bucketed
// gradient all-reduce, N ranks × batch b = 1 rank × batch N·b, ZeRO-1 = AdamW, ZeRO-1 state
// resume and consolidation, and a rank that dies mid-training.
#include <torch/torch.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "dist/dist_test_util.h"
#include "dist/dist_train_util.h"
#include "robometer/core/error.h"
#include "robometer/core/remove_tree.h"
#include "robometer/dist/grad_sync.h"
#include "robometer/dist/process_group.h"
#include "robometer/dist/sharded_adamw.h"
#include "robometer/io/safetensors.h"
#include "robometer/train/param_optimizer.h"
#include "robometer/train/sharded_checkpoint.h"

namespace fs = std::filesystem;
using namespace robometer;
using robometer::test::env_int;
using robometer::test::expect_all_ok;
using robometer::test::run_ranks;

using namespace robometer::test::dist_train;

// ------------------------------------------------------------------ workers (one per rank)

TEST(DistWorker, Collectives) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int r = w->rank(), n = w->size();
  std::vector<at::Tensor> b{torch::full({3}, r + 1.0f), torch::full({2}, static_cast<int64_t>(r))};
  w->broadcast(b, n - 1);
  EXPECT_TRUE(b[0].equal(torch::full({3}, static_cast<float>(n))));
  EXPECT_TRUE(b[1].equal(torch::full({2}, static_cast<int64_t>(n - 1))));
  std::vector<at::Tensor> s{torch::full({2, 2}, r + 1.0f), torch::full({1}, 1.0, torch::kDouble),
                            torch::full({3}, static_cast<int64_t>(r))};
  w->all_reduce_sum(s);
  EXPECT_TRUE(s[0].equal(torch::full({2, 2}, n * (n + 1) / 2.0f)));
  EXPECT_EQ(s[1].item<double>(), n);
  EXPECT_EQ(s[2][2].item<int64_t>(), n * (n - 1) / 2);
  EXPECT_TRUE(w->any(r == n - 1));
  EXPECT_FALSE(w->any(false));
  EXPECT_TRUE(w->any(true));
  w->barrier();
  // reduce_scatter / all_gather as ZeRO-1 uses them.
  auto flat = torch::arange(n * 4, torch::kFloat) * (r + 1);
  auto out = torch::empty({4});
  w->reduce_scatter_sum(flat.clone(), out);
  EXPECT_TRUE(out.equal(torch::arange(r * 4, r * 4 + 4, torch::kFloat) * (n * (n + 1) / 2)));
  auto gathered = torch::empty({n * 2});
  w->all_gather(gathered, torch::full({2}, static_cast<float>(r)));
  for (int k = 0; k < n; ++k) EXPECT_EQ(gathered[2 * k + 1].item<float>(), k);
}

TEST(DistWorker, DataParallelMatchesBigBatch) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int n = w->size();
  auto ref = reference_run(n, 5, 1.0);

  auto net = make_net();
  const auto unused_before = net->unused.detach().clone();
  dist::BucketedGradSync sync(w, bucket_mb());
  sync.attach(trainable(net));
  if (bucket_mb() < 0.001) {
    EXPECT_GT(sync.bucket_count(), 2u);
  }
  train::LocalAdamW opt(trainable(net), adamw_config());
  auto got = train_steps(net, opt, sync, *w, n, 0, 5, 1.0);
  for (size_t i = 0; i < ref.losses.size(); ++i)
    EXPECT_NEAR(got.losses[i], ref.losses[i], 1e-5) << "step " << i;
  expect_close(got.params, ref.params, 1e-5, "params after 5 steps");
  // No rank produced a gradient for `unused`: untouched, like one process leaves it.
  EXPECT_TRUE(net->unused.equal(unused_before));
  EXPECT_FALSE(net->unused.grad().defined());
}

TEST(DistWorker, BucketedEqualsOneAllReduce) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int r = w->rank(), n = w->size();
  auto net = make_net();
  auto params = trainable(net);
  auto [x, y] = global_batch(n, 0, 0);
  x = x.slice(0, r * kRowsPerRank, (r + 1) * kRowsPerRank);
  y = y.slice(0, r * kRowsPerRank, (r + 1) * kRowsPerRank);
  // Expected: plain backward, then one all-reduce of every gradient, ÷ world.
  torch::mse_loss(net->forward(x), y).backward();
  std::vector<at::Tensor> expected;
  for (auto& [name, p] : params)
    expected.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  w->all_reduce_sum(expected);
  for (auto& e : expected) e.div_(n);
  for (auto& [name, p] : params) p.mutable_grad() = at::Tensor();

  dist::BucketedGradSync sync(w, 0.0002);  // ~50 floats per bucket: several buckets
  sync.attach(params);
  EXPECT_GT(sync.bucket_count(), 2u);
  sync.before_backward(true);
  torch::mse_loss(net->forward(x), y).backward();
  sync.finish();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& g = params[i].second.grad();
    if (params[i].first == "unused") {
      EXPECT_FALSE(g.defined());
      continue;
    }
    ASSERT_TRUE(g.defined()) << params[i].first;
    EXPECT_LE((g - expected[i]).abs().max().item<double>(), 1e-7) << params[i].first;
  }
}

TEST(DistWorker, Zero1MatchesAdamW) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int n = w->size();
  // Unsharded: bucketed all-reduce + AdamW on every rank.
  auto net_a = make_net();
  dist::BucketedGradSync sync_a(w, 25);
  sync_a.attach(trainable(net_a));
  train::LocalAdamW opt_a(trainable(net_a), adamw_config());
  auto a = train_steps(net_a, opt_a, sync_a, *w, n, 0, 5, 0.5);
  // ZeRO-1: no grad sync, the optimizer reduces.
  auto net_b = make_net();
  train::NoGradSync sync_b;
  dist::ShardedAdamW opt_b(w, trainable(net_b), adamw_config());
  EXPECT_TRUE(opt_b.sharded());
  EXPECT_DOUBLE_EQ(opt_b.lr(), opt_a.lr());
  auto b = train_steps(net_b, opt_b, sync_b, *w, n, 0, 5, 0.5);
  expect_close(b.params, a.params, 1e-6, "ZeRO-1 vs AdamW");
  for (size_t i = 0; i < a.losses.size(); ++i) EXPECT_NEAR(b.losses[i], a.losses[i], 1e-6);
  auto ref = reference_run(n, 5, 0.5);
  expect_close(b.params, ref.params, 1e-5, "ZeRO-1 vs 1 rank big batch");
}

TEST(DistWorker, Zero1StateResumeAndConsolidate) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int r = w->rank(), n = w->size();
  train::NoGradSync nosync;
  // Uninterrupted: 5 steps.
  auto net_a = make_net();
  dist::ShardedAdamW opt_a(w, trainable(net_a), adamw_config());
  train_steps(net_a, opt_a, nosync, *w, n, 0, 3, 0);
  auto params3 = snapshot(net_a);
  auto tensors3 = opt_a.state_tensors();
  auto json3 = opt_a.state_json();
  auto full = train_steps(net_a, opt_a, nosync, *w, n, 3, 2, 0);

  // Resumed: a fresh model + optimizer at step 3, state loaded, 2 more steps: bitwise equal.
  auto net_b = make_net();
  {
    torch::NoGradGuard ng;
    auto ps = net_b->parameters();
    for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(params3[i]);
  }
  dist::ShardedAdamW opt_b(w, trainable(net_b), adamw_config());
  opt_b.load_state(tensors3, json3);
  auto resumed = train_steps(net_b, opt_b, nosync, *w, n, 3, 2, 0);
  for (size_t i = 0; i < full.params.size(); ++i)
    EXPECT_TRUE(resumed.params[i].equal(full.params[i])) << "param " << i;

  // A different world size is refused with a clear message.
  auto bad = json3;
  bad["world_size"] = n + 1;
  try {
    opt_b.load_state(tensors3, bad);
    ADD_FAILURE() << "loading a state of another world size did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("world size"), std::string::npos) << e.what();
  }

  // Consolidation: every rank writes its shard, rank 0 merges them into AdamW's format,
  // which a single-process AdamW loads and which matches its own state after 3 steps.
  const fs::path dir = std::getenv("ROBOMETER_DIST_TMP");
  io::save_safetensors((dir / ("opt" + std::to_string(r) + ".safetensors")).string(), tensors3);
  std::ofstream(dir / ("opt" + std::to_string(r) + ".json")) << json3.dump();
  w->barrier();
  if (r == 0) {
    std::vector<io::NamedTensors> ts;
    std::vector<nlohmann::json> js;
    for (int k = 0; k < n; ++k) {
      ts.push_back(io::load_safetensors((dir / ("opt" + std::to_string(k) + ".safetensors")).string()));
      std::ifstream f(dir / ("opt" + std::to_string(k) + ".json"));
      js.push_back(nlohmann::json::parse(f));
    }
    auto [ct, cj] = dist::consolidate_zero1_state(ts, js);
    auto ref_net = make_net();
    train::LocalAdamW ref_opt(trainable(ref_net), adamw_config());
    train::NoGradSync s;
    train::LocalWorld lw;
    train_steps(ref_net, ref_opt, s, lw, n, 0, 3, 0);
    const auto ref_state = ref_opt.state_tensors();
    std::map<std::string, at::Tensor> got(ct.begin(), ct.end());
    EXPECT_EQ(got.size(), ref_state.size());
    for (const auto& [name, t] : ref_state) {
      ASSERT_TRUE(got.count(name)) << name;
      EXPECT_LE((got[name] - t).abs().max().item<double>(), 1e-6) << name;
    }
    EXPECT_EQ(cj["steps"]["fc1.weight"].get<int64_t>(), 3);
    EXPECT_FALSE(cj["steps"].contains("frozen"));
    train::LocalAdamW loaded(trainable(ref_net), adamw_config());
    EXPECT_NO_THROW(loaded.load_state(ct, cj));
  }
  w->barrier();
}

// Sharded optimizer checkpoint: every rank stages its shard, rank 0 commits the checkpoint,
// every rank restores its own shard from it.
TEST(DistWorker, ShardedCheckpoint) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int r = w->rank(), n = w->size();
  train::NoGradSync nosync;
  auto net = make_net();
  dist::ShardedAdamW opt(w, trainable(net), adamw_config());
  train_steps(net, opt, nosync, *w, n, 0, 2, 0);
  const fs::path run_dir = fs::path(std::getenv("ROBOMETER_DIST_TMP")) / "run";
  const auto staging = train::staging_dir(run_dir, 2);
  train::stage_optimizer_shard(*w, opt, staging);
  fs::path committed;
  if (r == 0) {
    train::CheckpointWriter cw(run_dir, 2);
    train::add_staged_shards(cw, staging, n);
    committed = cw.commit();
    robometer::remove_tree(staging.string());
  }
  w->barrier();
  train::Checkpoint ck(train::checkpoints_root(run_dir) / train::checkpoint_dir_name(2));
  auto net2 = make_net();
  dist::ShardedAdamW opt2(w, trainable(net2), adamw_config());
  train::load_optimizer_shard(ck, opt2, r);
  EXPECT_EQ(opt2.state_json(), opt.state_json());
  const auto a = opt.state_tensors(), b = opt2.state_tensors();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
  EXPECT_THROW(train::load_optimizer_shard(ck, opt2, n), Error);  // no such shard
  w->barrier();
}

// The last rank _exit()s in the middle of step 2; every other rank must fail with an error
// naming the operation and rank within the (short) timeout, not hang.
TEST(DistWorker, KillRank) {
  ROBOMETER_DIST_WORKER_ONLY();
  const int timeout_s = 5;
  auto w = worker_world(timeout_s);
  const int r = w->rank(), n = w->size();
  auto net = make_net();
  dist::BucketedGradSync sync(w, 0.0002);
  sync.attach(trainable(net));
  train::LocalAdamW opt(trainable(net), adamw_config());
  auto start = std::chrono::steady_clock::now();
  std::string error;
  try {
    for (int step = 0; step < 5; ++step) {
      if (step == 2 && r == n - 1) {
        std::fflush(stdout);
        _exit(3);
      }
      start = std::chrono::steady_clock::now();
      train_steps(net, opt, sync, *w, n, step, 1, 0);
    }
  } catch (const Error& e) {
    error = e.what();
  }
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("rank %d: error after %.2f s: %s\n", r, waited, error.c_str());
  std::fflush(stdout);
  const bool ok = !error.empty() && error.find("rank") != std::string::npos && waited < timeout_s + 5;
  // Skip destructors: the process group's peers are gone.
  _exit(ok ? 0 : 1);
}

// ------------------------------------------------------------------ drivers

TEST(DistTrain, Collectives2And4Ranks) {
  expect_all_ok(run_ranks("Collectives", 2));
  expect_all_ok(run_ranks("Collectives", 4));
}

// Under torchrun the agent already serves the store at MASTER_ADDR:MASTER_PORT and says so with
// TORCHELASTIC_USE_AGENT_STORE=True: every rank must connect as a client (a rank that tried to
// serve would fail to bind the port this test's "agent" holds).
TEST(DistTrain, RanksUseTorchrunsAgentStore) {
  const int port = dist::pick_free_port();
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  so.isServer = true;
  so.waitWorkers = false;
  so.timeout = std::chrono::seconds(60);
  auto agent = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", so);
  expect_all_ok(run_ranks("Collectives", 2,
                          {{"MASTER_PORT", std::to_string(port)},
                           {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                           {"TORCHELASTIC_RESTART_COUNT", "1"}}));
}

TEST(DistTrain, DataParallelMatchesBigBatch2Ranks) {
  expect_all_ok(run_ranks("DataParallelMatchesBigBatch", 2, {{"ROBOMETER_TEST_BUCKET_MB", "0.0002"}}));
}

TEST(DistTrain, DataParallelMatchesBigBatch4Ranks) {
  expect_all_ok(run_ranks("DataParallelMatchesBigBatch", 4));
}

TEST(DistTrain, BucketedEqualsOneAllReduce) { expect_all_ok(run_ranks("BucketedEqualsOneAllReduce", 2)); }

TEST(DistTrain, Zero1MatchesAdamW2And4Ranks) {
  expect_all_ok(run_ranks("Zero1MatchesAdamW", 2));
  expect_all_ok(run_ranks("Zero1MatchesAdamW", 4));
}

TEST(DistTrain, Zero1StateResumeAndConsolidate) {
  expect_all_ok(run_ranks("Zero1StateResumeAndConsolidate", 2));
}

TEST(DistTrain, ShardedCheckpoint2Ranks) { expect_all_ok(run_ranks("ShardedCheckpoint", 2)); }

TEST(DistTrain, DeadRankFailsOthersWithinTimeout) {
  auto res = run_ranks("KillRank", 3, {}, 40);
  ASSERT_EQ(res.size(), 3u);
  EXPECT_FALSE(res[2].timed_out);
  EXPECT_EQ(res[2].exit_code(), 3) << res[2].output;
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(res[r].ok()) << "rank " << r << ":\n" << res[r].output;
    EXPECT_NE(res[r].output.find("error after"), std::string::npos) << res[r].output;
  }
}
