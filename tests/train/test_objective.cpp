// The Robometer objective on tiny tensors whose losses can be computed by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "robometer/core/error.h"
#include "robometer/train/objective.h"

using namespace robometer;
using namespace robometer::train;

namespace {
const double kLog2 = std::log(2.0);
at::Tensor T(std::vector<float> v, std::vector<int64_t> shape) {
  return at::tensor(v, at::kFloat).reshape(shape).clone();
}
}  // namespace

TEST(Objective, PreferenceLossByHand) {
  // u = 0 → σ = 1/2 → BCE = log 2 for either label.
  auto u = T({0.f, 0.f}, {2});
  EXPECT_NEAR(preference_loss(u, T({1.f, 0.f}, {2})).item<double>(), kLog2, 1e-6);
  // u = 2, y = 1 → log(1 + e^-2); u = -2, y = 1 → log(1 + e^2). Mean of the two.
  auto u2 = T({2.f, -2.f}, {2});
  const double want = (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(2.0))) / 2;
  EXPECT_NEAR(preference_loss(u2, T({1.f, 1.f}, {2})).item<double>(), want, 1e-6);
}

TEST(Objective, PreferenceLogitClampedAt50) {
  // u = 100 → clamped to 50; y = 0 → BCE = 50 + log(1 + e^-50) ≈ 50, and no gradient flows
  // through the clamp (as the original's torch.clamp).
  auto u = T({100.f}, {1}).requires_grad_(true);
  auto l = preference_loss(u, T({0.f}, {1}));
  EXPECT_NEAR(l.item<double>(), 50.0, 1e-4);
  l.backward();
  EXPECT_EQ(u.grad().item<float>(), 0.f);
}

TEST(Objective, PreferenceAccuracyUsesSign) {
  // u = 0 predicts "B better" (σ(0) > 0.5 is false); u = 2 predicts A.
  EXPECT_DOUBLE_EQ(preference_accuracy(T({0.f, 2.f}, {2}), T({1.f, 1.f}, {2})), 0.5);
  EXPECT_DOUBLE_EQ(preference_accuracy(T({-1.f, 2.f}, {2}), T({0.f, 1.f}, {2})), 1.0);
}

namespace {
// B = 2 samples, K = 2 frames, 2 bins.
//  sample 0: frame 0 z = [0, 0],     q = [1, 0] → CE = log 2
//            frame 1 z = [log 3, 0], q = [1, 0] → softmax = [3/4, 1/4] → CE = log(4/3)
//            mean_t = (log 2 + log 4/3)/2 = log(8/3)/2
//  sample 1: both frames z = [0, 0], q = [0, 1] → CE = log 2, mean_t = log 2
struct ProgCase {
  at::Tensor z = T({0.f, 0.f, float(std::log(3.0)), 0.f, 0.f, 0.f, 0.f, 0.f}, {2, 2, 2});
  at::Tensor q = T({1.f, 0.f, 1.f, 0.f, 0.f, 1.f, 0.f, 1.f}, {2, 2, 2});
  double s0 = std::log(8.0 / 3.0) / 2, s1 = kLog2;
};
}  // namespace

TEST(Objective, ProgressLossMeanAndReferenceScale) {
  ProgCase c;
  auto both = T({1.f, 1.f}, {2});
  // mean: Σ m_b mean_t CE / Σ m_b = (s0 + s1)/2; reference divides again by K = 2.
  EXPECT_NEAR(progress_loss(c.z, c.q, both, ProgressLossScale::Mean).item<double>(), (c.s0 + c.s1) / 2, 1e-6);
  EXPECT_NEAR(progress_loss(c.z, c.q, both, ProgressLossScale::Reference).item<double>(), (c.s0 + c.s1) / 4,
              1e-6);
  auto first = T({1.f, 0.f}, {2});
  EXPECT_NEAR(progress_loss(c.z, c.q, first, ProgressLossScale::Mean).item<double>(), c.s0, 1e-6);
  EXPECT_NEAR(progress_loss(c.z, c.q, first, ProgressLossScale::Reference).item<double>(), c.s0 / 2, 1e-6);
}

