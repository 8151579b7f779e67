// dist.shard on CPU with Gloo (2 and 4 ranks): ZeRO-1 overlapped with backward is bitwise
// today's ZeRO-1; ZeRO-1 and ZeRO-2 train like one process with the whole batch (losses and
// weights to 1e-6 relative), with and without gradient accumulation, and with LoRA; ZeRO-2
// never holds the whole gradient; sharded optimizer state resumes bitwise on the same world
// size and is re-cut for another one (and a 1-process AdamW state is sharded on load).
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/test_util.h"
#include "dist/dist_test_util.h"
#include "dist/dist_train_util.h"
#include "robometer/core/error.h"
#include "robometer/dist/sharded_adamw.h"
#include "robometer/dist/sharded_grad_sync.h"
#include "robometer/io/safetensors.h"

namespace fs = std::filesystem;
using namespace robometer;
using namespace robometer::test::dist_train;
using robometer::test::env_int;
using robometer::test::expect_all_ok;
using robometer::test::run_ranks;
using Mode = dist::ShardedGradSync::Mode;

namespace {

std::string env_str(const char* name, const char* fallback = "") {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

Mode mode_from_env() {
  const auto m = env_str("ROBOMETER_TEST_SHARD", "gradients");
  if (m == "optimizer") return Mode::Optimizer;
  if (m == "gradients") return Mode::Gradients;
  throw Error("ROBOMETER_TEST_SHARD: unknown mode '" + m + "'");
}

void expect_losses_rel(const std::vector<double>& got, const std::vector<double>& ref, double tol) {
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < ref.size(); ++i)
    EXPECT_LE(std::abs(got[i] - ref[i]), tol * std::abs(ref[i]))
        << "step " << i << ": " << got[i] << " vs " << ref[i];
}

template <class M>
void load_into(M& net, const std::vector<torch::Tensor>& values) {
  torch::NoGradGuard ng;
  auto ps = net->parameters();
  ASSERT_EQ(ps.size(), values.size());
  for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(values[i]);
}

io::NamedTensors as_named(const std::vector<torch::Tensor>& ts) {
  io::NamedTensors out;
  for (size_t i = 0; i < ts.size(); ++i) out.emplace_back("t" + std::to_string(i), ts[i].contiguous());
  return out;
}

std::vector<torch::Tensor> from_named(const io::NamedTensors& named) {
  std::vector<torch::Tensor> out(named.size());
  for (const auto& [k, t] : named) out[std::stoul(k.substr(1))] = t;
  return out;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

// N ranks with a ShardedGradSync + ShardedAdamW against one process with the whole batch.
template <class M>
void expect_matches_big_batch(M net, M ref_net, Mode mode, int accum) {
  auto w = worker_world();
  const int n = w->size();
  train::LocalAdamW ref_opt(trainable(ref_net), adamw_config());
  train::NoGradSync nosync;
  train::LocalWorld local;
  const auto ref = train_steps(ref_net, ref_opt, nosync, local, n, 0, 5, 0.5, accum);

  dist::ShardedGradSync sync(w, mode, 0.0002);  // ~50 floats a bucket: several buckets
  sync.attach(trainable(net));
  EXPECT_GT(sync.bucket_count(), 1u);
  EXPECT_LT(sync.layout().shard_size, sync.layout().total);  // each rank keeps a part
  dist::ShardedAdamW opt(w, trainable(net), adamw_config(), &sync, 0.0001);
  const auto got = train_steps(net, opt, sync, *w, n, 0, 5, 0.5, accum);
  expect_losses_rel(got.losses, ref.losses, 1e-6);
  expect_rel_close(got.params, ref.params, 1e-6, "sharded vs 1 process with the whole batch");
}

}  // namespace

// ------------------------------------------------------------------ workers (one per rank)

TEST(DistWorker, ShardMatchesBigBatch) {
  ROBOMETER_DIST_WORKER_ONLY();
  const Mode mode = mode_from_env();
  const int accum = std::max(1, env_int("ROBOMETER_TEST_ACCUM"));
  if (env_int("ROBOMETER_TEST_LORA")) {
    expect_matches_big_batch(make_lora_net(), make_lora_net(), mode, accum);
  } else {
    auto net = make_net();
    const auto unused_before = net->unused.detach().clone();
    expect_matches_big_batch(net, make_net(), mode, accum);
    // No rank produced a gradient for `unused`: untouched (no weight decay), as in one process.
    EXPECT_TRUE(net->unused.equal(unused_before));
  }
}

// Today's ZeRO-1 (NoGradSync; ShardedAdamW reduces .grad in step()) and ZeRO-1 overlapped with
// backward (ShardedGradSync, Optimizer mode) leave bitwise the same weights and losses (with
// ROBOMETER_TEST_BITWISE=1; else to 1e-6).
TEST(DistWorker, Zero1OverlappedEqualsZero1) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int n = w->size();
  const bool bitwise = env_int("ROBOMETER_TEST_BITWISE") != 0;
  auto net_a = make_net();
  train::NoGradSync nosync;
  dist::ShardedAdamW opt_a(w, trainable(net_a), adamw_config());
  const auto a = train_steps(net_a, opt_a, nosync, *w, n, 0, 5, 0.5);

