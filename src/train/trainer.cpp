#include "robometer/train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <any>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "robometer/config/loader.h"
#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"
#include "robometer/data/manifest.h"
#include "robometer/data/options_from_config.h"
#include "robometer/data/run_options.h"
#include "robometer/eval/evaluator.h"
#include "robometer/train/checkpoint.h"
#include "robometer/train/checkpointer.h"
#include "robometer/train/lr_schedule.h"
#include "robometer/train/options_from_config.h"
#include "robometer/train/run_log.h"
#include "robometer/train/token_budget.h"

namespace robometer::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<int>& stop_signal() {
  static std::atomic<int> sig{0};
  return sig;
}

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Peak resident set of this process (VmHWM), in bytes; -1 when unknown.
int64_t peak_host_memory() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}

}  // namespace

// ------------------------------------------------------------------------------ helpers

std::shared_ptr<const data::TrajectoryIndex> load_index(const std::vector<config::DatasetEntry>& datasets,
                                                        const std::string& what, data::IndexPolicy policy,
                                                        const config::DataConfig* filters) {
  if (datasets.empty()) throw ConfigError("data." + what + ": no dataset listed");
  std::vector<data::DatasetRef> refs;
  for (const auto& d : datasets) refs.push_back({d.path, d.weight});
  auto index = data::open_trajectory_index(refs, policy);
  if (!filters) return index;
  // The original BaseDataset filters: min frames for training, tasks without success.
  data::FilterReport rep;
  index = data::filter_index(std::move(index), what == "train" ? filters->min_frames : 0,
                             filters->drop_tasks_without_success, &rep);
  spdlog::info("data.{}: {}", what, rep.summary());
  return index;
}

model::ModelInputs host_pair_inputs(const model::Processor& processor, const data::Batch& batch, bool pinned,
                                    bool packing) {
  std::vector<const model::PreparedPrompt*> prepared;
  prepared.reserve(batch.samples.size());
  for (const auto& s : batch.samples)
    if (const auto* p = std::any_cast<model::PreparedPrompt>(&s.prepared)) prepared.push_back(p);
  model::ModelInputs in;
  if (!prepared.empty() && prepared.size() == batch.samples.size()) {
    in = processor.collate(prepared, pinned);
  } else {
    std::vector<model::PairQuery> queries;
    queries.reserve(batch.samples.size());
    for (const auto& s : batch.samples) queries.push_back({s.task, s.a.frames, s.b.frames});
    in = processor.pair_inputs(queries);
  }
  return packing ? model::pack_inputs(in) : in;
}

model::ModelInputs inputs_to(model::ModelInputs in, const at::Device& device) {
  if (device.is_cpu()) return in;
  for (at::Tensor* t : {&in.input_ids, &in.attention_mask, &in.pixel_values, &in.image_grid_thw,
                        &in.prog_positions, &in.pref_positions})
    if (t->defined()) *t = t->to(device, /*non_blocking=*/true);
  return in;
}

model::ModelInputs pair_inputs(const model::Processor& processor, const data::Batch& batch,
                               const at::Device& device) {
  return inputs_to(host_pair_inputs(processor, batch, device.is_cuda()), device);
}

std::function<std::any(const data::PairSample&)> prepare_pair_prompt(const model::Processor& processor) {
  const model::Processor* proc = &processor;
  return [proc](const data::PairSample& s) -> std::any {
    return proc->prepare_pair({s.task, s.a.frames, s.b.frames});
  };
}

static data::Batch batch_to(data::Batch b, const at::Device& device) {
  if (device.is_cpu()) return b;
  for (at::Tensor* t : {&b.preference, &b.progress_a, &b.progress_target_a, &b.progress_mask_a,
                        &b.progress_frame_mask_a, &b.success_a, &b.success_mask_a})
    if (t->defined()) *t = t->to(device);
  return b;
}

// ------------------------------------------------------------------------------ Impl