// The original's per-frame mask (rbm_heads_trainer.py _compute_progress_loss: mask = mask *
// predict_last_frame_mask, loss = masked_loss.mean(dim=1).sum(dim=0) / (mask.sum() + 1e-8)).
// Frame mask [[0, 1], [1, 1]], both samples on: masked CE = [[0, log 4/3], [log 2, log 2]],
// .mean(1) = [log(4/3)/2, log 2], sum = log(4/3)/2 + log 2, mask.sum() = 3 -> reference scale.
// Our mean scale divides the same Σ w·CE by the number of supervised frames (3) instead:
// (log 4/3 + 2 log 2) / 3. A masked-out NaN frame cannot leak.
TEST(Objective, ProgressLossPerFrameMaskAsTheOriginal) {
  ProgCase c;
  auto both = T({1.f, 1.f}, {2});
  auto fm = T({0.f, 1.f, 1.f, 1.f}, {2, 2});
  const double l43 = std::log(4.0 / 3.0);
  EXPECT_NEAR(progress_loss(c.z, c.q, both, ProgressLossScale::Reference, 0, fm).item<double>(),
              (l43 / 2 + kLog2) / 3, 1e-6);
  EXPECT_NEAR(progress_loss(c.z, c.q, both, ProgressLossScale::Mean, 0, fm).item<double>(),
              (l43 + 2 * kLog2) / 3, 1e-6);
  // All-ones frame masks give the per-sample results above.
  EXPECT_NEAR(progress_loss(c.z, c.q, both, ProgressLossScale::Mean, 0, at::ones({2, 2})).item<double>(),
              (c.s0 + c.s1) / 2, 1e-6);
  auto z = c.z.clone();
  z[0][0].fill_(std::numeric_limits<float>::quiet_NaN());
  auto zg = z.requires_grad_(true);
  auto l = progress_loss(zg, c.q, both, ProgressLossScale::Reference, 0, fm);
  EXPECT_NEAR(l.item<double>(), (l43 / 2 + kLog2) / 3, 1e-6);
  l.backward();
  EXPECT_EQ(zg.grad()[0][0].abs().sum().item<float>(), 0.f);
}

TEST(Objective, ProgressLossAllMaskedIsZeroAndBackwardable) {
  ProgCase c;
  auto z = c.z.clone().requires_grad_(true);
  auto l = progress_loss(z, c.q, T({0.f, 0.f}, {2}), ProgressLossScale::Mean);
  EXPECT_EQ(l.item<double>(), 0.0);
  l.backward();
  ASSERT_TRUE(z.grad().defined());
  EXPECT_EQ(z.grad().abs().sum().item<float>(), 0.f);
}

TEST(Objective, ProgressLossMaskedSampleCannotLeakNaN) {
  ProgCase c;
  auto z = c.z.clone();
  z[0].fill_(std::numeric_limits<float>::quiet_NaN());  // sample 0 is masked out
  auto zg = z.requires_grad_(true);
  auto l = progress_loss(zg, c.q, T({0.f, 1.f}, {2}), ProgressLossScale::Mean);
  EXPECT_NEAR(l.item<double>(), c.s1, 1e-6);
  l.backward();
  // sample 1, frame 0: dCE/dz = softmax - q = [1/2, 1/2] - [0, 1] = [1/2, -1/2], times 1/K = 1/2.
  EXPECT_NEAR(zg.grad()[1][0][0].item<float>(), 0.25, 1e-6);
  EXPECT_NEAR(zg.grad()[1][0][1].item<float>(), -0.25, 1e-6);
  EXPECT_EQ(zg.grad()[0].abs().sum().item<float>(), 0.f);
}

