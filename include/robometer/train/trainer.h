// The training loop (llm.c spirit: one linear function you can read top to bottom).
//   for step: [grad_accum × (next batch → processor → model → objective → backward)]
//             → grad sync → clip → lr schedule → optimizer step → metrics → eval → checkpoint
// It does not know how many ranks there are: World, GradSync and the optimizer factory come
// from outside (dist/ for N ranks; LocalWorld / NoGradSync / LocalAdamW for one process).
#pragma once
#include <ATen/ATen.h>

#include <any>
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "robometer/config/run_config.h"
#include "robometer/data/loader.h"
#include "robometer/model/factory.h"
#include "robometer/train/objective.h"
#include "robometer/train/param_optimizer.h"
#include "robometer/train/world.h"

namespace robometer::train {

using OptimizerFactory =
    std::function<std::unique_ptr<ParamOptimizer>(const NamedParameters&, const AdamWConfig&)>;

struct TrainerSetup {
  std::shared_ptr<World> world = std::make_shared<LocalWorld>();
  std::unique_ptr<GradSync> grad_sync = std::make_unique<NoGradSync>();
  OptimizerFactory make_optimizer;  // empty: LocalAdamW
  std::string resume;               // "" or "none" (fresh; refuses a run_dir with checkpoints), "auto", or a
                                    // checkpoint DIR (of another run only into a run_dir without checkpoints)
  bool progress_bar = true;
  // Test seam: called with each micro-batch's loss terms before backward (e.g. to inject NaN).
  std::function<void(int64_t step, LossTerms&)> loss_hook;
  // The processor runs in the loader's workers (LoaderOptions::prepare); false = on the
  // training thread, as before (kept for the before/after benchmark and the equality test).
  bool prepare_in_loader = true;
};

struct StepTimes {
  double data_s = 0, forward_s = 0, backward_s = 0, sync_s = 0, optimizer_s = 0, total_s = 0;
  double input_s = 0;  // of forward_s: model inputs made on the training thread (collate or the
                       // whole processor, and the host-to-device copies issued)
};

// What one optimizer step did (Trainer::step_once).
struct StepResult {
  StepTimes times;
  LossTerms terms;                 // detached values averaged over the micro-batches (this rank)
  double grad_norm = 0;            // before clipping
  int64_t tokens = 0;              // attention-mask tokens of this rank's micro-batches
  int64_t forwards = 0;            // forward passes (micro-batches, more under train.max_tokens_per_batch)
  int64_t max_forward_tokens = 0;  // tokens computed by the largest forward (padding included)
  bool skipped = false;            // non-finite: no update (counts toward train.nan_abort_after)
  int64_t host_syncs = 0;          // computed values read on the host (core::HostSyncCounter) in the step
};

struct TrainSummary {
  int64_t first_step = 0;     // step the run started at (> 0 after a resume)
  int64_t last_step = 0;      // optimizer steps done when fit() returned
  bool interrupted = false;   // stopped by SIGINT/SIGTERM (a checkpoint was written)
  int64_t skipped_steps = 0;  // non-finite steps skipped
  double last_loss = 0;
  std::string last_checkpoint;
  double eval_loss = -1, eval_preference_accuracy = -1;
};

// Set by the signal handler the `train` command installs; checked once per step.
std::atomic<int>& stop_signal();

class Trainer {
 public:
  Trainer(config::RunConfig cfg, TrainerSetup setup);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainSummary fit();

  // One optimizer step on the next batch(es), timed (used by fit() and `robometer bench step`).
  StepResult step_once();

  model::ModelBundle& model();
  data::Loader& train_loader();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Model-agnostic conversion of a data batch into model inputs (the Processor's pair prompt).
// Samples the loader already prepared (prepare_in_loader) are only collated; `pinned` puts the
// collated tensors in page-locked memory. host_pair_inputs stays on the host.
// `packing` (train.packing): the sequences end to end (model::pack_inputs).
model::ModelInputs host_pair_inputs(const model::Processor& processor, const data::Batch& batch,
                                    bool pinned = false, bool packing = false);
model::ModelInputs pair_inputs(const model::Processor& processor, const data::Batch& batch,
                               const at::Device& device);
// Non-blocking copies of every defined input to `device` (no-op on the CPU).
model::ModelInputs inputs_to(model::ModelInputs in, const at::Device& device);
// LoaderOptions::prepare for the pair prompt: the processor's per-sample half in the workers.
// `processor` must outlive the loader.
std::function<std::any(const data::PairSample&)> prepare_pair_prompt(const model::Processor& processor);

// Builds a trajectory index from config dataset entries (manifest dirs + weights). With
// `filters`, the original's dataset filters (data.min_frames for "train", and
// data.drop_tasks_without_success) are applied and their counts logged.
std::shared_ptr<const data::TrajectoryIndex> load_index(const std::vector<config::DatasetEntry>& datasets,
                                                        const std::string& what,
                                                        data::IndexPolicy policy = data::IndexPolicy::Auto,
                                                        const config::DataConfig* filters = nullptr);

}  // namespace robometer::train
