// The project's CUDA kernels (robometer/model/fused_kernels.h) against the eager ops on the
// GPU, in bf16 and fp32, forward and gradients, then the tiny model with the kernels on vs
// off. The *FusedGpu* tests skip where there is no CUDA device or the build has no kernels
// (scripts/gpu/run runs them on the GPU machine); the ModelKernelSwitch tests run everywhere.
#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "model_test_util.h"
#include "robometer/core/compat.h"
#include "robometer/core/error.h"
#include "robometer/model/fused_kernels.h"
#include "robometer/model/qwen3vl_config.h"
#include "robometer/model/reward_model.h"
#include "robometer/model/rotary.h"
#include "robometer/model/text_decoder.h"

using namespace robometer;
using namespace robometer::model;

namespace {

// Turns the project kernels on or off for a scope.
struct KernelSwitch {
  bool before = project_kernels_enabled();
  explicit KernelSwitch(bool on) { set_project_kernels_enabled(on); }
  ~KernelSwitch() { set_project_kernels_enabled(before); }
};

#define SKIP_WITHOUT_KERNELS()                                                                      \
  if (!torch::cuda::is_available())                                                                 \
    GTEST_SKIP() << "no CUDA device (scripts/gpu/run runs this on the GPU machine)";                \
  if (!project_kernels_compiled())                                                                  \
  GTEST_SKIP() << "this build has no project CUDA kernels (needs nvcc and a LibTorch with CUDA at " \
                  "configure time)"

double err(const at::Tensor& a, const at::Tensor& b) { return test::max_rel_err(a, b); }

// Tolerances of a kernel output against the eager op, by dtype.
double tol(at::ScalarType st) { return st == at::kFloat ? 1e-4 : 3e-2; }

RMSNorm norm_module(int64_t D, double eps, const at::Tensor& w) {
  RMSNorm m(D, eps);
  m->weight = w;
  return m;
}

}  // namespace

// ---------------------------------------------------------------- always built and run
TEST(ModelKernelSwitch, OffByDefaultAndNeverOnCpu) {
  // The default is the environment's (unset in the test runs): off unless ROBOMETER_CUDA_KERNELS=1.
  const char* e = std::getenv("ROBOMETER_CUDA_KERNELS");
  EXPECT_EQ(project_kernels_enabled(), e != nullptr && std::string(e) == "1");
  KernelSwitch on(true);
  EXPECT_FALSE(use_project_kernels(at::ones({2, 4})));
  EXPECT_NE(project_kernels_summary().find(project_kernels_compiled() ? "compiled" : "not compiled"),
            std::string::npos);
  if (!project_kernels_compiled()) {
    EXPECT_FALSE(project_kernels_available());
    EXPECT_THROW(fused_swiglu(at::ones({2}), at::ones({2})), Error);
    EXPECT_THROW(fused_add_rms_norm(at::ones({2, 4}), at::ones({2, 4}), at::ones({4}), 1e-6), Error);
    EXPECT_THROW(fused_rms_norm_rotary(at::ones({1, 1, 1, 4}), at::ones({4}), at::ones({1, 1, 4}),
                                       at::ones({1, 1, 4}), 1e-6),
                 Error);
  }
}

TEST(ModelKernelSwitch, DecoderOnCpuIsUnchangedWithTheSwitchOn) {
  torch::manual_seed(0);
  TextModel m(tiny_qwen3vl_config().text);
  auto emb = at::randn({2, 6, tiny_qwen3vl_config().text.hidden_size});
  auto pos = at::arange(6).view({1, 1, 6}).expand({3, 2, 6}).contiguous();
  at::Tensor a, b;
  {
    KernelSwitch off(false);
    a = m->forward(emb, pos, {}, {}, {}, {});
  }
  {
    KernelSwitch on(true);
    b = m->forward(emb, pos, {}, {}, {}, {});
  }
  EXPECT_TRUE(a.equal(b));
}