TEST(Objective, SuccessLossIncludedFramesOnly) {
  // logits [0, 100, -100], labels all 1, include [1, 1, 0]:
  //   frame 0: BCE(0, 1) = log 2; frame 1: clamp → 50, BCE = log(1 + e^-50) ≈ 0;
  //   frame 2 excluded.  Mean over 2 included frames = log 2 / 2.
  auto s = T({0.f, 100.f, -100.f}, {1, 3}).requires_grad_(true);
  auto l = success_loss(s, T({1.f, 1.f, 1.f}, {1, 3}), T({1.f, 1.f, 0.f}, {1, 3}));
  EXPECT_NEAR(l.item<double>(), kLog2 / 2, 1e-6);
  l.backward();
  // d/ds0 = (σ(0) - 1)/2 = -1/4; frame 1 is clamped (no grad); frame 2 excluded.
  EXPECT_NEAR(s.grad()[0][0].item<float>(), -0.25, 1e-6);
  EXPECT_EQ(s.grad()[0][1].item<float>(), 0.f);
  EXPECT_EQ(s.grad()[0][2].item<float>(), 0.f);
}

TEST(Objective, SuccessLossExcludedNaNCannotLeak) {
  // frame 1 excluded and NaN: loss = BCE(0, 0) = log 2, gradient finite everywhere.
  auto s = T({0.f, std::numeric_limits<float>::quiet_NaN()}, {1, 2}).requires_grad_(true);
  auto l = success_loss(s, T({0.f, 1.f}, {1, 2}), T({1.f, 0.f}, {1, 2}));
  EXPECT_NEAR(l.item<double>(), kLog2, 1e-6);
  l.backward();
  EXPECT_NEAR(s.grad()[0][0].item<float>(), 0.5, 1e-6);  // σ(0) - 0
  EXPECT_EQ(s.grad()[0][1].item<float>(), 0.f);
}

TEST(Objective, SuccessLossNothingIncluded) {
  auto s = T({1.f, 2.f}, {1, 2}).requires_grad_(true);
  auto l = success_loss(s, T({1.f, 0.f}, {1, 2}), T({0.f, 0.f}, {1, 2}));
  EXPECT_EQ(l.item<double>(), 0.0);
  l.backward();
  EXPECT_EQ(s.grad().abs().sum().item<float>(), 0.f);
}

TEST(Objective, SuccessMinorityWeightOfOriginalCancels) {
  // The original: w = majority/minority on the minority class, BCE(weight = w·mask),
  // then loss · mask / (w·mask + 1e-8), mean over included frames. Recompute that here and
  // check it equals the plain mean we implement.  3 negatives, 1 positive included → w = 3.
  auto s = T({0.3f, -1.2f, 2.0f, 0.7f, -0.4f}, {1, 5});
  auto y = T({1.f, 0.f, 0.f, 0.f, 1.f}, {1, 5});
  auto inc = T({1.f, 1.f, 1.f, 1.f, 0.f}, {1, 5});
  auto sw = at::where(y > 0.5, 3.0 * inc, inc);
  auto orig = at::binary_cross_entropy_with_logits(s, y, sw, {}, at::Reduction::None);
  orig = (orig * inc) / (sw + 1e-8);
  const double original = orig.index({inc.to(at::kBool)}).mean().item<double>();
  EXPECT_NEAR(success_loss(s, y, inc).item<double>(), original, 1e-6);
}

namespace {
// A pair batch with B = 2, K = 2, 10 bins and model outputs for T = 2K prog tokens.
struct PairCase {
  data::Batch batch;
  model::RewardOutputs out;
  PairCase() {
    batch.preference = T({1.f, 1.f}, {2});
    auto q = at::zeros({2, 2, 10});
    q.select(2, 0).fill_(1.f);
    batch.progress_target_a = q;
    batch.progress_mask_a = T({1.f, 0.f}, {2});
    batch.success_a = T({0.f, 0.f, 1.f, 1.f}, {2, 2});
    batch.success_mask_a = T({1.f, 1.f, 1.f, 0.f}, {2, 2});
    out.progress_logits = at::zeros({2, 4, 10}).requires_grad_(true);
    out.success_logits = at::zeros({2, 4}).requires_grad_(true);
    out.preference_logit = T({0.f, 2.f}, {2}).requires_grad_(true);
  }
};
}  // namespace

