// `robometer bench step --config CFG [key=value ...] [--steps N] [--warmup W] [--data DIR]`:
// where one training step's time goes. Runs N real steps (Trainer::step_once: data wait,
// forward, backward, grad sync, optimizer), each followed by the same work done alone on a
// fresh batch (processor+forward+objective, backward, clip+AdamW).
// Framework overhead = step time − (data wait + forward + backward + sync + optimizer, alone):
// what the loop costs beyond the work itself (target < 5 % of the step).
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "robometer/bench/benchmarks.h"
#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"
#include "robometer/train/options_from_config.h"
#include "robometer/train/trainer.h"

namespace robometer::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string config = "configs/tiny.yaml";
  std::vector<std::string> overrides;
  std::string data;
  int steps = 10;
  int warmup = 2;
  int repeats = 5;                          // repetitions of each isolated measurement
  bool prepare_on_training_thread = false;  // the processor as before: inside the step
};

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Mean seconds of fn() over n calls.
template <class F>
double time_mean(int n, F&& fn) {
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) fn();
  return since(t0) / n;
}

int run_bench_step(const Options& o) {
  if (o.steps < 1 || o.warmup < 0 || o.repeats < 1)
    throw ConfigError("bench step: --steps and --repeats must be >= 1, --warmup >= 0");
  std::vector<std::string> ov = o.overrides;
  ov.push_back("data.eval=[]");  // not used; avoids requiring an eval split
  if (!o.data.empty()) ov.push_back("data.train=[{path: " + o.data + ", weight: 1}]");
  // Nothing is written there (no fit()); a fresh path so that an existing run is not refused.
  ov.push_back("output.run_dir=" +
               (fs::temp_directory_path() / ("robometer-bench-step-" + std::to_string(::getpid()))).string());
  auto cfg = config::load_run_config(o.config, ov).config;
  for (const auto& d : cfg.data.train)
    if (!fs::exists(fs::path(d.path) / "manifest.json"))
      throw ConfigError("bench step: no dataset at '" + d.path +
                        "' (run `robometer synth --out runs/synth` first, or pass --data DIR)");

  // Keep a handle on the trainer's optimizer to time its step alone later.
  train::ParamOptimizer* opt = nullptr;
  train::TrainerSetup setup;
  setup.progress_bar = false;
  setup.prepare_in_loader = !o.prepare_on_training_thread;
  setup.make_optimizer = [&opt](const train::NamedParameters& p, const train::AdamWConfig& c) {
    auto o = std::make_unique<train::LocalAdamW>(p, c);
    opt = o.get();
    return std::unique_ptr<train::ParamOptimizer>(std::move(o));
  };
  train::Trainer trainer(cfg, std::move(setup));
  auto& bundle = trainer.model();
  bundle.model->train();
  const at::Device device = bundle.model->parameters().front().device();
  const int K = cfg.data.frames_per_trajectory;
  const double samples = static_cast<double>(cfg.train.batch_size) * cfg.train.grad_accum;
  std::printf("bench step: %s, batch %d x grad_accum %d, K=%d, %d data workers, %d intra-op threads, %s\n",
              o.config.c_str(), cfg.train.batch_size, cfg.train.grad_accum, K, cfg.data.num_workers,
              at::get_num_threads(), device.str().c_str());

  auto& loader = trainer.train_loader();
  auto next = [&loader]() {
    for (int tries = 0; tries < 2; ++tries) {
      if (auto b = loader.next()) return std::move(*b);
      loader.start_epoch(loader.state().epoch + 1);
    }
    throw Error("bench step: the loader yields no batch");
  };
  train::Objective objective(train::objective_config_from_config(cfg));
  // What the trainer hands the model: host tensors, packed under train.packing.
  auto inputs_of = [&](const data::Batch& b) {
    return train::host_pair_inputs(*bundle.processor, b, device.is_cuda(), cfg.train.packing);
  };

  // Real steps and the same work measured alone, interleaved round by round so that drift in
  // machine speed (other processes, frequency) hits both sides alike. Each round: one real
  // step (Trainer::step_once), then a fresh batch through processor+forward+objective and
  // backward on its own, then clip+AdamW on its own. The alone parts use as many different
  // batches as the steps do, so varying prompt lengths average out the same way.
  for (int i = 0; i < o.warmup; ++i) trainer.step_once();
  train::StepTimes step;
  double fwd_s = 0, bwd_s = 0, opt_s = 0;
  const int accum = cfg.train.grad_accum;
  int64_t forwards = 0, largest_forward = 0;
  for (int i = 0; i < o.steps; ++i) {
    const auto r = trainer.step_once();
    const auto& t = r.times;
    forwards += r.forwards;
    largest_forward = std::max(largest_forward, r.max_forward_tokens);
    step.data_s += t.data_s;
    step.forward_s += t.forward_s;
    step.backward_s += t.backward_s;
    step.sync_s += t.sync_s;
    step.optimizer_s += t.optimizer_s;
    step.total_s += t.total_s;
    step.input_s += t.input_s;
    for (int micro = 0; micro < accum; ++micro) {
      const data::Batch b = next();
      auto t0 = Clock::now();
      auto terms = objective(bundle.model->forward(inputs_of(b)), b);
      fwd_s += since(t0);
      t0 = Clock::now();
      if (terms.requires_grad()) (terms.total / accum).backward();
      bwd_s += since(t0);
    }
    const auto t0 = Clock::now();
    opt->clip_grad_norm(cfg.train.max_grad_norm);
    opt->step();
    opt_s += since(t0);
    opt->zero_grad();
  }
  const double n = o.steps;
  step = {step.data_s / n,      step.forward_s / n, step.backward_s / n, step.sync_s / n,
          step.optimizer_s / n, step.total_s / n,   step.input_s / n};
  fwd_s /= n;  // per step (all micro-batches)
  bwd_s /= n;
  opt_s /= n;

  // Informational break-downs, on one pre-fetched batch.
  const data::Batch batch = next();
  model::ModelInputs in = inputs_of(batch);
  const double tokens = in.attention_mask.defined() ? in.attention_mask.sum().item<double>()
                                                    : static_cast<double>(in.input_ids.numel());
  const double processor_s = time_mean(o.repeats, [&] { in = inputs_of(batch); });
  // The whole processor from the frames, as the training thread ran it before the loader's
  // workers took it over: the "before" figure beside the in-step "after".
  data::Batch raw = batch;
  for (auto& smp : raw.samples) smp.prepared.reset();
  const double full_processor_s = time_mean(o.repeats, [&] { in = inputs_of(raw); });
  const double model_fwd_s = time_mean(o.repeats, [&] { bundle.model->forward(in); });
  const double clip_s = time_mean(o.repeats, [&] { opt->clip_grad_norm(cfg.train.max_grad_norm); });
  const double loader_s = time_mean(o.repeats * accum, [&] { next(); });

  // Host syncs: one more real step, counted by site, and the model forward alone on host inputs.
  auto& syncs = core::HostSyncCounter::instance();
  const auto sites_before = syncs.by_site();
  const int64_t step_syncs = trainer.step_once().host_syncs;
  const auto sites_after = syncs.by_site();
  const int64_t fwd_before = syncs.total();
  bundle.model->forward(inputs_of(batch));
  const int64_t forward_syncs = syncs.total() - fwd_before;

  // Padding waste over real batches: tokens the decoder computes per real token, padded (B x
  // longest) and packed (what model::pack_inputs leaves: the real tokens end to end).
  double tokens_real = 0, tokens_padded = 0, tokens_packed = 0;
  for (int i = 0; i < 20; ++i) {
    const auto in = train::host_pair_inputs(*bundle.processor, next());
    tokens_real += in.attention_mask.sum().item<double>();
    tokens_padded += static_cast<double>(in.input_ids.numel());
    tokens_packed += static_cast<double>(model::pack_inputs(in).input_ids.numel());
  }

  const double parts = step.data_s + fwd_s + bwd_s + step.sync_s + opt_s;
  const double overhead = step.total_s - parts;

  auto ms = [](double s) { return 1e3 * s; };
  auto pct = [&](double s) { return 100.0 * s / step.total_s; };
  std::printf(
      "\nper step, mean of %d steps after %d warm-up, each followed by the parts alone (times in ms)\n",
      o.steps, o.warmup);
  std::printf("%-22s %10s %8s   %-34s %10s\n", "part", "in step", "share", "measured alone", "alone");
  std::printf("%-22s %10.1f %7.1f%%   %-34s %10.1f\n", "data wait", ms(step.data_s), pct(step.data_s),
              "loader.next() back to back", ms(loader_s * accum));
  std::printf("%-22s %10.1f %7.1f%%   %-34s %10.1f\n", "forward", ms(step.forward_s), pct(step.forward_s),
              "processor+forward+objective", ms(fwd_s));
  std::printf("%-22s %10.1f %7.1f%%   %-34s %10.1f\n", "  of which input prep", ms(step.input_s),
              pct(step.input_s), "  of which pair_inputs (this batch)", ms(accum * processor_s));
  std::printf("%-22s %10s %8s   %-34s %10.1f\n", "", "", "", "  of which model forward",
              ms(accum * model_fwd_s));
  std::printf("%-22s %10.1f %7.1f%%   %-34s %10.1f\n", "backward", ms(step.backward_s), pct(step.backward_s),
              "backward", ms(bwd_s));
  std::printf("%-22s %10.1f %7.1f%%   %-34s %10s\n", "grad sync", ms(step.sync_s), pct(step.sync_s),
              "(in step)", "");
  std::printf("%-22s %10.1f %7.1f%%   %-34s %10.1f\n", "optimizer", ms(step.optimizer_s),
              pct(step.optimizer_s), "clip + AdamW step", ms(opt_s));
  std::printf("%-22s %10s %8s   %-34s %10.1f\n", "", "", "", "  of which clip_grad_norm", ms(clip_s));
  std::printf("%-22s %10.1f %7.1f%%\n", "step total", ms(step.total_s), 100.0);
  std::printf(
      "%-22s %10.1f %7.1f%%   (step - data wait - fwd+bwd alone - sync - optimizer alone; target < 5%%)\n",
      "framework overhead", ms(overhead), pct(overhead));
  std::printf(
      "\ninput prep on training thread: %.1f ms (%.1f%% of step; processor %s); the whole processor from "
      "frames on that thread would be %.1f ms (%.1f%%)\n",
      ms(step.input_s), pct(step.input_s),
      o.prepare_on_training_thread ? "on the training thread" : "in the loader workers, collate here",
      ms(accum * full_processor_s), pct(accum * full_processor_s));
  std::printf("data wait: %.1f ms (%.1f%% of step)\n", ms(step.data_s), pct(step.data_s));
  std::printf(
      "padding: tokens computed / tokens real over 20 batches = %.3f padded, %.3f packed (this run: %s)\n",
      tokens_padded / std::max(1.0, tokens_real), tokens_packed / std::max(1.0, tokens_real),
      cfg.train.packing ? "train.packing=true" : "padded");
  std::printf(
      "forwards per step: %.2f (%d micro-batches; train.max_tokens_per_batch = %d), largest forward %lld "
      "tokens computed\n",
      static_cast<double>(forwards) / n, accum, cfg.train.max_tokens_per_batch,
      static_cast<long long>(largest_forward));
  std::printf("host syncs: %lld per step (%d micro-batches), %lld in the model forward; by site:\n",
              static_cast<long long>(step_syncs), accum, static_cast<long long>(forward_syncs));
  for (const auto& [site, n] : sites_after) {
    auto it = sites_before.find(site);
    const int64_t d = n - (it == sites_before.end() ? 0 : it->second);
    if (d > 0) std::printf("  %-52s %lld\n", site.c_str(), static_cast<long long>(d));
  }
  std::printf("\nthroughput: %.2f samples/s, %.1f frames/s, %.0f tokens/s (%.0f tokens per micro-batch)\n",
              samples / step.total_s, samples * 2 * K / step.total_s, tokens * accum / step.total_s, tokens);
  return 0;
}

}  // namespace

Benchmark step_benchmark() {
  return {"step", "Training step time split: data wait, forward, backward, sync, optimizer, overhead",
          [](CLI::App& sub, int& exit_code) {
            auto o = std::make_shared<Options>();
            sub.add_option("--config", o->config, "YAML run config")->capture_default_str();
            sub.add_option("overrides", o->overrides, "key.sub=value overrides");
            sub.add_option(
                "--data", o->data,
                "training manifest dir (default: the config's data.train, runs/synth/train for tiny.yaml)");
            sub.add_option("--steps", o->steps, "timed steps")->capture_default_str();
            sub.add_option("--warmup", o->warmup, "untimed steps first")->capture_default_str();
            sub.add_option("--repeats", o->repeats, "repetitions of each isolated measurement")
                ->capture_default_str();
            sub.add_flag("--prepare-on-training-thread", o->prepare_on_training_thread,
                         "run the processor inside the step as before (the loader workers do it by default)");
            sub.callback([o, &exit_code] { exit_code = run_bench_step(*o); });
          }};
}

}  // namespace robometer::bench
