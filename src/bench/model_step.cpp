// `robometer bench model-step`: one training step of the reward model on a synthetic batch
// (random uint8 frames of the given size, a fixed task string), or with --real-data DIR on the
// first batch the sampler and processor make from that dataset exactly as training does (real
// frames, different prompt lengths; padded, or packed under train.packing): processor -> model
// -> objective -> backward -> clip -> AdamW step, built from the same pieces the trainer uses.
// Prints step time, samples/s, tokens/s, model FLOPs utilisation and peak device memory, and the
// token/patch counts so that scripts/gpu/hf_step.py can time HF transformers on the same shapes.
//
// MFU counts model FLOPs (no activation-recompute), per step:
//   6·N_train·T           trainable LLM matmul weights (fwd + bwd for activations and weights)
// + 4·N_llm_frozen·T      frozen LLM matmul weights on the gradient path (LoRA base weights)
// + 2·N_vis·P + 2·N_merge·P/4   frozen vision tower, forward only (P patches; mergers act on
//                               merged tokens)
// + 6·n_layers·Σ L_i²·d_attn   causal text attention: forward 2·L_i²·d_attn per layer and sequence
//                               of L_i real tokens (QK^T and AV over half the square), ×3 for
//                               training; padding is not counted (it is not model work)
// + 4·depth·S²·d_vis per image  vision attention (full, per image of S patches), forward only
// divided by step time × peak (989 TFLOP/s = H100 SXM dense bf16; --peak-tflops to change).
// N_* count only weights of matmuls (dim >= 2), not the embedding tables (a lookup, no matmul).
#include <torch/cuda.h>
#include <torch/torch.h>

#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>) && \
    !defined(ROBOMETER_NO_CUDA_STATS)
#include <c10/cuda/CUDACachingAllocator.h>
#define ROBOMETER_CUDA_STATS 1
#else
#define ROBOMETER_CUDA_STATS 0
#endif

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "robometer/bench/benchmarks.h"
#include "robometer/config/loader.h"
#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/data/loader.h"
#include "robometer/data/options_from_config.h"
#include "robometer/data/sample.h"
#include "robometer/data/trajectory_index.h"
#include "robometer/model/checkpointing.h"
#include "robometer/model/factory.h"
#include "robometer/model/fused_kernels.h"
#include "robometer/train/objective.h"
#include "robometer/train/options_from_config.h"
#include "robometer/train/param_optimizer.h"
#include "robometer/train/trainer.h"