TEST(Objective, TotalIsWeightedSumOfTerms) {
  PairCase c;
  ObjectiveConfig cfg;
  cfg.progress_weight = 2.0;
  cfg.success_weight = 0.5;
  Objective obj(cfg);
  auto r = obj(c.out, c.batch);
  // pref: (log 2 + log(1 + e^-2))/2; accuracy 1/2 (u = 0 is not > 0).
  const double pref = (kLog2 + std::log1p(std::exp(-2.0))) / 2;
  // prog: zero logits over 10 bins → CE = log 10 for every frame; only sample 0 masked in.
  const double prog = std::log(10.0);
  // succ: zero logits → BCE = log 2 on each of the 3 included frames.
  const double succ = kLog2;
  EXPECT_NEAR(r.preference_value, pref, 1e-6);
  EXPECT_NEAR(r.progress_value, prog, 1e-6);
  EXPECT_NEAR(r.success_value, succ, 1e-6);
  EXPECT_NEAR(r.total_value, pref + 2 * prog + 0.5 * succ, 1e-5);
  EXPECT_NEAR(r.total.item<double>(), r.total_value, 1e-12);
  EXPECT_DOUBLE_EQ(r.preference_accuracy, 0.5);
  EXPECT_EQ(r.progress_samples, 1);
  EXPECT_EQ(r.success_frames, 3);
  EXPECT_EQ(r.nan_components(), 0);

  cfg.progress_scale = ProgressLossScale::Reference;  // extra 1/K = 1/2
  EXPECT_NEAR(Objective(cfg)(c.out, c.batch).progress_value, prog / 2, 1e-6);
}

TEST(Objective, GradientsReachOnlySupervisedTokens) {
  PairCase c;
  Objective obj;
  auto r = obj(c.out, c.batch);
  ASSERT_TRUE(r.requires_grad());
  r.total.backward();
  auto gp = c.out.progress_logits.grad();
  auto gs = c.out.success_logits.grad();
  // A's tokens of the progress-supervised sample get gradient; B's tokens (t >= K) and the
  // masked sample none.
  EXPECT_GT(gp[0].narrow(0, 0, 2).abs().sum().item<float>(), 0.f);
  EXPECT_EQ(gp.narrow(1, 2, 2).abs().sum().item<float>(), 0.f);
  EXPECT_EQ(gp[1].abs().sum().item<float>(), 0.f);
  // Success: included frames (0,0), (0,1), (1,0) only. d/ds = (σ(0) - y)/3.
  EXPECT_NEAR(gs[0][0].item<float>(), 0.5 / 3, 1e-6);
  EXPECT_NEAR(gs[1][0].item<float>(), -0.5 / 3, 1e-6);
  EXPECT_EQ(gs[1][1].item<float>(), 0.f);
  EXPECT_EQ(gs.narrow(1, 2, 2).abs().sum().item<float>(), 0.f);
  // Preference: d/du mean BCE = (σ(u) - y)/B → u = 0: (1/2 - 1)/2 = -1/4.
  EXPECT_NEAR(c.out.preference_logit.grad()[0].item<float>(), -0.25, 1e-6);
}

TEST(Objective, NaNComponentIsZeroedAndReported) {
  PairCase c;
  c.out.preference_logit = T({std::numeric_limits<float>::quiet_NaN(), 0.f}, {2}).requires_grad_(true);
  Objective obj;
  auto r = obj(c.out, c.batch);
  EXPECT_TRUE(r.preference_nan);
  EXPECT_FALSE(r.progress_nan);
  EXPECT_EQ(r.nan_components(), 1);
  EXPECT_EQ(obj.nan_count(), 1);
  EXPECT_EQ(r.preference_value, 0.0);
  EXPECT_NEAR(r.total_value, std::log(10.0) + kLog2, 1e-5);
  EXPECT_TRUE(std::isfinite(r.total.item<double>()));
  EXPECT_TRUE(r.requires_grad());
}