struct Trainer::Impl {
  config::RunConfig cfg;
  TrainerSetup setup;
  World& world;
  at::Device device{at::kCPU};
  fs::path run_dir;
  model::ModelBundle bundle;
  Objective objective;
  std::unique_ptr<ParamOptimizer> optimizer;
  std::unique_ptr<LrSchedule> schedule;
  std::shared_ptr<const data::TrajectoryIndex> train_index, eval_index;
  std::unique_ptr<data::Loader> loader;
  std::unique_ptr<RunLog> log;
  std::unique_ptr<TrainCheckpointer> checkpointer;
  TrainState state;  // step (optimizer steps done), non-finite step counters
  bool autocast_bf16 = false;
  bool warned_over_budget = false;
  nlohmann::json last_eval = nlohmann::json::object();

  Impl(config::RunConfig c, TrainerSetup s) : cfg(std::move(c)), setup(std::move(s)), world(*setup.world) {}

  void build() {
    run_dir = cfg.output.run_dir;
    if (torch::cuda::is_available()) device = at::Device(at::kCUDA, world.local_rank());
    autocast_bf16 = bf16_autocast_from_config(cfg, device);

    bundle = model::build_model(cfg.model, device, static_cast<uint64_t>(cfg.train.seed));
    // Identical starting weights everywhere, whatever each rank initialised.
    std::vector<at::Tensor> params;
    for (auto& p : bundle.model->parameters()) params.push_back(p.data());
    for (auto& b : bundle.model->buffers()) params.push_back(b);
    world.broadcast(params, 0);
    // After the shared init, each rank draws its own dropout masks.
    torch::manual_seed(static_cast<uint64_t>(cfg.train.seed) * 1000003ULL + world.rank());

    const NamedParameters trainable = trainable_parameters(*bundle.model);
    if (trainable.empty()) throw ConfigError("model: every parameter is frozen; nothing to train");
    setup.grad_sync->attach(trainable);

    const AdamWConfig oc = adamw_config_from_config(cfg, *bundle.model);
    optimizer = setup.make_optimizer ? setup.make_optimizer(trainable, oc)
                                     : std::make_unique<LocalAdamW>(trainable, oc);
    schedule = std::make_unique<LrSchedule>(lr_schedule_config_from_config(cfg));
    objective = Objective(objective_config_from_config(cfg));

    train_index = load_index(cfg.data.train, "train", data::parse_index_policy(cfg.data.index), &cfg.data);
    loader = std::make_unique<data::Loader>(train_index, loader_options(false));
    if (!cfg.data.eval.empty())
      eval_index = load_index(cfg.data.eval, "eval", data::parse_index_policy(cfg.data.index), &cfg.data);
    checkpointer =
        std::make_unique<TrainCheckpointer>(CheckpointerOptions::from_config(cfg, bundle.config_json_text),
                                            world, *bundle.model, *optimizer, *schedule, *loader);

    const int64_t total = bundle.model->num_parameters(false);
    const int64_t train_n = bundle.model->num_parameters(true);
    spdlog::info("model: {:.2f} M parameters, {:.2f} M trainable, {} on {}", total / 1e6, train_n / 1e6,
                 cfg.model.dtype, device.str());
    spdlog::info("data: {} training trajectories ({} sources), {} eval trajectories", train_index->size(),
                 train_index->sources().size(), eval_index ? eval_index->size() : 0);
  }

  data::LoaderOptions loader_options(bool is_eval) const {
    data::LoaderOptions o = data::loader_options_from_config(cfg, is_eval, world.rank(), world.size());
    if (setup.prepare_in_loader) o.prepare = prepare_pair_prompt(*bundle.processor);
    return o;
  }

  // Next training batch; rolls over to the next epoch when one is exhausted.
  data::Batch next_batch() {
    for (int tries = 0; tries < 2; ++tries) {
      if (auto b = loader->next()) return std::move(*b);
      loader->start_epoch(loader->state().epoch + 1);
    }
    throw Error("data: the training loader yields no batch (batch_size " +
                std::to_string(cfg.train.batch_size) + " larger than an epoch?)");
  }