// ---------------------------------------------------------------- kernels vs eager on CUDA
TEST(ModelFusedGpu, KernelAddRmsNormForwardAndGradients) {
  SKIP_WITHOUT_KERNELS();
  for (const auto st : {at::kBFloat16, at::kFloat}) {
    for (const int64_t D : {int64_t{2560}, int64_t{64}, int64_t{7}}) {
      SCOPED_TRACE(std::string(c10::toString(st)) + " D " + std::to_string(D));
      torch::manual_seed(D);
      auto opts = at::dtype(st).device(at::kCUDA);
      // x is a non-contiguous view (every other column of a wider tensor): the wrapper copies.
      auto x0 = at::randn({3, 37, 2 * D}, opts).narrow(2, 0, D);
      auto r0 = at::randn({3, 37, D}, opts);
      auto w0 = (1 + 0.3 * at::randn({D}, opts)).to(st);
      auto gh = at::randn({3, 37, D}, opts), gy = at::randn({3, 37, D}, opts);
      std::vector<at::Tensor> out[2];
      for (int k = 0; k < 2; ++k) {
        auto x = x0.detach().requires_grad_(true), r = r0.detach().clone().requires_grad_(true);
        auto w = w0.detach().clone().requires_grad_(true);
        at::Tensor h, y;
        if (k == 1) {
          std::tie(h, y) = fused_add_rms_norm(x, r, w, 1e-6);
        } else {
          h = x + r;
          y = norm_module(D, 1e-6, w)->forward(h);
        }
        auto g = torch::autograd::grad({h, y}, {x, r, w}, {gh, gy});
        out[k] = {h, y, g[0], g[1], g[2]};
      }
      EXPECT_EQ(out[1][1].scalar_type(), st);
      EXPECT_TRUE(out[1][0].equal(out[0][0]));  // the residual add rounds the same way
      for (size_t i = 1; i < 5; ++i)
        EXPECT_LT(err(out[1][i], out[0][i]), tol(st) * (i == 4 ? 2 : 1)) << "output " << i;
      // Only one output used: the other's gradient is absent, not garbage.
      auto x = x0.detach().requires_grad_(true), r = r0.detach().clone().requires_grad_(true);
      auto [h, y] = fused_add_rms_norm(x, r, w0, 1e-6);
      auto g = torch::autograd::grad({h}, {x, r}, {gh});
      EXPECT_TRUE(g[0].equal(gh));
      EXPECT_TRUE(g[1].equal(gh));
    }
  }
}

TEST(ModelFusedGpu, KernelSwiGluForwardAndGradients) {
  SKIP_WITHOUT_KERNELS();
  for (const auto st : {at::kBFloat16, at::kFloat}) {
    SCOPED_TRACE(std::string(c10::toString(st)));
    torch::manual_seed(5);
    auto opts = at::dtype(st).device(at::kCUDA);
    auto g0 = (at::randn({4, 33, 9728}, opts) * 3).transpose(0, 1);  // non-contiguous
    auto u0 = at::randn({33, 4, 9728}, opts);
    auto dy = at::randn({33, 4, 9728}, opts);
    std::vector<at::Tensor> out[2];
    for (int k = 0; k < 2; ++k) {
      auto g = g0.detach().requires_grad_(true), u = u0.detach().requires_grad_(true);
      auto y = k == 1 ? fused_swiglu(g, u) : at::silu(g) * u;
      auto gr = torch::autograd::grad({y}, {g, u}, {dy});
      out[k] = {y, gr[0], gr[1]};
    }
    for (size_t i = 0; i < 3; ++i) EXPECT_LT(err(out[1][i], out[0][i]), tol(st)) << "output " << i;
  }
}