// trainers/rbm_heads_trainer.py, _compute_preference_loss: the preference and success terms are
// added only `if not torch.isnan(...)`, the progress term (progress_loss_A) unconditionally; then
// compute_loss adds the returned pair loss only `if not torch.isnan(preference_loss)`. So a NaN
// progress term drops the whole pair loss, a NaN success term only itself.
TEST(Objective, OriginalNanRuleNaNProgressDropsThePairLoss) {
  PairCase c;
  auto z = at::zeros({2, 4, 10});
  z[0][0][3] = std::numeric_limits<float>::quiet_NaN();  // sample 0 is progress-supervised
  c.out.progress_logits = z.requires_grad_(true);
  ObjectiveConfig cfg;
  ASSERT_EQ(cfg.nan_rule, NanRule::Original);  // the default
  auto r = Objective(cfg)(c.out, c.batch);
  EXPECT_TRUE(r.progress_nan);
  EXPECT_TRUE(r.pair_dropped);
  EXPECT_FALSE(r.requires_grad());
  EXPECT_TRUE(r.nothing_finite());
  EXPECT_EQ(r.total_value, 0.0);

  cfg.nan_rule = NanRule::PerTerm;  // our alternative: the two finite terms still train
  auto p = Objective(cfg)(c.out, c.batch);
  const double pref = (kLog2 + std::log1p(std::exp(-2.0))) / 2;
  EXPECT_FALSE(p.pair_dropped);
  EXPECT_TRUE(p.requires_grad());
  EXPECT_FALSE(p.nothing_finite());
  EXPECT_NEAR(p.total_value, pref + kLog2, 1e-5);
  EXPECT_EQ(parse_nan_rule("per_term"), NanRule::PerTerm);
  EXPECT_THROW(parse_nan_rule("drop"), ConfigError);
}

TEST(Objective, OriginalNanRuleNaNSuccessDropsOnlyItself) {
  PairCase c;
  c.out.success_logits = at::full({2, 4}, std::numeric_limits<float>::quiet_NaN()).requires_grad_(true);
  auto r = Objective()(c.out, c.batch);
  const double pref = (kLog2 + std::log1p(std::exp(-2.0))) / 2;
  EXPECT_TRUE(r.success_nan);
  EXPECT_FALSE(r.pair_dropped);
  EXPECT_NEAR(r.total_value, pref + std::log(10.0), 1e-5);
  EXPECT_FALSE(r.nothing_finite());
}

TEST(Objective, EveryTermNaNLeavesNothingFinite) {
  PairCase c;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  c.out.preference_logit = at::full({2}, nan).requires_grad_(true);
  c.out.progress_logits = at::full({2, 4, 10}, nan).requires_grad_(true);
  c.out.success_logits = at::full({2, 4}, nan).requires_grad_(true);
  ObjectiveConfig cfg;
  cfg.nan_rule = NanRule::PerTerm;
  auto r = Objective(cfg)(c.out, c.batch);
  EXPECT_EQ(r.nan_components(), 3);
  EXPECT_TRUE(r.nothing_finite());
}

TEST(Objective, NoPreferenceLogitMeansNoPreferenceTerm) {
  PairCase c;
  c.out.preference_logit = at::Tensor();
  auto r = Objective()(c.out, c.batch);
  EXPECT_EQ(r.preference_value, 0.0);
  EXPECT_NEAR(r.total_value, std::log(10.0) + kLog2, 1e-5);
}

TEST(Objective, ShapeMismatchIsAnError) {
  PairCase c;
  c.out.progress_logits = at::zeros({2, 1, 10});  // T = 1 < K = 2
  EXPECT_THROW(Objective()(c.out, c.batch), Error);
  EXPECT_THROW(parse_progress_loss_scale("sum"), ConfigError);
  EXPECT_EQ(parse_progress_loss_scale("reference"), ProgressLossScale::Reference);
}
