// The Robometer training objective (spec §2.2-2.5, trainers/rbm_heads_trainer.py):
//   L = w_pref·L_pref + w_prog·L_prog(A) + w_succ·L_succ(A)
// computed from the heads' outputs and the collated labels. Model-agnostic: only tensors in.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "robometer/data/sample.h"
#include "robometer/model/model_inputs.h"

namespace robometer::train {

// How the masked progress cross-entropy is normalised.
//   Mean:      L = Σ_b m_b · mean_t CE_bt / Σ_b m_b               (a per-frame mean)
//   Reference: L = [Σ_b m_b · mean_t CE_bt] / [K · Σ_b m_b]       (the original's extra 1/K:
//              it divides the per-sample mean by the count of valid frames, K per sample)
enum class ProgressLossScale { Mean, Reference };
ProgressLossScale parse_progress_loss_scale(const std::string& s);  // "mean" | "reference"
const char* progress_loss_scale_name(ProgressLossScale s);

// What a NaN term does to the loss (the original's compute_loss / _compute_preference_loss in
// trainers/rbm_heads_trainer.py):
//   Original: a NaN preference or success term is dropped before the sum, but the progress term is
//             added unchecked, so a NaN there makes the pair loss NaN and compute_loss drops the
//             whole pair loss (nothing is trained on the batch).
//   PerTerm:  each NaN term is dropped alone; the others still train.
enum class NanRule { Original, PerTerm };
NanRule parse_nan_rule(const std::string& s);  // "original" | "per_term"

struct ObjectiveConfig {
  double preference_weight = 1.0;
  double progress_weight = 1.0;
  double success_weight = 1.0;
  ProgressLossScale progress_scale = ProgressLossScale::Mean;
  NanRule nan_rule = NanRule::Original;
  double logit_clamp = 50.0;  // preference and success logits are clamped to ±this (as original)
};

// One evaluation of the objective. Tensors are 0-d float32 on the logits' device and carry the
// graph (total is what the loop calls backward() on); the doubles are detached copies.
// A component that came out NaN is replaced by a constant 0 (no gradient) and flagged, as the
// original does; a term whose weight is 0 or whose input is absent is 0 and not computed.
struct LossTerms {
  at::Tensor total, preference, progress, success;
  double total_value = 0, preference_value = 0, progress_value = 0, success_value = 0;
  double preference_accuracy = 0;  // fraction of pairs with (u > 0) == (y > 0.5)
  int64_t progress_samples = 0;    // samples with progress mask > 0
  int64_t success_frames = 0;      // frames included in the success loss
  bool preference_nan = false, progress_nan = false, success_nan = false;
  bool pair_dropped = false;  // NanRule::Original dropped the whole pair loss
  int finite_components = 0;  // terms with something to supervise that came out finite
  int nan_components() const { return preference_nan + progress_nan + success_nan; }
  // NaN left nothing to train on: the pair loss was dropped, or every term with something to
  // supervise was NaN. The loop counts such a batch as a non-finite step.
  bool nothing_finite() const { return pair_dropped || (nan_components() > 0 && finite_components == 0); }
  // this += other · scale on the detached values (the accumulation over micro-batches).
  void add_scaled_values(const LossTerms& other, double scale);
  // this += one forward's share of a micro-batch (train.max_tokens_per_batch): loss values add
  // (each part divides by the whole batch's denominators), the accuracy is weighted by the part's
  // share of the samples, counts add.
  void add_part(const LossTerms& part, double sample_fraction);
  // False when every term was zeroed/absent: the loop must skip backward() for this batch.
  bool requires_grad() const { return total.defined() && total.requires_grad(); }
};

// Denominators of the three means when they must cover more than this batch: under data
// parallelism or gradient accumulation each micro-batch divides its sum by
// (global count) / (ranks × micro-batches), so that the averaged gradient is that of the mean
// over the whole global batch (a per-micro-batch mean would weight samples unequally whenever
// masks differ between ranks). A value <= 0 means "this batch's own count".
struct LossDenominators {
  double preference = 0;  // pairs
  double progress = 0;    // Σ progress mask
  double success = 0;     // frames included in the success loss
};

// The counts those denominators are made of, for one batch.
LossDenominators loss_counts(const data::Batch& batch);

// --- the three terms on plain tensors (exposed for tests and for eval) --------------------

// mean_b BCE(σ(clamp(u_b)), y_b). u, y: [B]. denominator > 0 replaces B.
at::Tensor preference_loss(const at::Tensor& logit, const at::Tensor& label, double clamp = 50.0,
                           double denominator = 0);

// Soft-target CE over the last dim, masked per sample and (optionally) per frame. logits,
// target: [B, K, C]; mask: [B]; frame_mask: [B, K] (undefined = all 1). With w = mask·frame_mask
// and W = Σ w / K (= Σ mask for full frame masks): mean scale Σ w·CE / (K·W), reference scale
// (the original's masked_loss.mean(1).sum() / mask.sum()) Σ w·CE / (K·K·W). Returns 0 (with
// graph) when W = 0. denominator > 0 replaces W.
at::Tensor progress_loss(const at::Tensor& logits, const at::Tensor& target, const at::Tensor& mask,
                         ProgressLossScale scale, double denominator = 0, const at::Tensor& frame_mask = {});

// Mean over frames with include > 0 of BCE(σ(clamp(s)), y). logits, label, include: [B, K].
// Returns 0 (with graph) when nothing is included. The original also computes a minority-class
// weight w, multiplies the per-frame BCE by it and then divides by (w + 1e-8): the two cancel
// (to a factor w/(w+1e-8) that rounds to 1 in fp32), so the effective loss is this plain mean.
// denominator > 0 replaces the count of included frames.
at::Tensor success_loss(const at::Tensor& logits, const at::Tensor& label, const at::Tensor& include,
                        double clamp = 50.0, double denominator = 0);

// Fraction of pairs where the sign of the logit matches the label.
double preference_accuracy(const at::Tensor& logit, const at::Tensor& label);

class Objective {
 public:
  explicit Objective(ObjectiveConfig cfg = {}) : cfg_(cfg) {}

  // out.progress_logits [B, T, 10] with T = K (progress prompt) or 2K (pair: A's K tokens
  // first); only A's first K are supervised. out.preference_logit may be undefined (no
  // preference term). Throws Error on shape mismatches, naming the tensors.
  // `denominators` (optional) set the means' denominators (see LossDenominators).
  LossTerms operator()(const model::RewardOutputs& out, const data::Batch& batch,
                       const LossDenominators* denominators = nullptr);

  const ObjectiveConfig& config() const { return cfg_; }
  // NaN components zeroed since construction (the original logs a warning for each).
  int64_t nan_count() const { return nan_count_; }

 private:
  ObjectiveConfig cfg_;
  int64_t nan_count_ = 0;
};

}  // namespace robometer::train