TEST(ModelFusedGpu, KernelRmsNormRotaryForwardAndGradients) {
  SKIP_WITHOUT_KERNELS();
  TextConfig big;  // head_dim 128, M-RoPE 24/20/20
  TextConfig tiny = tiny_qwen3vl_config().text;
  for (const auto st : {at::kBFloat16, at::kFloat}) {
    for (const auto& [cfg, H] : std::vector<std::pair<TextConfig, int64_t>>{{big, 32}, {big, 8}, {tiny, 4}}) {
      const int64_t B = 2, L = 45, D = cfg.head_dim;
      SCOPED_TRACE(std::string(c10::toString(st)) + " H " + std::to_string(H) + " D " + std::to_string(D));
      torch::manual_seed(H + D);
      auto opts = at::dtype(st).device(at::kCUDA);
      auto pos = at::randint(0, 800, {3, B, L}, at::kLong).to(at::kCUDA);
      auto [cos, sin] = text_mrope_cos_sin(pos, cfg, st);
      auto x0 = at::randn({B, L, H * D}, opts).view({B, L, H, D});
      auto w0 = (1 + 0.3 * at::randn({D}, opts)).to(st);
      auto d_o = at::randn({B, L, H, D}, opts);
      std::vector<at::Tensor> out[2];
      for (int k = 0; k < 2; ++k) {
        auto x = x0.detach().requires_grad_(true), w = w0.detach().clone().requires_grad_(true);
        at::Tensor o;
        if (k == 1) {
          o = fused_rms_norm_rotary(x, w, cos, sin, cfg.rms_norm_eps);
        } else {
          auto q = norm_module(D, cfg.rms_norm_eps, w)->forward(x).transpose(1, 2);
          o = apply_text_rotary(q, q, cos, sin).first.transpose(1, 2);
        }
        auto g = torch::autograd::grad({o}, {x, w}, {d_o});
        out[k] = {o, g[0], g[1]};
      }
      for (size_t i = 0; i < 3; ++i)
        EXPECT_LT(err(out[1][i], out[0][i]), tol(st) * (i == 2 ? 2 : 1)) << "output " << i;
    }
  }
}

// The decoder's dispatch: with the switch on, the tiny model's loss and every gradient follow
// the eager run (bf16, checkpointing none / selective / full replaying the kernels).
TEST(ModelFusedGpu, KernelTinyModelLossAndGradientsVsEager) {
  SKIP_WITHOUT_KERNELS();
  auto run = [](bool kernels, const std::string& mode) {
    KernelSwitch sw(kernels);
    torch::manual_seed(0);
    RewardModelConfig rc;
    rc.backbone = tiny_qwen3vl_config();
    rc.train_vision = true;
    rc.head_dropout = 0.0;
    rc.checkpointing = CheckpointPlan::parse(mode);
    RewardModel m(rc);
    m->to(at::kCUDA, at::kBFloat16);
    m->train();
    torch::manual_seed(2);
    std::vector<std::vector<test::ImageSpec>> imgs = {{test::ImageSpec{4, 6}}, {test::ImageSpec{4, 4}}};
    auto in = test::make_inputs(rc.backbone, imgs,
                                {test::make_sample_tokens(rc.backbone, imgs[0], 5, 3, 0),
                                 test::make_sample_tokens(rc.backbone, imgs[1], 4, 2, 1)});
    for (at::Tensor* t : {&in.input_ids, &in.attention_mask, &in.pixel_values, &in.image_grid_thw,
                          &in.prog_positions, &in.pref_positions})
      if (t->defined()) *t = t->to(at::kCUDA);
    auto o = m->forward(in);
    auto loss =
        (o.progress_logits.pow(2).sum() + o.success_logits.sum() + o.preference_logit.sum()).to(at::kFloat);
    loss.backward();
    std::map<std::string, at::Tensor> grads;
    for (const auto& p : m->named_parameters())
      if (p.value().grad().defined()) grads[p.key()] = p.value().grad().to(at::kFloat);
    return std::make_pair(loss.item<double>(), grads);
  };
  const auto eager = run(false, "none");
  for (const std::string mode : {"none", "selective", "full"}) {
    const auto r = run(true, mode);
    EXPECT_NEAR(r.first, eager.first, 2e-2 * (1 + std::abs(eager.first))) << mode;
    ASSERT_EQ(r.second.size(), eager.second.size()) << mode;
    double worst = 0;
    for (const auto& [k, g] : eager.second) worst = std::max(worst, err(r.second.at(k), g));
    std::printf("project kernels, checkpointing %s: loss %.5f vs %.5f eager, worst grad rel err %.3g\n",
                mode.c_str(), r.first, eager.first, worst);
    EXPECT_LT(worst, 1e-1) << mode;
  }
}