  auto net_b = make_net();
  dist::ShardedGradSync sync(w, Mode::Optimizer, 0.0002);
  sync.attach(trainable(net_b));
  EXPECT_GT(sync.bucket_count(), 2u);
  // Weights gathered in chunks of ~6 floats a rank (the plain path gathers all at once).
  dist::ShardedAdamW opt_b(w, trainable(net_b), adamw_config(), &sync, 0.0001);
  const auto b = train_steps(net_b, opt_b, sync, *w, n, 0, 5, 0.5);
  ASSERT_EQ(a.params.size(), b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    if (bitwise)
      EXPECT_TRUE(b.params[i].equal(a.params[i]))
          << "param " << i << " differs by " << (b.params[i] - a.params[i]).abs().max().item<double>();
    else
      EXPECT_LE((b.params[i] - a.params[i]).abs().max().item<double>(), 1e-6) << "param " << i;
  }
  for (size_t i = 0; i < a.losses.size(); ++i) {
    if (bitwise)
      EXPECT_EQ(b.losses[i], a.losses[i]) << "step " << i;
    else
      EXPECT_NEAR(b.losses[i], a.losses[i], 1e-6 * std::abs(a.losses[i])) << "step " << i;
  }
  EXPECT_EQ(opt_b.state_json(), opt_a.state_json());
}

// ZeRO-2 keeps no whole gradient: after each backward at most the last parameter's .grad is
// set (the rest are in buckets, reduced or in flight); after finish() none is, and the rank
// holds only its fp32 shard. ZeRO-1 keeps .grad through accumulation micro-steps.
TEST(DistWorker, Zero2HoldsOnlyItsShard) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int r = w->rank(), n = w->size();
  for (Mode mode : {Mode::Gradients, Mode::Optimizer}) {
    auto net = make_net();
    auto params = trainable(net);
    dist::ShardedGradSync sync(w, mode, 0.0002);
    sync.attach(params);
    for (int micro = 0; micro < 2; ++micro) {
      auto [x, y] = global_batch(n, 0, micro);
      x = x.slice(0, r * kRowsPerRank, (r + 1) * kRowsPerRank);
      y = y.slice(0, r * kRowsPerRank, (r + 1) * kRowsPerRank);
      sync.before_backward(micro == 1);
      (torch::mse_loss(net->forward(x), y) / 2).backward();
      int with_grad = 0;
      for (auto& [name, p] : params) with_grad += p.grad().defined() ? 1 : 0;
      if (mode == Mode::Gradients) {
        EXPECT_LE(with_grad, 1) << "micro-step " << micro;
      } else if (micro == 0) {
        EXPECT_EQ(with_grad, static_cast<int>(params.size()) - 1);  // all but `unused`
      }
    }
    sync.finish();
    for (auto& [name, p] : params) EXPECT_FALSE(p.grad().defined()) << name;
    ASSERT_TRUE(sync.reduced());
    EXPECT_EQ(sync.grad_shard().numel(), sync.layout().shard_size);
    EXPECT_EQ(sync.layout().shard_size, (sync.layout().total + n - 1) / n);
    EXPECT_GT(sync.grad_shard().abs().sum().item<double>(), 0.0);
  }
}

