#include "robometer/train/objective.h"

#include <ATen/core/Reduction.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <sstream>

#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"

namespace robometer::train {

namespace {

std::string shape_str(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

void require(bool ok, const std::string& what) {
  if (!ok) throw Error("objective: " + what);
}

// A 0-d zero that is part of `like`'s graph without reading its values (so NaN/Inf elsewhere in
// `like` cannot leak in): sum over an empty slice.
at::Tensor graph_zero(const at::Tensor& like) {
  return like.reshape({-1}).narrow(0, 0, 0).sum().to(at::kFloat);
}

}  // namespace

ProgressLossScale parse_progress_loss_scale(const std::string& s) {
  if (s == "mean") return ProgressLossScale::Mean;
  if (s == "reference") return ProgressLossScale::Reference;
  throw ConfigError("progress_loss_scale: expected 'mean' or 'reference', got '" + s + "'");
}

const char* progress_loss_scale_name(ProgressLossScale s) {
  return s == ProgressLossScale::Mean ? "mean" : "reference";
}

NanRule parse_nan_rule(const std::string& s) {
  if (s == "original") return NanRule::Original;
  if (s == "per_term") return NanRule::PerTerm;
  throw ConfigError("nan_rule: expected 'original' or 'per_term', got '" + s + "'");
}

void LossTerms::add_scaled_values(const LossTerms& other, double scale) {
  total_value += other.total_value * scale;
  preference_value += other.preference_value * scale;
  progress_value += other.progress_value * scale;
  success_value += other.success_value * scale;
  preference_accuracy += other.preference_accuracy * scale;
}

void LossTerms::add_part(const LossTerms& part, double sample_fraction) {
  total_value += part.total_value;
  preference_value += part.preference_value;
  progress_value += part.progress_value;
  success_value += part.success_value;
  preference_accuracy += part.preference_accuracy * sample_fraction;
  progress_samples += part.progress_samples;
  success_frames += part.success_frames;
}

LossDenominators loss_counts(const data::Batch& batch) {
  LossDenominators d;
  if (batch.preference.defined()) d.preference = static_cast<double>(batch.preference.numel());
  if (batch.progress_mask_a.defined()) {  // as progress_loss: Σ mask·frame_mask / K
    auto m = batch.progress_mask_a.to(at::kFloat);
    const auto& fm = batch.progress_frame_mask_a;
    d.progress = fm.defined() ? (m.view({-1, 1}) * fm.to(at::kFloat)).mean(1).sum().item<double>()
                              : m.sum().item<double>();
  }
  if (batch.success_mask_a.defined()) d.success = (batch.success_mask_a > 0).sum().item<double>();
  return d;
}

at::Tensor preference_loss(const at::Tensor& logit, const at::Tensor& label, double clamp,
                           double denominator) {
  require(logit.dim() == 1 && label.dim() == 1 && logit.size(0) == label.size(0),
          "preference logit " + shape_str(logit) + " and label " + shape_str(label) + " must both be [B]");
  auto u = at::clamp(logit.to(at::kFloat), -clamp, clamp);
  auto y = label.to(u.device(), at::kFloat);
  if (denominator <= 0) return at::binary_cross_entropy_with_logits(u, y, {}, {}, at::Reduction::Mean);
  return at::binary_cross_entropy_with_logits(u, y, {}, {}, at::Reduction::Sum) / denominator;
}

at::Tensor progress_loss(const at::Tensor& logits, const at::Tensor& target, const at::Tensor& mask,
                         ProgressLossScale scale, double denominator, const at::Tensor& frame_mask) {
  require(logits.dim() == 3 && target.sizes() == logits.sizes(), "progress logits " + shape_str(logits) +
                                                                     " and target " + shape_str(target) +
                                                                     " must both be [B, K, bins]");
  require(mask.dim() == 1 && mask.size(0) == logits.size(0),
          "progress mask " + shape_str(mask) + " must be [B] for logits " + shape_str(logits));
  const int64_t K = logits.size(1);
  require(!frame_mask.defined() ||
              (frame_mask.dim() == 2 && frame_mask.size(0) == logits.size(0) && frame_mask.size(1) == K),
          "progress frame mask " + shape_str(frame_mask) + " must be [B, K] for logits " + shape_str(logits));
  auto m = mask.to(logits.device(), at::kFloat).view({-1, 1});  // [B, 1]
  auto w = frame_mask.defined() ? m * frame_mask.to(logits.device(), at::kFloat) : m.expand({-1, K});
  // Masked-out frames are replaced by zeros *before* the softmax, so NaN/Inf in them can leak
  // neither into the loss nor into the gradient (where() after log_softmax would still
  // back-propagate NaN through the softmax).
  auto keep = (w > 0).unsqueeze(-1);
  auto z = at::where(keep, logits.to(at::kFloat), at::zeros({}, logits.options().dtype(at::kFloat)));
  auto q = at::where(keep, target.to(z.device(), at::kFloat), at::zeros({}, z.options()));
  auto ce = -(q * at::log_softmax(z, -1)).sum(-1);  // [B, K]
  auto weighted = (ce * w).mean(1);                 // [B]
  const double msum = core::host_value<double>(w.mean(1).sum(), "objective: progress weight sum");
  if (msum <= 0) return graph_zero(z);
  double denom = denominator > 0 ? denominator : msum;
  if (scale == ProgressLossScale::Reference) denom *= static_cast<double>(K);
  return weighted.sum() / denom;
}

at::Tensor success_loss(const at::Tensor& logits, const at::Tensor& label, const at::Tensor& include,
                        double clamp, double denominator) {
  require(logits.dim() == 2 && label.sizes() == logits.sizes() && include.sizes() == logits.sizes(),
          "success logits " + shape_str(logits) + ", labels " + shape_str(label) + " and inclusion mask " +
              shape_str(include) + " must all be [B, K]");
  auto inc = include.to(logits.device()) > 0;
  const auto zero = at::zeros({}, logits.options().dtype(at::kFloat));
  // Excluded frames are zeroed before the BCE so that NaN there cannot reach loss or gradient.
  auto s = at::where(inc, at::clamp(logits.to(at::kFloat), -clamp, clamp), zero);
  auto y = at::where(inc, label.to(s.device(), at::kFloat), zero);
  const int64_t n = core::host_value<int64_t>(inc.sum(), "objective: success frame count");
  if (n == 0) return graph_zero(s);
  auto bce = at::binary_cross_entropy_with_logits(s, y, {}, {}, at::Reduction::None);
  return (bce * inc.to(at::kFloat)).sum() / (denominator > 0 ? denominator : static_cast<double>(n));
}

double preference_accuracy(const at::Tensor& logit, const at::Tensor& label) {
  if (!logit.defined() || logit.numel() == 0) return 0.0;
  auto pred = logit.detach().to(at::kFloat) > 0;
  auto y = label.to(pred.device(), at::kFloat) > 0.5;
  return core::host_value<double>((pred == y).to(at::kFloat).mean(), "objective: preference accuracy");
}

LossTerms Objective::operator()(const model::RewardOutputs& out, const data::Batch& batch,
                                const LossDenominators* denominators) {
  const LossDenominators d = denominators ? *denominators : LossDenominators{};
  LossTerms r;
  at::Tensor total;
  auto add = [&](at::Tensor term, double weight, const char* name, bool& nan_flag, at::Tensor& slot,
                 double& value, bool supervised) {
    const double v = core::host_value<double>(term.detach(), "objective: loss term value");
    if (supervised && !std::isnan(v)) ++r.finite_components;
    if (std::isnan(v)) {
      nan_flag = true;
      ++nan_count_;
      spdlog::warn("objective: NaN in the {} loss, replaced with 0 ({} NaN components so far)", name,
                   nan_count_);
      slot = at::zeros({}, term.options().dtype(at::kFloat));
      value = 0.0;
      return;
    }
    slot = term;
    value = v;
    auto w = term * weight;
    total = total.defined() ? total + w : w;
  };

  const auto& z = out.progress_logits;
  const auto& tgt = batch.progress_target_a;
  at::Tensor device_ref;

  if (cfg_.preference_weight != 0 && out.preference_logit.defined()) {
    require(batch.preference.defined(), "batch has no preference labels");
    auto u = out.preference_logit.reshape({-1});
    add(preference_loss(u, batch.preference, cfg_.logit_clamp, d.preference), cfg_.preference_weight,
        "preference", r.preference_nan, r.preference, r.preference_value, u.numel() > 0);
    r.preference_accuracy = preference_accuracy(u, batch.preference);
    device_ref = u;
  }

  if (cfg_.progress_weight != 0 || cfg_.success_weight != 0) {
    require(tgt.defined() && tgt.dim() == 3, "progress_target_a " + shape_str(tgt) + " must be [B, K, bins]");
    const int64_t B = tgt.size(0), K = tgt.size(1);
    if (cfg_.progress_weight != 0) {
      require(z.defined() && z.dim() == 3 && z.size(0) == B && z.size(1) >= K && z.size(2) == tgt.size(2),
              "progress_logits " + shape_str(z) + " do not cover progress_target_a " + shape_str(tgt) +
                  " (need [B, T >= K, bins])");
      auto za = z.narrow(1, 0, K);
      r.progress_samples =
          core::host_value<int64_t>((batch.progress_mask_a > 0).sum(), "objective: supervised sample count");
      add(progress_loss(za, tgt, batch.progress_mask_a, cfg_.progress_scale, d.progress,
                        batch.progress_frame_mask_a),
          cfg_.progress_weight, "progress", r.progress_nan, r.progress, r.progress_value,
          r.progress_samples > 0);
      device_ref = z;
    }
    if (cfg_.success_weight != 0) {
      const auto& s = out.success_logits;
      require(s.defined() && s.dim() == 2 && s.size(0) == B && s.size(1) >= K,
              "success_logits " + shape_str(s) + " do not cover success_a [B=" + std::to_string(B) +
                  ", K=" + std::to_string(K) + "]");
      auto sa = s.narrow(1, 0, K);
      r.success_frames =
          core::host_value<int64_t>((batch.success_mask_a > 0).sum(), "objective: supervised frame count");
      add(success_loss(sa, batch.success_a, batch.success_mask_a, cfg_.logit_clamp, d.success),
          cfg_.success_weight, "success", r.success_nan, r.success, r.success_value, r.success_frames > 0);
      device_ref = s;
    }
  }

  auto opts =
      device_ref.defined() ? device_ref.options().dtype(at::kFloat) : at::TensorOptions().dtype(at::kFloat);
  auto zero = [&] { return at::zeros({}, opts); };
  if (!r.preference.defined()) r.preference = zero();
  if (!r.progress.defined()) r.progress = zero();
  if (!r.success.defined()) r.success = zero();
  if (cfg_.nan_rule == NanRule::Original && r.progress_nan) {
    r.pair_dropped = true;
    total = at::Tensor();
    spdlog::warn("objective: NaN in the progress loss drops the whole pair loss (train.nan_rule = original)");
  }
  r.total = total.defined() ? total : zero();
  r.total_value = core::host_value<double>(r.total.detach(), "objective: total loss value");
  return r;
}

}  // namespace robometer::train
