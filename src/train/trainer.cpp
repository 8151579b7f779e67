#include "robometer/train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "robometer/config/loader.h"
#include "robometer/core/remove_tree.h"
#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/data/manifest.h"
#include "robometer/data/run_options.h"
#include "robometer/eval/evaluator.h"
#include "robometer/model/weights.h"
#include "robometer/train/checkpoint.h"
#include "robometer/train/lr_schedule.h"
#include "robometer/train/rng_state.h"
#include "robometer/train/run_log.h"
#include "robometer/train/sharded_checkpoint.h"

namespace robometer::train {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::atomic<int>& stop_signal() {
  static std::atomic<int> sig{0};
  return sig;
}

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Peak resident set of this process (VmHWM), in bytes; -1 when unknown.
int64_t peak_host_memory() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}

}  // namespace

// ------------------------------------------------------------------------------ helpers

std::shared_ptr<const data::TrajectoryIndex> load_index(
    const std::vector<config::DatasetEntry>& datasets, const std::string& what,
    const config::DataConfig* filters) {
  if (datasets.empty()) throw ConfigError("data." + what + ": no dataset listed");
  std::vector<data::WeightedManifest> manifests;
  for (const auto& d : datasets) manifests.push_back({data::read_manifest(d.path), d.weight});
  if (filters) {  // the original BaseDataset filters: min frames for training, tasks without success
    const auto rep = data::filter_trajectories(manifests, what == "train" ? filters->min_frames : 0,
                                               filters->drop_tasks_without_success);
    spdlog::info("data.{}: {}", what, rep.summary());
  }
  return std::make_shared<data::TrajectoryIndex>(manifests);
}

data::LoaderOptions loader_options(const config::RunConfig& cfg, bool is_eval, int rank,
                                   int world_size) {
  const auto& d = cfg.data;
  data::LoaderOptions o;
  o.sampling = data::sampler_options(d);
  // Held-out pairs keep the random A/B placement (from a fixed seed): with the chosen clip
  // always first, a model that always answers "A" would score 100% preference accuracy.
  o.sampling.is_eval = false;
  o.num_workers = d.num_workers;
  o.prefetch = d.prefetch;
  o.batch_size = cfg.train.batch_size;
  o.drop_last = !is_eval;
  o.resize = data::resize_spec(d.resize);
  // Evaluation draws from its own seed so that it sees the same pairs every time.
  o.seed = static_cast<uint64_t>(cfg.train.seed) + (is_eval ? 0x5eed0000ULL : 0);
  o.rank = rank;
  o.world_size = world_size;
  o.samples_per_epoch = d.samples_per_epoch;
  o.max_bad_fraction = d.max_bad_fraction;
  return o;
}