  LossTerms forward_loss(const data::Batch& batch, int64_t* tokens,
                         const LossDenominators* denominators = nullptr, double* input_s = nullptr,
                         int64_t* computed_tokens = nullptr) {
    const auto ti = Clock::now();
    // Host tensors (page-locked with CUDA): the model copies them without blocking and reads
    // ids, masks and grids where they are, so the forward needs no host sync.
    const model::ModelInputs in =
        host_pair_inputs(*bundle.processor, batch, device.is_cuda(), cfg.train.packing);
    // Real tokens, from host data: every token when packed, the mask's ones when padded.
    if (tokens)
      *tokens += in.attention_mask.defined() ? in.attention_mask.sum().item<int64_t>() : in.input_ids.numel();
    if (computed_tokens) *computed_tokens = in.input_ids.numel();
    if (input_s) *input_s += seconds_since(ti);
    if (autocast_bf16) compat::set_autocast(device.type(), true);
    auto out = bundle.model->forward(in);
    if (autocast_bf16) compat::set_autocast(device.type(), false);
    return objective(out, batch_to(batch, device), denominators);
  }

  // Token lengths of a batch's samples (prepared in the loader, or here when it did not).
  std::vector<int64_t> sample_lengths(data::Batch& batch, double* input_s) {
    const auto ti = Clock::now();
    std::vector<int64_t> lengths;
    lengths.reserve(batch.samples.size());
    for (auto& s : batch.samples) {
      if (!std::any_cast<model::PreparedPrompt>(&s.prepared))
        s.prepared = bundle.processor->prepare_pair({s.task, s.a.frames, s.b.frames});
      lengths.push_back(static_cast<int64_t>(std::any_cast<model::PreparedPrompt>(&s.prepared)->ids.size()));
    }
    if (input_s) *input_s += seconds_since(ti);
    return lengths;
  }

  // The forwards one micro-batch runs as (train.max_tokens_per_batch), at least min_parts.
  std::vector<SampleRange> forward_parts(data::Batch& batch, size_t min_parts, double* input_s) {
    if (cfg.train.max_tokens_per_batch <= 0) return {SampleRange{0, batch.samples.size()}};
    const std::vector<int64_t> lengths = sample_lengths(batch, input_s);
    auto parts = split_by_token_budget(lengths, cfg.train.max_tokens_per_batch, cfg.train.packing, min_parts);
    for (const auto& r : parts)
      if (r.size() == 1 && lengths[r.begin] > cfg.train.max_tokens_per_batch && !warned_over_budget) {
        warned_over_budget = true;
        spdlog::warn(
            "train.max_tokens_per_batch = {} is below one sample's {} tokens; such a sample runs "
            "alone in its forward (warned once)",
            cfg.train.max_tokens_per_batch, lengths[r.begin]);
      }
    return parts;
  }

  // Denominators that make every micro-batch on every rank a share of one mean over the global
  // batch (see LossDenominators): counts summed over this step's micro-batches and all ranks.
  // With a token budget, also how many forwards each micro-batch runs: the most any rank needs,
  // so that every rank runs as many backwards (each one communicates under dist.shard gradients).
  LossDenominators global_denominators(std::vector<data::Batch>& micro, std::vector<size_t>* parts_per_micro,
                                       double* input_s) {
    std::vector<double> c(3, 0.0);
    for (const auto& b : micro) {
      const auto d = loss_counts(b);
      c[0] += d.preference;
      c[1] += d.progress;
      c[2] += d.success;
    }
    const bool budget = cfg.train.max_tokens_per_batch > 0;
    const size_t slots = static_cast<size_t>(cfg.train.batch_size) + 1;
    if (budget) {
      // One histogram of forward counts per micro-batch; the all-reduce sums them, and the
      // highest count with a non-zero sum is the most any rank needs.
      for (auto& b : micro) {
        const size_t n = forward_parts(b, 1, input_s).size();
        std::vector<double> h(slots, 0.0);
        h[std::min(n, slots - 1)] = 1.0;
        c.insert(c.end(), h.begin(), h.end());
      }
    }
    if (world.size() > 1) {
      std::vector<at::Tensor> t{at::tensor(c, at::kDouble)};  // World moves it to its device
      world.all_reduce_sum(t);
      auto back = core::host_copy(t[0], "trainer: loss denominators");
      const double* v = back.data_ptr<double>();
      c.assign(v, v + back.numel());
    }
    parts_per_micro->assign(micro.size(), 1);
    if (budget)
      for (size_t m = 0; m < micro.size(); ++m)
        for (size_t n = 0; n < slots; ++n)
          if (c[3 + m * slots + n] > 0) (*parts_per_micro)[m] = n;
    const double shares = static_cast<double>(world.size()) * static_cast<double>(micro.size());
    return {c[0] / shares, c[1] / shares, c[2] / shares};
  }