// Same world size: the state after 3 steps, loaded into a fresh model + optimizer, continues
// bitwise like the uninterrupted run.
TEST(DistWorker, ShardResumeSameWorldBitwise) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int n = w->size();
  const Mode mode = mode_from_env();
  auto net_a = make_net();
  dist::ShardedGradSync sync_a(w, mode, 0.0002);
  sync_a.attach(trainable(net_a));
  dist::ShardedAdamW opt_a(w, trainable(net_a), adamw_config(), &sync_a);
  train_steps(net_a, opt_a, sync_a, *w, n, 0, 3, 0.5);
  const auto params3 = snapshot(net_a);
  const auto tensors3 = opt_a.state_tensors();
  const auto json3 = opt_a.state_json();
  const auto full = train_steps(net_a, opt_a, sync_a, *w, n, 3, 2, 0.5);

  auto net_b = make_net();
  load_into(net_b, params3);
  dist::ShardedGradSync sync_b(w, mode, 0.0002);
  sync_b.attach(trainable(net_b));
  dist::ShardedAdamW opt_b(w, trainable(net_b), adamw_config(), &sync_b);
  opt_b.load_state(tensors3, json3);
  const auto resumed = train_steps(net_b, opt_b, sync_b, *w, n, 3, 2, 0.5);
  for (size_t i = 0; i < full.params.size(); ++i)
    EXPECT_TRUE(resumed.params[i].equal(full.params[i])) << "param " << i;
  for (size_t i = 0; i < full.losses.size(); ++i) EXPECT_EQ(resumed.losses[i], full.losses[i]);
}

// Re-sharding, phase 1 (N ranks): 3 steps of ZeRO-2 on the global batch of 4 × 3 rows, every
// rank's optimizer shard and the weights saved, then 2 more steps (the expected result).
constexpr int kDataWorld = 4;

TEST(DistWorker, ShardReshardSave) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const int r = w->rank();
  const fs::path dir = env_str("ROBOMETER_TEST_SHARED");
  auto net = make_net();
  dist::ShardedGradSync sync(w, Mode::Gradients, 0.0002);
  sync.attach(trainable(net));
  dist::ShardedAdamW opt(w, trainable(net), adamw_config(), &sync);
  train_steps(net, opt, sync, *w, kDataWorld, 0, 3, 0.5);
  io::save_safetensors((dir / ("opt" + std::to_string(r) + ".safetensors")).string(), opt.state_tensors());
  std::ofstream(dir / ("opt" + std::to_string(r) + ".json")) << opt.state_json().dump();
  if (r == 0) io::save_safetensors((dir / "params3.safetensors").string(), as_named(snapshot(net)));
  const auto full = train_steps(net, opt, sync, *w, kDataWorld, 3, 2, 0.5);
  if (r == 0) io::save_safetensors((dir / "params5.safetensors").string(), as_named(full.params));
  w->barrier();
}

// Phase 2 (M ranks, M != N): the N shards re-cut for M ranks continue like the N-rank run;
// and a 1-process AdamW state is sharded on load and continues like that process.
TEST(DistWorker, ShardReshardLoad) {
  ROBOMETER_DIST_WORKER_ONLY();
  auto w = worker_world();
  const fs::path dir = env_str("ROBOMETER_TEST_SHARED");
  const int saved_world = env_int("ROBOMETER_TEST_SAVED_WORLD");
  ASSERT_GT(saved_world, 0);
  ASSERT_NE(saved_world, w->size());
  auto net = make_net();
  load_into(net, from_named(io::load_safetensors((dir / "params3.safetensors").string())));
  dist::ShardedGradSync sync(w, Mode::Gradients, 0.0002);
  sync.attach(trainable(net));
  dist::ShardedAdamW opt(w, trainable(net), adamw_config(), &sync);
  // The same-world-size loader refuses another world size, naming it.
  try {
    opt.load_state(io::load_safetensors((dir / "opt0.safetensors").string()), read_json(dir / "opt0.json"));
    ADD_FAILURE() << "load_state took a shard of another world size";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("world size"), std::string::npos) << e.what();
  }
  std::set<int> read;
  opt.load_resharded(
      saved_world, [&](int k) { return read_json(dir / ("opt" + std::to_string(k) + ".json")); },
      [&](int k) {
        read.insert(k);
        return io::load_safetensors((dir / ("opt" + std::to_string(k) + ".safetensors")).string());
      });
  // Only the saved shards overlapping this rank's slice were read.
  const int64_t per_saved = (sync.layout().total + saved_world - 1) / saved_world;
  for (int k = 0; k < saved_world; ++k) {
    const bool overlaps =
        std::max<int64_t>(k * per_saved, opt.shard_begin()) <
        std::min<int64_t>(std::min<int64_t>((k + 1) * per_saved, sync.layout().total), opt.shard_end());
    EXPECT_EQ(read.count(k) == 1, overlaps) << "saved shard " << k;
  }
  const auto got = train_steps(net, opt, sync, *w, kDataWorld, 3, 2, 0.5);
  const auto expected = from_named(io::load_safetensors((dir / "params5.safetensors").string()));
  expect_rel_close(got.params, expected, 1e-6, "re-sharded resume vs the uninterrupted run");

  // A single-process AdamW state (what `robometer train` on one GPU saves) onto M ranks.
  auto ref_net = make_net();
  train::LocalAdamW ref_opt(trainable(ref_net), adamw_config());
  train::NoGradSync nosync;
  train::LocalWorld local;
  train_steps(ref_net, ref_opt, nosync, local, kDataWorld, 0, 3, 0.5);
  auto net2 = make_net();
  load_into(net2, snapshot(ref_net));
  dist::ShardedGradSync sync2(w, Mode::Gradients, 0.0002);
  sync2.attach(trainable(net2));
  dist::ShardedAdamW opt2(w, trainable(net2), adamw_config(), &sync2);
  opt2.load_state(ref_opt.state_tensors(), ref_opt.state_json());
  const auto ref_more = train_steps(ref_net, ref_opt, nosync, local, kDataWorld, 3, 2, 0.5);
  const auto got2 = train_steps(net2, opt2, sync2, *w, kDataWorld, 3, 2, 0.5);
  expect_rel_close(got2.params, ref_more.params, 1e-6, "1-process AdamW state sharded on load");
}