namespace robometer::bench {
namespace {

struct Options {
  std::string config = "configs/robometer_4b.yaml";
  std::vector<std::string> overrides;
  int pairs = 16;
  int frames = 8;
  int height = 240;
  int width = 320;
  int steps = 5;
  int warmup = 2;
  int lora = 0;               // > 0: LoRA rank (base LLM frozen)
  std::string checkpointing;  // "" = the config's value; on|off|none|full|selective|N
  int fused = -1;             // -1 = default (ROBOMETER_FUSED), 0 = eager paths, 1 = fused where built
  std::string sweep;          // e.g. "none,selective,18,full/eager": more plans after the main run
  int sweep_steps = 3;
  bool agreement = false;  // fused vs eager loss and grad norm before the timed steps
  std::string dtype;       // "" = the config's model.dtype
  int fp32_master = -1;    // -1 = optimizer default (on), 0 / 1
  std::string task = "pick up the red block and place it in the bowl";
  std::string device = "auto";
  double peak_tflops = 989.0;
  std::string json_out;
  uint64_t seed = 0;
  std::string real_data;  // a dataset directory: the first training batch from it instead
};

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void sync(const at::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

// Random frames and plausible labels for `pairs` pairs of K frames each.
data::Batch synthetic_batch(const Options& o) {
  data::Batch b;
  const int64_t P = o.pairs, K = o.frames;
  for (int64_t i = 0; i < P; ++i) {
    data::PairSample s;
    s.task = o.task;
    s.a.frames = torch::randint(0, 256, {K, o.height, o.width, 3}, torch::kUInt8);
    s.b.frames = torch::randint(0, 256, {K, o.height, o.width, 3}, torch::kUInt8);
    b.samples.push_back(std::move(s));
  }
  b.preference = (torch::rand({P}) > 0.5).to(torch::kFloat);
  b.progress_a = torch::linspace(0, 1, K).repeat({P, 1});
  b.progress_target_a = torch::softmax(torch::randn({P, K, data::kProgressBins}), -1);
  b.progress_mask_a = torch::ones({P});
  b.success_a = (b.progress_a > 0.9).to(torch::kFloat);
  b.success_mask_a = torch::ones({P, K});
  return b;
}

// Real tokens of each sequence: the packed lengths, or the attention mask's row sums.
std::vector<int64_t> sequence_lengths(const model::ModelInputs& in) {
  if (in.seq_lens.defined()) return model::packed_lengths(in);
  std::vector<int64_t> out;
  const auto rows = in.attention_mask.sum(1).to(at::kCPU, at::kLong).contiguous();
  out.assign(rows.data_ptr<int64_t>(), rows.data_ptr<int64_t>() + rows.numel());
  return out;
}

// The first training batch of `dir` as the trainer makes it (sampler, frame decoding, labels,
// the processor's per-sample half in the loader's workers), batch size `pairs`.
data::Batch real_batch(config::RunConfig cfg, const std::string& dir, int pairs,
                       const model::Processor& proc) {
  cfg.data.train = {{dir, 1.0}};
  cfg.train.batch_size = pairs;
  auto index = data::open_trajectory_index({{dir, 1.0}}, data::parse_index_policy(cfg.data.index));
  data::LoaderOptions lo = data::loader_options_from_config(cfg, false, 0, 1);
  lo.prepare = train::prepare_pair_prompt(proc);
  data::Loader loader(index, lo);
  auto b = loader.next();
  if (!b)
    throw ConfigError("bench model-step: --real-data " + dir + " yields no batch of " +
                      std::to_string(pairs) + " pairs (" + std::to_string(index->size()) + " trajectories)");
  return std::move(*b);
}

struct FlopCount {
  int64_t n_train_llm = 0, n_frozen_llm = 0, n_vis = 0, n_merge = 0;
  double per_step = 0;
};

FlopCount count_flops(model::RewardModel& m, const model::ModelInputs& in) {
  FlopCount f;
  for (const auto& np : m->named_parameters()) {
    const std::string& name = np.key();
    const at::Tensor& p = np.value();
    if (p.dim() < 2 || name.find("embed") != std::string::npos) continue;
    if (name.rfind("model.visual.", 0) == 0) {
      (name.find("merger") != std::string::npos ? f.n_merge : f.n_vis) += p.numel();
    } else if (name.rfind("model.language_model.", 0) == 0) {
      (p.requires_grad() ? f.n_train_llm : f.n_frozen_llm) += p.numel();
    }
  }
  const auto& bc = m->config().backbone;
  const std::vector<int64_t> lengths = sequence_lengths(in);
  double T = 0, sum_l2 = 0;
  for (const int64_t l : lengths) {
    T += static_cast<double>(l);
    sum_l2 += static_cast<double>(l) * static_cast<double>(l);
  }
  const double P = static_cast<double>(in.pixel_values.size(0));
  const double d_attn = static_cast<double>(bc.text.num_attention_heads * bc.text.head_dim);
  double flops = 6.0 * f.n_train_llm * T + 4.0 * f.n_frozen_llm * T;
  flops += 2.0 * f.n_vis * P + 2.0 * f.n_merge * P / 4.0;
  flops += 3.0 * 2.0 * sum_l2 * d_attn * bc.text.num_hidden_layers;  // causal: half of 4·L²·d
  auto grid = in.image_grid_thw.to(at::kCPU);
  const auto g = grid.accessor<int64_t, 2>();
  for (int64_t i = 0; i < grid.size(0); ++i) {
    const double S = static_cast<double>(g[i][0] * g[i][1] * g[i][2]);
    flops += 4.0 * S * S * bc.vision.hidden_size * bc.vision.depth;
  }
  f.per_step = flops;
  return f;
}

int run_bench_model_step(const Options& o) {
  if (o.pairs < 1 || o.frames < 1 || o.steps < 1 || o.warmup < 0 || o.height < 16 || o.width < 16)
    throw ConfigError("bench model-step: --pairs, --frames, --steps >= 1, --warmup >= 0, frames >= 16 px");
  std::vector<std::string> ov = {"data.train=[]", "data.eval=[]"};
  ov.insert(ov.end(), o.overrides.begin(), o.overrides.end());
  config::RunConfig cfg = config::load_run_config(o.config, ov).config;
  if (!o.dtype.empty()) cfg.model.dtype = o.dtype;
  if (!o.checkpointing.empty())
    cfg.model.activation_checkpointing =
        model::CheckpointPlan::parse(o.checkpointing, "--checkpointing").str();
  if (o.fused >= 0) compat::set_fused_enabled(o.fused != 0);
  if (o.lora > 0) {
    cfg.model.lora.enabled = true;
    cfg.model.lora.r = o.lora;
  }

  at::Device device(at::kCPU);
  if (o.device == "cuda" || (o.device == "auto" && torch::cuda::is_available()))
    device = at::Device(at::kCUDA, 0);
  else if (o.device != "cpu" && o.device != "auto")
    throw ConfigError("bench model-step: --device auto|cpu|cuda");
  const bool autocast_bf16 = train::bf16_autocast_from_config(cfg, device);

  const std::string shape = o.real_data.empty() ? std::to_string(o.frames) + " frames of " +
                                                      std::to_string(o.width) + "x" + std::to_string(o.height)
                                                : std::to_string(cfg.data.frames_per_trajectory) +
                                                      " frames (data.resize) of " + o.real_data;
  std::printf("bench model-step: %s, %d pairs x 2 x %s, dtype %s%s, checkpointing %s, %s, device %s\n",
              o.config.c_str(), o.pairs, shape.c_str(), cfg.model.dtype.c_str(),
              autocast_bf16 ? " (bf16 autocast)" : "", cfg.model.activation_checkpointing.c_str(),
              o.lora > 0 ? ("LoRA r=" + std::to_string(o.lora)).c_str() : "full LLM", device.str().c_str());
  std::fflush(stdout);

  auto t_build = Clock::now();
  torch::manual_seed(o.seed);
  model::ModelBundle mb = model::build_model(cfg.model, device, o.seed);
  sync(device);
  const double build_s = since(t_build);
  mb.model->train();

  // The training run's optimizer and objective (lr rules, LayerNorm exemption, progress scale).
  const train::NamedParameters trainable = train::trainable_parameters(*mb.model);
  train::AdamWConfig oc = train::adamw_config_from_config(cfg, *mb.model);
  if (o.fp32_master >= 0) oc.fp32_master = o.fp32_master != 0;
  train::LocalAdamW optimizer(trainable, oc);
  train::Objective objective(train::objective_config_from_config(cfg));

  // Inputs: processed once (timed separately: the loader/processor run on CPU threads ahead of
  // the GPU in training), then reused every step.
  const bool real = !o.real_data.empty();
  data::Batch batch = real ? real_batch(cfg, o.real_data, o.pairs, *mb.processor) : synthetic_batch(o);
  auto t_proc = Clock::now();
  model::ModelInputs in;
  if (real) {
    in = train::host_pair_inputs(*mb.processor, batch, device.is_cuda(), cfg.train.packing);
  } else {
    std::vector<model::PairQuery> queries;
    for (const auto& s : batch.samples) queries.push_back({s.task, s.a.frames, s.b.frames});
    in = mb.processor->pair_inputs(queries);
  }
  const double processor_s = since(t_proc);
  // Host-side figures before the move (seq_lens stays on the host).
  const std::vector<int64_t> lengths = sequence_lengths(in);
  int64_t tokens = 0;
  for (const int64_t l : lengths) tokens += l;
  const int64_t computed_tokens = in.input_ids.numel();
  for (at::Tensor* t : {&in.input_ids, &in.attention_mask, &in.pixel_values, &in.image_grid_thw,
                        &in.prog_positions, &in.pref_positions})
    if (t->defined()) *t = t->to(device);
  for (at::Tensor* t :
       {&batch.preference, &batch.progress_a, &batch.progress_target_a, &batch.progress_mask_a,
        &batch.progress_frame_mask_a, &batch.success_a, &batch.success_mask_a})
    if (t->defined()) *t = t->to(device);

  const int64_t seq_len = *std::max_element(lengths.begin(), lengths.end());
  const int64_t patches = in.pixel_values.size(0);
  const int64_t images = in.image_grid_thw.size(0);
  auto grid0 = in.image_grid_thw[0].to(at::kCPU);
  const int64_t gt = grid0[0].item<int64_t>(), gh = grid0[1].item<int64_t>(), gw = grid0[2].item<int64_t>();
  const FlopCount fc = count_flops(mb.model, in);
  std::printf(
      "shapes: seq_len %lld, tokens %lld (%lld per sequence), images %lld (grid t=%lld h=%lld w=%lld), "
      "pixel patches %lld\n",
      (long long)seq_len, (long long)tokens, (long long)(tokens / o.pairs), (long long)images, (long long)gt,
      (long long)gh, (long long)gw, (long long)patches);
  std::printf("data: %s; tokens computed / tokens real = %lld / %lld = %.3f (%s)\n",
              real ? ("real, first batch of " + o.real_data).c_str() : "synthetic (identical prompts)",
              (long long)computed_tokens, (long long)tokens,
              static_cast<double>(computed_tokens) / static_cast<double>(std::max<int64_t>(1, tokens)),
              in.seq_lens.defined() ? "packed" : "padded");
  std::printf(
      "params: %.1f M total, %.1f M trainable; matmul weights: LLM trainable %.1f M, LLM frozen %.1f M, "
      "vision %.1f M + mergers %.1f M; %.1f TFLOP per step (model FLOPs)\n",
      mb.model->num_parameters(false) / 1e6, mb.model->num_parameters(true) / 1e6, fc.n_train_llm / 1e6,
      fc.n_frozen_llm / 1e6, fc.n_vis / 1e6, fc.n_merge / 1e6, fc.per_step / 1e12);
  std::printf("build %.1f s, processor %.3f s per batch (CPU)\n", build_s, processor_s);
  std::printf("fused paths compiled: %s; switched %s\n", compat::fused_paths_compiled().c_str(),
              compat::fused_enabled() ? "on" : "off");
  std::printf("%s\n", model::project_kernels_summary().c_str());
  std::fflush(stdout);

  // phases (optional): forward+loss, backward, clip+optimizer seconds, each ended by a device
  // sync (a few ms per step; only the timed steps pass it).
  double grad_norm = 0;
  auto one_step = [&](double* phases) -> double {
    auto mark = Clock::now();
    auto lap = [&](int i) {
      if (!phases) return;
      sync(device);
      phases[i] += since(mark);
      mark = Clock::now();
    };
    optimizer.zero_grad();
    if (autocast_bf16) compat::set_autocast(device.type(), true);
    auto out = mb.model->forward(in);
    if (autocast_bf16) compat::set_autocast(device.type(), false);
    train::LossTerms terms = objective(out, batch);
    if (!terms.requires_grad()) throw Error("bench model-step: the loss has no gradient");
    lap(0);
    terms.total.backward();
    lap(1);
    grad_norm = optimizer.clip_grad_norm(cfg.train.max_grad_norm);
    optimizer.step();
    lap(2);
    return terms.total_value;
  };

  // Fused vs eager on the same weights and batch (before any update): loss and grad norm.
  double agree[2][2] = {{0, 0}, {0, 0}};  // [eager, fused][loss, grad norm]
  if (o.agreement) {
    const bool was = compat::fused_enabled();
    for (int f = 0; f < 2; ++f) {
      compat::set_fused_enabled(f == 1);
      optimizer.zero_grad();
      if (autocast_bf16) compat::set_autocast(device.type(), true);
      auto out = mb.model->forward(in);
      if (autocast_bf16) compat::set_autocast(device.type(), false);
      train::LossTerms terms = objective(out, batch);
      terms.total.backward();
      agree[f][0] = terms.total_value;
      agree[f][1] = optimizer.clip_grad_norm(0.0);  // measure only
    }
    optimizer.zero_grad();
    compat::set_fused_enabled(was);
    std::printf("AGREEMENT fused vs eager: loss %.6f vs %.6f (rel %.2e), grad norm %.6f vs %.6f (rel %.2e)\n",
                agree[1][0], agree[0][0],
                std::abs(agree[1][0] - agree[0][0]) / std::max(1e-12, std::abs(agree[0][0])), agree[1][1],
                agree[0][1], std::abs(agree[1][1] - agree[0][1]) / std::max(1e-12, std::abs(agree[0][1])));
    std::fflush(stdout);
  }

  struct Timed {
    std::vector<double> times;
    double phases[3] = {0, 0, 0};
    double loss = 0, median = 0, p90 = 0, mean = 0, peak_alloc_gb = -1, peak_reserved_gb = -1;
  };
  auto timed = [&](int warmup, int steps, const char* label) {
    Timed r;
    for (int i = 0; i < warmup; ++i) {
      auto t0 = Clock::now();
      const double l = one_step(nullptr);
      sync(device);
      std::printf("%swarm-up %d: %.3f s, loss %.4f\n", label, i + 1, since(t0), l);
      std::fflush(stdout);
    }
#if ROBOMETER_CUDA_STATS
    if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
    for (int i = 0; i < steps; ++i) {
      sync(device);
      auto t0 = Clock::now();
      double p[3] = {0, 0, 0};
      r.loss = one_step(p);
      sync(device);
      r.times.push_back(since(t0));
      for (int k = 0; k < 3; ++k) r.phases[k] += p[k] / steps;
      std::printf("%sstep %d: %.3f s (forward %.3f, backward %.3f, optimizer %.3f), loss %.4f\n", label,
                  i + 1, r.times.back(), p[0], p[1], p[2], r.loss);
      std::fflush(stdout);
    }
    std::vector<double> sorted = r.times;
    std::sort(sorted.begin(), sorted.end());
    r.median = sorted[sorted.size() / 2];
    r.p90 =
        sorted[std::min(sorted.size() - 1, static_cast<size_t>(0.9 * static_cast<double>(sorted.size())))];
    for (double t : r.times) r.mean += t / static_cast<double>(r.times.size());
#if ROBOMETER_CUDA_STATS
    if (device.is_cuda()) {
      const auto st = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
      r.peak_alloc_gb = static_cast<double>(st.allocated_bytes[0].peak) / (1 << 30);
      r.peak_reserved_gb = static_cast<double>(st.reserved_bytes[0].peak) / (1 << 30);
    }
#endif
    return r;
  };

  const Timed main_run = timed(o.warmup, o.steps, "");
  const std::vector<double>& times = main_run.times;
  const double loss = main_run.loss, median = main_run.median, p90 = main_run.p90, mean = main_run.mean;
  const double peak_alloc_gb = main_run.peak_alloc_gb, peak_reserved_gb = main_run.peak_reserved_gb;
  const double* phases = main_run.phases;

  // --sweep: the same model and batch under other checkpointing plans (MODE, or MODE/eager for
  // the eager paths), a short timed run each; a plan that runs out of memory is recorded so.
  nlohmann::json sweep = nlohmann::json::array();
  const auto main_plan = mb.model->config().checkpointing;
  for (size_t pos = 0; !o.sweep.empty() && pos != std::string::npos;) {
    const size_t comma = o.sweep.find(',', pos);
    std::string item = o.sweep.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? comma : comma + 1;
    if (item.empty()) continue;
    bool fused = compat::fused_enabled();
    const auto slash = item.find('/');
    if (slash != std::string::npos) {
      const std::string path = item.substr(slash + 1);
      if (path != "eager" && path != "fused")
        throw ConfigError("bench model-step: --sweep " + item + ": MODE[/eager|/fused]");
      fused = path == "fused";
      item = item.substr(0, slash);
    }
    const auto plan = model::CheckpointPlan::parse(item, "--sweep");
    const bool was = compat::fused_enabled();
    compat::set_fused_enabled(fused);
    mb.model->config().checkpointing = plan;
    const std::string label = "[" + plan.str() + (fused ? "" : "/eager") + "] ";
    nlohmann::json e = {{"checkpointing", plan.str()}, {"fused", fused}};
    try {
      const Timed r = timed(1, o.sweep_steps, label.c_str());
      e["step_s_median"] = r.median;
      e["step_s_p90"] = r.p90;
      e["peak_alloc_gib"] = r.peak_alloc_gb;
      e["peak_reserved_gib"] = r.peak_reserved_gb;
      e["forward_s_mean"] = r.phases[0];
      e["backward_s_mean"] = r.phases[1];
      e["optimizer_s_mean"] = r.phases[2];
      e["mfu"] = device.is_cuda() ? fc.per_step / r.median / 1e12 / o.peak_tflops : 0.0;
      std::printf("SWEEP %s: step %.3f s (p90 %.3f), peak %.2f GiB allocated\n", label.c_str(), r.median,
                  r.p90, r.peak_alloc_gb);
    } catch (const c10::Error& err) {
      const std::string what = err.what();
      e["error"] = what.substr(0, what.find('\n'));
      std::printf("SWEEP %s: failed: %s\n", label.c_str(), e["error"].get<std::string>().c_str());
      optimizer.zero_grad();
#if ROBOMETER_CUDA_STATS
      if (device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    }
    std::fflush(stdout);
    sweep.push_back(e);
    compat::set_fused_enabled(was);
  }
  mb.model->config().checkpointing = main_plan;

  const double samples_s = o.pairs / median;
  const double tokens_s = tokens / median;
  const double tflops = fc.per_step / median / 1e12;
  const double mfu = device.is_cuda() ? tflops / o.peak_tflops : 0.0;

  std::printf(
      "RESULT model-step %s: step %.3f s (median of %d, mean %.3f), %.2f samples/s (pairs), %.0f tokens/s, "
      "%.1f TFLOP/s, MFU %.1f%% of %.0f TFLOP/s, peak memory %.2f GiB allocated / %.2f GiB reserved\n",
      o.lora > 0 ? ("lora" + std::to_string(o.lora)).c_str() : "full", median, o.steps, mean, samples_s,
      tokens_s, tflops, 100 * mfu, o.peak_tflops, peak_alloc_gb, peak_reserved_gb);
  if (!real)  // HF's step script rebuilds identical synthetic prompts from these
    std::printf(
        "HF_SHAPES --pairs %d --images-per-seq %lld --seq-len %lld --tokens %lld --grid-h %lld --grid-w "
        "%lld\n",
        o.pairs, (long long)(images / o.pairs), (long long)seq_len, (long long)tokens, (long long)gh,
        (long long)gw);
  std::fflush(stdout);

  if (!o.json_out.empty()) {
    nlohmann::json j = {{"config", o.config},
                        {"pairs", o.pairs},
                        {"frames", o.frames},
                        {"height", o.height},
                        {"width", o.width},
                        {"dtype", cfg.model.dtype},
                        {"lora_r", o.lora},
                        {"checkpointing", cfg.model.activation_checkpointing},
                        {"fp32_master", oc.fp32_master},
                        {"device", device.str()},
                        {"seq_len", seq_len},
                        {"tokens", tokens},
                        {"tokens_computed", computed_tokens},
                        {"packed", in.seq_lens.defined()},
                        {"real_data", o.real_data},
                        {"pixel_patches", patches},
                        {"images", images},
                        {"grid_thw", {gt, gh, gw}},
                        {"params_total", mb.model->num_parameters(false)},
                        {"params_trainable", mb.model->num_parameters(true)},
                        {"flops_per_step", fc.per_step},
                        {"step_s_median", median},
                        {"step_s_mean", mean},
                        {"step_s_p90", p90},
                        {"sweep", sweep},
                        {"agreement", o.agreement ? nlohmann::json{{"loss_fused", agree[1][0]},
                                                                   {"loss_eager", agree[0][0]},
                                                                   {"grad_norm_fused", agree[1][1]},
                                                                   {"grad_norm_eager", agree[0][1]}}
                                                  : nlohmann::json()},
                        {"grad_norm", grad_norm},
                        {"fused_compiled", compat::fused_paths_compiled()},
                        {"project_kernels", model::project_kernels_summary()},
                        {"fused_enabled", compat::fused_enabled()},
                        {"step_s_all", times},
                        {"forward_s_mean", phases[0]},
                        {"backward_s_mean", phases[1]},
                        {"optimizer_s_mean", phases[2]},
                        {"samples_per_s", samples_s},
                        {"tokens_per_s", tokens_s},
                        {"tflops", tflops},
                        {"mfu", mfu},
                        {"peak_tflops", o.peak_tflops},
                        {"peak_alloc_gib", peak_alloc_gb},
                        {"peak_reserved_gib", peak_reserved_gb},
                        {"build_s", build_s},
                        {"processor_s", processor_s},
                        {"final_loss", loss}};
    std::ofstream f(o.json_out);
    if (!f) throw Error(o.json_out + ": cannot write");
    f << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

Benchmark model_step_benchmark() {
  return {
      "model-step", "One synthetic training step of the reward model: time, tokens/s, MFU, memory",
      [](CLI::App& sub, int& exit_code) {
        auto o = std::make_shared<Options>();
        sub.add_option("--config", o->config, "run config (YAML)")->capture_default_str();
        sub.add_option("--set", o->overrides, "config override key=value (repeatable)");
        sub.add_option("--pairs", o->pairs, "pairs per batch (one sequence each)")->capture_default_str();
        sub.add_option("--frames", o->frames, "frames per trajectory (2 per pair)")->capture_default_str();
        sub.add_option("--height", o->height, "frame height")->capture_default_str();
        sub.add_option("--width", o->width, "frame width")->capture_default_str();
        sub.add_option("--steps", o->steps, "timed steps")->capture_default_str();
        sub.add_option("--warmup", o->warmup, "untimed steps first")->capture_default_str();
        sub.add_option("--lora", o->lora, "LoRA rank (0 = full LLM fine-tune)")->capture_default_str();
        sub.add_option("--checkpointing", o->checkpointing,
                       "none|full|selective|N first layers (on/off = full/none; default: the config's)");
        sub.add_option("--fused", o->fused, "1|0: LibTorch's fused CUDA ops or the eager paths (default 1)");
        sub.add_option("--sweep", o->sweep,
                       "more checkpointing plans to time: MODE[/eager],... (same model)");
        sub.add_option("--sweep-steps", o->sweep_steps, "timed steps per sweep plan")->capture_default_str();
        sub.add_option("--agreement", o->agreement,
                       "1: fused vs eager loss + grad norm first (same weights)");
        sub.add_option("--dtype", o->dtype, "float32|bfloat16 (default: the config's)");
        sub.add_option("--fp32-master", o->fp32_master, "1|0: fp32 master weights + moments (default 1)");
        sub.add_option("--device", o->device, "auto|cpu|cuda")->capture_default_str();
        sub.add_option("--peak-tflops", o->peak_tflops, "device peak for MFU")->capture_default_str();
        sub.add_option("--json", o->json_out, "write the figures to this JSON file");
        sub.add_option("--seed", o->seed, "init and data seed")->capture_default_str();
        sub.add_option("--real-data", o->real_data,
                       "dataset dir: the first training batch from it (sampler + processor as in training; "
                       "--set train.packing=true packs it) instead of synthetic prompts");
        sub.callback([o, &exit_code] { exit_code = run_bench_model_step(*o); });
      }};
}

}  // namespace robometer::bench