  StepResult train_step() {
    StepResult res;
    const int64_t syncs_before = core::HostSyncCounter::instance().total();
    StepTimes& t = res.times;
    const auto t0 = Clock::now();
    const int accum = cfg.train.grad_accum;
    bool finite = true;
    std::vector<data::Batch> batches;
    auto td = Clock::now();
    for (int micro = 0; micro < accum; ++micro) batches.push_back(next_batch());
    std::vector<size_t> parts_per_micro;
    double budget_prep_s = 0;
    const LossDenominators denominators = global_denominators(batches, &parts_per_micro, &budget_prep_s);
    t.data_s += seconds_since(td) - budget_prep_s;
    t.input_s += budget_prep_s;
    for (int micro = 0; micro < accum; ++micro) {
      data::Batch& batch = batches[static_cast<size_t>(micro)];
      const std::vector<SampleRange> parts =
          parts_per_micro[static_cast<size_t>(micro)] > 1
              ? forward_parts(batch, parts_per_micro[static_cast<size_t>(micro)], &t.input_s)
              : std::vector<SampleRange>{{0, batch.samples.size()}};
      LossTerms micro_terms;
      for (size_t p = 0; p < parts.size(); ++p) {
        const bool whole = parts.size() == 1;
        const data::Batch part = whole ? data::Batch()
                                       : data::slice_batch(batch, static_cast<int64_t>(parts[p].begin),
                                                           static_cast<int64_t>(parts[p].end));
        const data::Batch& run = whole ? batch : part;
        auto tf = Clock::now();
        int64_t computed = 0;
        LossTerms terms = forward_loss(run, &res.tokens, &denominators, &t.input_s, &computed);
        res.forwards += 1;
        res.max_forward_tokens = std::max(res.max_forward_tokens, computed);
        if (setup.loss_hook) setup.loss_hook(state.step, terms);
        t.forward_s += seconds_since(tf);

        // Non-finite: an infinite loss, or NaN in every term (nothing left to train on: the loss
        // would read 0 and the gradient norm 0, hiding a diverged model).
        if (terms.nothing_finite()) terms.total_value = std::numeric_limits<double>::quiet_NaN();
        finite = finite && std::isfinite(terms.total_value);
        auto tb = Clock::now();
        setup.grad_sync->before_backward(micro == accum - 1 && p + 1 == parts.size());
        if (terms.requires_grad() && finite) (terms.total / accum).backward();
        t.backward_s += seconds_since(tb);
        micro_terms.add_part(terms, static_cast<double>(parts[p].size()) / static_cast<double>(batch.size()));
      }
      res.terms.add_scaled_values(micro_terms, 1.0 / accum);
    }
    auto ts = Clock::now();
    setup.grad_sync->finish();
    t.sync_s = seconds_since(ts);

    auto to = Clock::now();
    res.grad_norm = optimizer->clip_grad_norm(cfg.train.max_grad_norm);
    // Every rank must agree to skip (grads are synchronised, so the norm is the same, but a
    // NaN loss on one rank alone must skip everywhere too).
    res.skipped = world.any(!finite || !std::isfinite(res.grad_norm));
    if (res.skipped) {
      ++state.consecutive_bad;
      ++state.skipped;
      spdlog::warn("step {}: non-finite {} ({} in a row); step skipped", state.step + 1,
                   !finite ? "loss" : "gradient norm", state.consecutive_bad);
      if (state.consecutive_bad >= cfg.train.nan_abort_after)
        throw Error("training diverged: " + std::to_string(state.consecutive_bad) +
                    " consecutive steps with a non-finite loss or gradient norm (train.nan_abort_after = " +
                    std::to_string(cfg.train.nan_abort_after) +
                    "); lower train.lr or check the data; the last checkpoint is in " +
                    (run_dir / "checkpoints").string());
    } else {
      state.consecutive_bad = 0;
      optimizer->set_lr_factor(schedule->factor(state.step));
      optimizer->step();
    }
    optimizer->zero_grad();
    t.optimizer_s = seconds_since(to);
    ++state.step;  // a skipped step still consumes its data and schedule position
    t.total_s = seconds_since(t0);
    res.host_syncs = core::HostSyncCounter::instance().total() - syncs_before;
    return res;
  }