// ------------------------------------------------------------------ drivers

TEST(DistShard, Zero1OverlappedBitwiseEqualsZero1_2Ranks) {
  expect_all_ok(run_ranks("Zero1OverlappedEqualsZero1", 2, {{"ROBOMETER_TEST_BITWISE", "1"}}));
}

// On 4 ranks Gloo's ring sums each element in an order that depends on where it falls in the
// buffer, and the buckets are other buffers than the one flat vector: the last bit may differ
// (measured: <= 3e-8), so 4 ranks are held to 1e-6.
TEST(DistShard, Zero1OverlappedMatchesZero1_4Ranks) {
  expect_all_ok(run_ranks("Zero1OverlappedEqualsZero1", 4, {{"ROBOMETER_TEST_BITWISE", "0"}}));
}

TEST(DistShard, OptimizerMatchesBigBatch2And4Ranks) {
  for (int world : {2, 4})
    for (const char* accum : {"1", "2"})
      expect_all_ok(run_ranks("ShardMatchesBigBatch", world,
                              {{"ROBOMETER_TEST_SHARD", "optimizer"}, {"ROBOMETER_TEST_ACCUM", accum}}));
}

TEST(DistShard, GradientsMatchesBigBatch2And4Ranks) {
  for (int world : {2, 4})
    for (const char* accum : {"1", "2"})
      expect_all_ok(run_ranks("ShardMatchesBigBatch", world,
                              {{"ROBOMETER_TEST_SHARD", "gradients"}, {"ROBOMETER_TEST_ACCUM", accum}}));
}

TEST(DistShard, LoraMatchesBigBatch) {
  for (const char* mode : {"optimizer", "gradients"})
    for (int world : {2, 4})
      expect_all_ok(run_ranks(
          "ShardMatchesBigBatch", world,
          {{"ROBOMETER_TEST_SHARD", mode}, {"ROBOMETER_TEST_ACCUM", "2"}, {"ROBOMETER_TEST_LORA", "1"}}));
}

TEST(DistShard, Zero2HoldsOnlyItsShard) { expect_all_ok(run_ranks("Zero2HoldsOnlyItsShard", 2)); }

TEST(DistShard, ResumeSameWorldSizeBitwise) {
  for (const char* mode : {"optimizer", "gradients"})
    expect_all_ok(run_ranks("ShardResumeSameWorldBitwise", 2, {{"ROBOMETER_TEST_SHARD", mode}}));
}

TEST(DistShard, ResumeOnAnotherWorldSize) {
  for (auto [from, to] : {std::pair{2, 4}, std::pair{4, 2}, std::pair{4, 3}}) {
    test::TempDir shared;
    const std::map<std::string, std::string> env{{"ROBOMETER_TEST_SHARED", shared.path().string()},
                                                 {"ROBOMETER_TEST_SAVED_WORLD", std::to_string(from)}};
    expect_all_ok(run_ranks("ShardReshardSave", from, env));
    expect_all_ok(run_ranks("ShardReshardLoad", to, env));
  }
}
