// Compares the C++ model with Hugging Face transformers on fixtures written by
// scripts/gpu/parity.py (tiny random Qwen3-VL + Robometer heads, real frames through HF's
// image processor, fp32).
#include <gtest/gtest.h>

#include <filesystem>

#include "../common/test_util.h"
#include "model_test_util.h"
#include "robometer/core/compat.h"
#include "robometer/io/safetensors.h"
#include "robometer/model/reward_model.h"
#include "robometer/model/weights.h"

using namespace robometer;
using namespace robometer::model;
namespace fs = std::filesystem;

TEST(ModelParity, MatchesHuggingFaceTransformers) {
  const fs::path dir = test::source_dir() / "tests" / "data" / "parity";
  if (!fs::exists(dir / "parity_io.safetensors") || !fs::exists(dir / "model.safetensors"))
    GTEST_SKIP() << "no HF parity fixtures in " << dir
                 << " (generate them with: python3 scripts/gpu/parity.py on a machine with transformers)";
  RewardModelConfig rc;
  rc.backbone = load_qwen3vl_config((dir / "config.json").string());
  RewardModel m(rc);
  m->eval();
  io::SafetensorsSet weights((dir / "model.safetensors").string());
  auto rep = load_weights(*m, weights);  // strict: every key must match
  EXPECT_TRUE(rep.ignored.empty());

  io::SafetensorsFile f((dir / "parity_io.safetensors").string());
  ModelInputs in;
  in.input_ids = f.get("input_ids");
  in.attention_mask = f.get("attention_mask");
  in.pixel_values = f.get("pixel_values");
  in.image_grid_thw = f.get("image_grid_thw");
  in.prog_positions = f.get("prog_positions");
  in.pref_positions = f.get("pref_positions");

  robometer::compat::NoGradGuard ng;
  auto bb = m->model->forward(in, {}, /*keep_layer_outputs=*/true);
  // Padding positions are compared nowhere: transformers 4.x gives them position 1, 5.x 0, so
  // their (unused) hidden states differ between versions; real tokens must match.
  auto real = in.attention_mask.to(at::kBool);
  auto ref_pos = f.get("hf.position_ids");
  for (int d = 0; d < 3; ++d)
    EXPECT_TRUE(bb.position_ids[d].masked_select(real).equal(ref_pos[d].masked_select(real)))
        << "M-RoPE position ids differ on axis " << d;
  auto check = [&](const std::string& name, at::Tensor ours) {
    auto ref = f.get("hf." + name);
    ASSERT_EQ(ours.sizes(), ref.sizes()) << name;
    if (name.rfind("layer_", 0) == 0 || name == "last_hidden_state") {
      ours = ours.index({real});
      ref = ref.index({real});
    }
    const double err = test::max_rel_err(ours, ref);
    std::printf("parity %-18s max|diff|/max|ref| = %.2e\n", name.c_str(), err);
    EXPECT_LT(err, 1e-4) << name;
  };
  check("image_embeds", bb.image_embeds);
  check("deepstack_0", bb.deepstack.at(0));
  check("deepstack_1", bb.deepstack.at(1));
  for (size_t i = 0; i < bb.layer_outputs.size(); ++i)
    check("layer_" + std::to_string(i), bb.layer_outputs[i]);
  check("last_hidden_state", bb.last_hidden_state);
  auto out = m->heads(bb.last_hidden_state, in.prog_positions, in.pref_positions);
  check("progress_logits", out.progress_logits);
  check("progress", out.progress);
  check("success_logits", out.success_logits);
  check("preference_logit", out.preference_logit);
}