  // One eval batch's loss terms; within train.max_tokens_per_batch as training does (means over
  // the whole batch).
  LossTerms eval_loss(data::Batch& batch) {
    const std::vector<SampleRange> parts = forward_parts(batch, 1, nullptr);
    if (parts.size() == 1) return forward_loss(batch, nullptr);
    const LossDenominators own = loss_counts(batch);
    LossTerms sum;
    for (const auto& r : parts)
      sum.add_part(
          forward_loss(data::slice_batch(batch, static_cast<int64_t>(r.begin), static_cast<int64_t>(r.end)),
                       nullptr, &own),
          static_cast<double>(r.size()) / static_cast<double>(batch.size()));
    return sum;
  }

  // Eval loss and preference accuracy over cfg.train.eval_batches fixed batches.
  nlohmann::json evaluate() {
    if (!eval_index) return nlohmann::json::object();
    torch::NoGradGuard no_grad;
    bundle.model->eval();
    data::Loader eval_loader(eval_index, loader_options(true));
    LossTerms sum;
    int64_t n = 0;
    for (int i = 0; i < cfg.train.eval_batches; ++i) {
      auto b = eval_loader.next();
      if (!b) break;
      sum.add_scaled_values(eval_loss(*b), 1.0);
      ++n;
    }
    // The evaluation issue's metrics (VOC, Kendall τ-a, success F1) on a bounded subset, on the
    // main rank (the same code as `robometer eval`).
    nlohmann::json metrics;
    if (world.is_main() && cfg.eval.max_trajectories >= 0) {
      eval::EvalOptions eo = eval::eval_options(cfg);
      if (eo.max_trajectories == 0) eo.max_trajectories = 16;
      eo.preference_pairs = 16;
      eo.confusion_videos = 0;
      metrics = eval::evaluate(bundle, *eval_index, eo);
    }
    bundle.model->train();
    std::vector<at::Tensor> v{at::tensor({sum.total_value, sum.preference_value, sum.progress_value,
                                          sum.success_value, sum.preference_accuracy, static_cast<double>(n)},
                                         at::kDouble)};
    world.all_reduce_sum(v);
    const auto r = v[0];
    const double cnt = std::max(1.0, r[5].item<double>());
    nlohmann::json out = {{"eval_loss", r[0].item<double>() / cnt},
                          {"eval_preference_loss", r[1].item<double>() / cnt},
                          {"eval_progress_loss", r[2].item<double>() / cnt},
                          {"eval_success_loss", r[3].item<double>() / cnt},
                          {"eval_preference_accuracy", r[4].item<double>() / cnt},
                          {"eval_batches", r[5].item<double>()}};
    if (metrics.contains("overall")) {
      const auto& o = metrics["overall"];
      auto take = [&](const char* key, const nlohmann::json& v) {
        if (v.is_number()) out[key] = v;
      };
      if (o.contains("voc")) {
        take("eval_voc_pearson", o["voc"].value("pearson", nlohmann::json()));
        take("eval_voc_spearman", o["voc"].value("spearman", nlohmann::json()));
      }
      if (o.contains("policy_ranking"))  // train.best_metric's default
        take("eval_kendall_tau", o["policy_ranking"].value("kendall_tau_a", nlohmann::json()));
    }
    return out;
  }

  std::optional<fs::path> resume_dir;  // chosen in the constructor, loaded by fit()
};

// ------------------------------------------------------------------------------ Trainer

Trainer::Trainer(config::RunConfig cfg, TrainerSetup setup)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(setup))) {
  // Which checkpoint to resume from, decided before the model is built so that a refused
  // run_dir or a bad --resume fails at once.
  impl_->resume_dir = decide_resume(impl_->cfg.output.run_dir, impl_->setup.resume);
  impl_->build();
}