model::ModelInputs pair_inputs(const model::Processor& processor, const data::Batch& batch,
                               const at::Device& device) {
  std::vector<model::PairQuery> queries;
  queries.reserve(batch.samples.size());
  for (const auto& s : batch.samples) queries.push_back({s.task, s.a.frames, s.b.frames});
  model::ModelInputs in = processor.pair_inputs(queries);
  if (device.is_cpu()) return in;
  auto to = [&](at::Tensor& t) { if (t.defined()) t = t.to(device, /*non_blocking=*/true); };
  to(in.input_ids); to(in.attention_mask); to(in.pixel_values); to(in.image_grid_thw);
  to(in.prog_positions); to(in.pref_positions);
  return in;
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
  int64_t step = 0;            // optimizer steps done
  int64_t consecutive_bad = 0;
  int64_t skipped = 0;
  bool autocast_bf16 = false;
  nlohmann::json last_eval = nlohmann::json::object();

  Impl(config::RunConfig c, TrainerSetup s)
      : cfg(std::move(c)), setup(std::move(s)), world(*setup.world) {}

  void build() {
    run_dir = cfg.output.run_dir;
    if (torch::cuda::is_available()) device = at::Device(at::kCUDA, world.local_rank());
    autocast_bf16 = cfg.train.compute_dtype == "bfloat16" ||
                    (cfg.train.compute_dtype == "auto" && device.is_cuda());
    if (autocast_bf16 && cfg.model.dtype == "bfloat16") autocast_bf16 = false;  // already bf16

    bundle = model::build_model(cfg.model, device, static_cast<uint64_t>(cfg.train.seed));
    // Identical starting weights everywhere, whatever each rank initialised.
    std::vector<at::Tensor> params;
    for (auto& p : bundle.model->parameters()) params.push_back(p.data());
    for (auto& b : bundle.model->buffers()) params.push_back(b);
    world.broadcast(params, 0);
    // After the shared init, each rank draws its own dropout masks.
    torch::manual_seed(static_cast<uint64_t>(cfg.train.seed) * 1000003ULL + world.rank());

    NamedParameters trainable;
    for (auto& np : bundle.model->named_parameters())
      if (np.value().requires_grad()) trainable.emplace_back(np.key(), np.value());
    if (trainable.empty()) throw ConfigError("model: every parameter is frozen; nothing to train");
    setup.grad_sync->attach(trainable);

    AdamWConfig oc;
    oc.lr = cfg.train.lr;
    oc.beta1 = cfg.train.beta1;
    oc.beta2 = cfg.train.beta2;
    oc.eps = cfg.train.eps;
    oc.weight_decay = cfg.train.weight_decay;
    if (cfg.train.head_lr > 0) oc.lr_rules.push_back({"^(progress_head|success_head|preference_head)\\.", cfg.train.head_lr, 1.0});
    if (cfg.train.vision_lr > 0) oc.lr_rules.push_back({"^model\\.visual\\.", cfg.train.vision_lr, 1.0});
    optimizer = setup.make_optimizer ? setup.make_optimizer(trainable, oc)
                                     : std::make_unique<LocalAdamW>(trainable, oc);

    LrScheduleConfig sc;
    sc.kind = parse_lr_schedule_kind(cfg.train.schedule);
    sc.max_steps = cfg.train.max_steps;
    sc.warmup_ratio = cfg.train.warmup_ratio;
    sc.min_lr_ratio = cfg.train.lr > 0 ? cfg.train.min_lr / cfg.train.lr : 0.0;
    schedule = std::make_unique<LrSchedule>(sc);

    ObjectiveConfig obj;
    obj.preference_weight = cfg.train.loss_weights.preference;
    obj.progress_weight = cfg.train.loss_weights.progress;
    obj.success_weight = cfg.train.loss_weights.success;
    obj.progress_scale = parse_progress_loss_scale(cfg.train.progress_loss_scale);
    objective = Objective(obj);

    train_index = load_index(cfg.data.train, "train", &cfg.data);
    loader = std::make_unique<data::Loader>(train_index,
                                            loader_options(cfg, false, world.rank(), world.size()));
    if (!cfg.data.eval.empty()) eval_index = load_index(cfg.data.eval, "eval", &cfg.data);

    const int64_t total = bundle.model->num_parameters(false);
    const int64_t train_n = bundle.model->num_parameters(true);
    spdlog::info("model: {:.2f} M parameters, {:.2f} M trainable, {} on {}", total / 1e6,
                 train_n / 1e6, cfg.model.dtype, device.str());
    spdlog::info("data: {} training trajectories ({} sources), {} eval trajectories",
                 train_index->size(), train_index->sources().size(),
                 eval_index ? eval_index->size() : 0);
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
                         const LossDenominators* denominators = nullptr) {
    const auto in = pair_inputs(*bundle.processor, batch, device);
    if (tokens) *tokens += in.attention_mask.sum().item<int64_t>();
    if (autocast_bf16) compat::set_autocast(device.type(), true);
    auto out = bundle.model->forward(in);
    if (autocast_bf16) compat::set_autocast(device.type(), false);
    return objective(out, batch_to(batch, device), denominators);
  }

  // Denominators that make every micro-batch on every rank a share of one mean over the global
  // batch (see LossDenominators): counts summed over this step's micro-batches and all ranks.
  LossDenominators global_denominators(const std::vector<data::Batch>& micro) {
    std::vector<double> c(3, 0.0);
    for (const auto& b : micro) {
      const auto d = loss_counts(b);
      c[0] += d.preference; c[1] += d.progress; c[2] += d.success;
    }
    if (world.size() > 1) {
      std::vector<at::Tensor> t{at::tensor(c, at::kDouble)};  // World moves it to its device
      world.all_reduce_sum(t);
      auto back = t[0].cpu();
      for (int i = 0; i < 3; ++i) c[i] = back[i].item<double>();
    }
    const double shares = static_cast<double>(world.size()) * static_cast<double>(micro.size());
    return {c[0] / shares, c[1] / shares, c[2] / shares};
  }

  StepTimes train_step(LossTerms* terms_out) {
    StepTimes t;
    const auto t0 = Clock::now();
    const int accum = cfg.train.grad_accum;
    LossTerms sum;
    double loss_sum = 0, pref = 0, prog = 0, succ = 0, acc = 0;
    int64_t tokens = 0;
    bool finite = true;
    std::vector<data::Batch> batches;
    auto td = Clock::now();
    for (int micro = 0; micro < accum; ++micro) batches.push_back(next_batch());
    const LossDenominators denominators = global_denominators(batches);
    t.data_s += seconds_since(td);
    for (int micro = 0; micro < accum; ++micro) {
      const data::Batch& batch = batches[static_cast<size_t>(micro)];
      auto tf = Clock::now();
      LossTerms terms = forward_loss(batch, &tokens, &denominators);
      if (setup_loss_hook) setup_loss_hook(step, terms);
      t.forward_s += seconds_since(tf);

      finite = finite && std::isfinite(terms.total_value);
      auto tb = Clock::now();
      setup.grad_sync->before_backward(micro == accum - 1);
      if (terms.requires_grad() && finite) (terms.total / accum).backward();
      t.backward_s += seconds_since(tb);
      loss_sum += terms.total_value / accum;
      pref += terms.preference_value / accum;
      prog += terms.progress_value / accum;
      succ += terms.success_value / accum;
      acc += terms.preference_accuracy / accum;
      sum = terms;
    }
    auto ts = Clock::now();
    setup.grad_sync->finish();
    t.sync_s = seconds_since(ts);

    auto to = Clock::now();
    const double gnorm = optimizer->clip_grad_norm(cfg.train.max_grad_norm);
    // Every rank must agree to skip (grads are synchronised, so the norm is the same, but a
    // NaN loss on one rank alone must skip everywhere too).
    const bool bad = world.any(!finite || !std::isfinite(gnorm));
    if (bad) {
      ++consecutive_bad;
      ++skipped;
      spdlog::warn("step {}: non-finite {} ({} in a row); step skipped", step + 1,
                   !finite ? "loss" : "gradient norm", consecutive_bad);
      if (consecutive_bad >= cfg.train.nan_abort_after)
        throw Error("training diverged: " + std::to_string(consecutive_bad) +
                    " consecutive steps with a non-finite loss or gradient norm (train.nan_abort_after = " +
                    std::to_string(cfg.train.nan_abort_after) +
                    "); lower train.lr or check the data; the last checkpoint is in " +
                    (run_dir / "checkpoints").string());
    } else {
      consecutive_bad = 0;
      optimizer->set_lr_factor(schedule->factor(step));
      optimizer->step();
    }
    optimizer->zero_grad();
    t.optimizer_s = seconds_since(to);
    ++step;  // a skipped step still consumes its data and schedule position
    t.total_s = seconds_since(t0);

    sum.total_value = loss_sum;
    sum.preference_value = pref;
    sum.progress_value = prog;
    sum.success_value = succ;
    sum.preference_accuracy = acc;
    last_grad_norm = gnorm;
    last_tokens = tokens;
    if (terms_out) *terms_out = sum;
    return t;
  }

  // Eval loss and preference accuracy over cfg.train.eval_batches fixed batches.
  nlohmann::json evaluate() {
    if (!eval_index) return nlohmann::json::object();
    torch::NoGradGuard no_grad;
    bundle.model->eval();
    data::Loader eval_loader(eval_index, loader_options(cfg, true, world.rank(), world.size()));
    double loss = 0, pref = 0, prog = 0, succ = 0, acc = 0;
    int64_t n = 0;
    for (int i = 0; i < cfg.train.eval_batches; ++i) {
      auto b = eval_loader.next();
      if (!b) break;
      const auto terms = forward_loss(*b, nullptr);
      loss += terms.total_value; pref += terms.preference_value; prog += terms.progress_value;
      succ += terms.success_value; acc += terms.preference_accuracy;
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
    std::vector<at::Tensor> v{at::tensor({loss, pref, prog, succ, acc, static_cast<double>(n)},
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
      auto take = [&](const char* key, const nlohmann::json& v) { if (v.is_number()) out[key] = v; };
      if (o.contains("voc")) {
        take("eval_voc_pearson", o["voc"].value("pearson", nlohmann::json()));
        take("eval_voc_spearman", o["voc"].value("spearman", nlohmann::json()));
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- checkpoints
  std::string save_checkpoint() {
    std::string where;
    // ZeRO-1: each rank stages its own optimizer shard; rank 0 adds them to the checkpoint.
    const fs::path staging = staging_dir(run_dir, step);
    const bool per_rank = world.size() > 1;  // each rank's own RNG streams and loader counters
    if (optimizer->sharded()) stage_optimizer_shard(world, *optimizer, staging);
    if (per_rank)
      stage_rank_state(world, rng_state_tensors(capture_rng_state()), loader->state().to_json(), staging);
    if (world.is_main()) {
      CheckpointWriter w(run_dir, step);
      model::StateDictOptions so;  // model dtype kept: fp32 stays bit-exact
      w.write_tensors(checkpoint_files::kModel, model::state_dict(*bundle.model, so),
                      {{"format", "pt"}, {"producer", "robometer.cpp"}});
      if (optimizer->sharded()) {
        add_staged_shards(w, staging, world.size());
      } else {
        w.write_tensors(checkpoint_files::kOptimizer, optimizer->state_tensors());
        w.write_json(checkpoint_files::kOptimizerState, optimizer->state_json());
      }
      w.write_json(checkpoint_files::kScheduler, schedule->to_json());
      w.write_tensors(checkpoint_files::kRng, rng_state_tensors(capture_rng_state()));
      if (per_rank) add_staged_rank_state(w, staging, world.size());
      w.write_json(checkpoint_files::kTrainerState,
                   {{"step", step}, {"consecutive_bad", consecutive_bad}, {"skipped", skipped},
                    {"world_size", world.size()}, {"format", "robometer-checkpoint"}, {"version", 1}});
      w.write_json(checkpoint_files::kLoader, loader->state().to_json());
      w.write_text(checkpoint_files::kConfig, config::to_yaml(cfg));
      w.write_json(checkpoint_files::kMetrics, {{"step", step}, {"eval", last_eval}});
      // What inference needs next to the weights, so a checkpoint dir is self-contained.
      w.write_text("config.json", bundle.config_json_text);
      where = w.commit(cfg.train.keep_last_n).string();
      if (optimizer->sharded() || per_rank) {  // committed: a failure here must not skip the barrier
        std::error_code ec;
        remove_tree(staging.string(), ec);
        if (ec) spdlog::warn("checkpoint: cannot remove {}: {}", staging.string(), ec.message());
      }
      spdlog::info("checkpoint: {}", where);
    }
    world.barrier();
    return where;
  }

  // Runs fn, which reads `file` of checkpoint `ck`; any failure that does not name a file yet
  // (a missing key, a value of the wrong type, a tensor of the wrong shape) is reported as a
  // FormatError naming the checkpoint file.
  template <class F>
  static auto reading(const Checkpoint& ck, const std::string& file, F&& fn) -> decltype(fn()) {
    try {
      return fn();
    } catch (const FormatError&) {
      throw;
    } catch (const std::exception& e) {
      throw FormatError((ck.dir() / file).string(), std::string("cannot resume from it: ") + e.what());
    }
  }

  void resume_from(const fs::path& dir) {
    Checkpoint ck(dir);
    const auto st = ck.json(checkpoint_files::kTrainerState);
    auto int_of = [&](const char* key, std::optional<int64_t> fallback) -> int64_t {
      return reading(ck, checkpoint_files::kTrainerState, [&]() -> int64_t {
        if (!st.contains(key)) {
          if (fallback) return *fallback;
          throw Error(std::string("missing key '") + key + "'");
        }
        if (!st[key].is_number_integer())
          throw Error(std::string("key '") + key + "' must be an integer, got " + st[key].dump());
        return st[key].get<int64_t>();
      });
    };
    const int saved_world = static_cast<int>(int_of("world_size", 1));
    if (saved_world != world.size() && optimizer->sharded())
      throw Error(dir.string() + ": saved with world size " + std::to_string(saved_world) +
                  ", resumed with " + std::to_string(world.size()) + " (sharded optimizer state)");
    model::LoadOptions lo;
    lo.source = (dir / checkpoint_files::kModel).string();
    reading(ck, checkpoint_files::kModel,
            [&] { model::load_weights(*bundle.model, ck.tensors(checkpoint_files::kModel), lo); });
    if (optimizer->sharded())
      reading(ck, optimizer_shard_file(world.rank(), false),
              [&] { load_optimizer_shard(ck, *optimizer, world.rank()); });
    else
      reading(ck, checkpoint_files::kOptimizer, [&] {
        optimizer->load_state(ck.tensors(checkpoint_files::kOptimizer),
                              ck.json(checkpoint_files::kOptimizerState));
      });
    step = int_of("step", std::nullopt);
    consecutive_bad = int_of("consecutive_bad", 0);
    skipped = int_of("skipped", 0);
    // Rank r continues from its own loader counters and RNG streams when the checkpoint has
    // them (saved by as many ranks); otherwise from rank 0's.
    const bool own = saved_world == world.size() && world.size() > 1;
    const std::string loader_file = own && ck.has(rank_loader_file(world.rank()))
                                        ? rank_loader_file(world.rank()) : checkpoint_files::kLoader;
    const std::string rng_file = own && ck.has(rank_rng_file(world.rank()))
                                     ? rank_rng_file(world.rank()) : checkpoint_files::kRng;
    if (world.size() > 1 && rng_file == checkpoint_files::kRng)
      spdlog::warn("{}: no RNG state of rank {} (saved by {} rank(s)): using rank 0's; dropout "
                   "masks will differ from an uninterrupted run", dir.string(), world.rank(), saved_world);
    const auto ls = reading(ck, loader_file, [&] { return data::LoaderState::from_json(ck.json(loader_file)); });
    if (saved_world == world.size()) {
      loader->restore(ls);
    } else {
      // Another world size: same epoch, continue from the samples already consumed globally.
      data::LoaderState s = ls;
      s.next_sample = ls.next_sample * saved_world / world.size();
      loader->restore(s);
      spdlog::warn("resuming a {}-rank checkpoint on {} ranks: data order is not bitwise",
                   saved_world, world.size());
    }
    reading(ck, rng_file, [&] { restore_rng_state(rng_state_from_tensors(ck.tensors(rng_file))); });
    spdlog::info("resumed from {} at step {}", dir.string(), step);
  }

  std::function<void(int64_t, LossTerms&)> setup_loss_hook;
  std::optional<fs::path> resume_dir;  // chosen in the constructor, loaded by fit()
  double last_grad_norm = 0;
  int64_t last_tokens = 0;
};

// ------------------------------------------------------------------------------ Trainer

Trainer::Trainer(config::RunConfig cfg, TrainerSetup setup)
    : impl_(std::make_unique<Impl>(std::move(cfg), std::move(setup))) {
  impl_->setup_loss_hook = impl_->setup.loss_hook;
  // Which checkpoint to resume from (never silently on top of an old run), decided before the
  // model is built so that a refused run_dir or a bad --resume fails at once.
  Impl& m = *impl_;
  const fs::path run_dir = m.cfg.output.run_dir;
  const std::string& spec = m.setup.resume;
  if (spec.empty() || spec == "none") {
    if (!scan_checkpoints(run_dir).complete.empty())
      throw ConfigError("output.run_dir '" + run_dir.string() +
                        "' already holds checkpoints: pass --resume auto to continue, or choose "
                        "another output.run_dir");
  } else {
    m.resume_dir = find_resume(run_dir, spec);  // logs each ignored dir itself; throws on a bad DIR
    // A checkpoint of another run: this run's own checkpoints would be overwritten at the same
    // steps and pruned by keep_last_n, so the run dir must not hold any yet.
    if (m.resume_dir && spec != "auto") {
      std::error_code ec;
      const fs::path own = fs::weakly_canonical(checkpoints_root(run_dir), ec);
      const fs::path from = fs::weakly_canonical(*m.resume_dir, ec).parent_path();
      if (from != own && !scan_checkpoints(run_dir).complete.empty())
        throw ConfigError("--resume " + spec + " is a checkpoint of another run, and output.run_dir '" +
                          run_dir.string() + "' already holds checkpoints that it would overwrite or "
                          "prune: choose an empty output.run_dir");
    }
  }
  impl_->build();
}

Trainer::~Trainer() = default;

model::ModelBundle& Trainer::model() { return impl_->bundle; }
data::Loader& Trainer::train_loader() { return *impl_->loader; }

StepTimes Trainer::step_once(LossTerms* terms) { return impl_->train_step(terms); }

TrainSummary Trainer::fit() {
  Impl& m = *impl_;
  const auto& tc = m.cfg.train;
  TrainSummary summary;

  // Resume (the checkpoint was chosen in the constructor) or start fresh.
  if (m.resume_dir) m.resume_from(*m.resume_dir);
  else if (m.setup.resume == "auto")
    spdlog::info("resume auto: no checkpoint in {}, starting fresh", m.run_dir.string());
  summary.first_step = m.step;
  if (m.world.is_main()) config::write_resolved_config(m.cfg, m.run_dir.string());
  m.log = std::make_unique<RunLog>(m.run_dir, m.world.is_main(), m.step, tc.max_steps,
                                   m.cfg.output.tensorboard, m.setup.progress_bar);

  m.bundle.model->train();
  double samples_per_step = static_cast<double>(tc.batch_size) * tc.grad_accum * m.world.size();
  const int K = m.cfg.data.frames_per_trajectory;
  while (m.step < tc.max_steps) {
    LossTerms terms;
    const StepTimes t = m.train_step(&terms);
    summary.last_loss = terms.total_value;

    // Metrics averaged over ranks.
    std::vector<at::Tensor> v{at::tensor({terms.total_value, terms.preference_value,
                                          terms.progress_value, terms.success_value,
                                          terms.preference_accuracy,
                                          static_cast<double>(m.last_tokens)}, at::kDouble)};
    m.world.all_reduce_sum(v);
    const auto r = v[0] / m.world.size();
    nlohmann::json rec = {
        {"step", m.step},
        {"loss", r[0].item<double>()},
        {"loss_preference", r[1].item<double>()},
        {"loss_progress", r[2].item<double>()},
        {"loss_success", r[3].item<double>()},
        {"preference_accuracy", r[4].item<double>()},
        {"lr", m.optimizer->lr()},
        {"grad_norm", m.last_grad_norm},
        {"step_time_s", t.total_s},
        {"samples_per_s", samples_per_step / t.total_s},
        {"frames_per_s", samples_per_step * 2 * K / t.total_s},
        {"tokens_per_s", r[5].item<double>() * m.world.size() / t.total_s},
        {"data_wait_share", t.data_s / t.total_s},
        {"time_forward_s", t.forward_s},
        {"time_backward_s", t.backward_s},
        {"time_sync_s", t.sync_s},
        {"time_optimizer_s", t.optimizer_s},
        {"peak_host_memory_mb", peak_host_memory() / 1048576.0},
        {"skipped_steps", m.skipped}};
    const bool eval_now = tc.eval_every > 0 && (m.step % tc.eval_every == 0 || m.step == tc.max_steps);
    if (eval_now) {
      m.last_eval = m.evaluate();
      for (auto& [k, val] : m.last_eval.items()) rec[k] = val;
      if (m.last_eval.contains("eval_loss")) {
        summary.eval_loss = m.last_eval["eval_loss"];
        summary.eval_preference_accuracy = m.last_eval["eval_preference_accuracy"];
      }
    }
    m.log->record(rec, m.step % tc.log_every == 0 || eval_now || m.step == tc.max_steps);

    const bool stop = m.world.any(stop_signal().load() != 0);
    const bool ck_now = m.step == tc.max_steps || stop ||
                        (tc.checkpoint_every > 0 && m.step % tc.checkpoint_every == 0);
    if (ck_now) summary.last_checkpoint = m.save_checkpoint();
    if (stop) {
      summary.interrupted = true;
      spdlog::warn("stopped by signal at step {}; checkpoint written; continue with --resume auto",
                   m.step);
      break;
    }
  }
  m.log->finish();
  summary.last_step = m.step;
  summary.skipped_steps = m.skipped;
  return summary;
}

}  // namespace robometer::train