Trainer::~Trainer() = default;

model::ModelBundle& Trainer::model() { return impl_->bundle; }
data::Loader& Trainer::train_loader() { return *impl_->loader; }

StepResult Trainer::step_once() { return impl_->train_step(); }

TrainSummary Trainer::fit() {
  Impl& m = *impl_;
  const auto& tc = m.cfg.train;
  TrainSummary summary;

  // Resume (the checkpoint was chosen in the constructor) or start fresh.
  if (m.resume_dir)
    m.state = m.checkpointer->load(*m.resume_dir);
  else if (m.setup.resume == "auto")
    spdlog::info("resume auto: no checkpoint in {}, starting fresh", m.run_dir.string());
  summary.first_step = m.state.step;
  if (m.world.is_main()) config::write_resolved_config(m.cfg, m.run_dir.string());
  m.log = std::make_unique<RunLog>(m.run_dir, m.world.is_main(), m.state.step, tc.max_steps,
                                   m.cfg.output.tensorboard, m.setup.progress_bar);

  m.bundle.model->train();
  double samples_per_step = static_cast<double>(tc.batch_size) * tc.grad_accum * m.world.size();
  const int K = m.cfg.data.frames_per_trajectory;
  const int64_t& step = m.state.step;
  while (step < tc.max_steps) {
    const StepResult res = m.train_step();
    const LossTerms& terms = res.terms;
    const StepTimes& t = res.times;
    summary.last_loss = terms.total_value;

    // Metrics averaged over ranks.
    std::vector<at::Tensor> v{
        at::tensor({terms.total_value, terms.preference_value, terms.progress_value, terms.success_value,
                    terms.preference_accuracy, static_cast<double>(res.tokens)},
                   at::kDouble)};
    m.world.all_reduce_sum(v);
    const auto r = v[0] / m.world.size();
    nlohmann::json rec = {{"step", step},
                          {"loss", r[0].item<double>()},
                          {"loss_preference", r[1].item<double>()},
                          {"loss_progress", r[2].item<double>()},
                          {"loss_success", r[3].item<double>()},
                          {"preference_accuracy", r[4].item<double>()},
                          {"lr", m.optimizer->lr()},
                          {"grad_norm", res.grad_norm},
                          {"step_time_s", t.total_s},
                          {"samples_per_s", samples_per_step / t.total_s},
                          {"frames_per_s", samples_per_step * 2 * K / t.total_s},
                          {"tokens_per_s", r[5].item<double>() * m.world.size() / t.total_s},
                          {"data_wait_share", t.data_s / t.total_s},
                          {"input_prep_share", t.input_s / t.total_s},
                          {"time_forward_s", t.forward_s},
                          {"time_backward_s", t.backward_s},
                          {"time_sync_s", t.sync_s},
                          {"time_optimizer_s", t.optimizer_s},
                          {"peak_host_memory_mb", peak_host_memory() / 1048576.0},
                          {"skipped_steps", m.state.skipped}};
    const bool eval_now = tc.eval_every > 0 && (step % tc.eval_every == 0 || step == tc.max_steps);
    if (eval_now) {
      m.last_eval = m.evaluate();
      for (auto& [k, val] : m.last_eval.items()) rec[k] = val;
      if (m.last_eval.contains("eval_loss")) {
        summary.eval_loss = m.last_eval["eval_loss"];
        summary.eval_preference_accuracy = m.last_eval["eval_preference_accuracy"];
      }
    }
    m.log->record(rec, step % tc.log_every == 0 || eval_now || step == tc.max_steps);

    const bool stop = m.world.any(stop_signal().load() != 0);
    const bool ck_now =
        step == tc.max_steps || stop || (tc.checkpoint_every > 0 && step % tc.checkpoint_every == 0);
    if (ck_now) summary.last_checkpoint = m.checkpointer->save(m.state, m.last_eval);
    if (stop) {
      summary.interrupted = true;
      spdlog::warn("stopped by signal at step {}; checkpoint written; continue with --resume auto", step);
      break;
    }
  }
  m.log->finish();
  summary.last_step = step;
  summary.skipped_steps = m.state.skipped;
  return summary;
}

}  // namespace robometer::train
