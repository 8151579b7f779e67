#include <gtest/gtest.h>

#include "robometer/core/error.h"
#include "robometer/model/qwen3vl_config.h"
#include "robometer/model/reward_model.h"

using namespace robometer;
using namespace robometer::model;

// A config.json in the transformers 4.57 layout of Qwen/Qwen3-VL-4B-Instruct (fields we read).
static const char* kQwen3VL4BJson = R"({
  "architectures": ["Qwen3VLForConditionalGeneration"],
  "image_token_id": 151655, "video_token_id": 151656,
  "vision_start_token_id": 151652, "vision_end_token_id": 151653,
  "model_type": "qwen3_vl", "tie_word_embeddings": true,
  "text_config": {
    "head_dim": 128, "hidden_act": "silu", "hidden_size": 2560, "intermediate_size": 9728,
    "num_attention_heads": 32, "num_hidden_layers": 36, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06, "rope_scaling": {"mrope_interleaved": true, "mrope_section": [24, 20, 20],
    "rope_type": "default"}, "rope_theta": 5000000, "vocab_size": 151936, "attention_bias": false
  },
  "vision_config": {
    "deepstack_visual_indexes": [5, 11, 17], "depth": 24, "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 1024, "in_channels": 3, "intermediate_size": 4096, "num_heads": 16,
    "num_position_embeddings": 2304, "out_hidden_size": 2560, "patch_size": 16,
    "spatial_merge_size": 2, "temporal_patch_size": 2
  }
})";

TEST(ModelConfig, ParsesHf457Layout) {
  auto c = parse_qwen3vl_config(kQwen3VL4BJson, "config.json");
  EXPECT_EQ(c.text.num_hidden_layers, 36);
  EXPECT_EQ(c.text.hidden_size, 2560);
  EXPECT_EQ(c.text.num_key_value_heads, 8);
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 5e6);
  EXPECT_EQ(c.text.mrope_section, (std::vector<int64_t>{24, 20, 20}));
  EXPECT_EQ(c.text.vocab_size, 151936);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.vision.deepstack_visual_indexes, (std::vector<int64_t>{5, 11, 17}));
  EXPECT_EQ(c.vision.out_hidden_size, 2560);
  EXPECT_EQ(c.image_token_id, 151655);
}

TEST(ModelConfig, ParsesHf5RopeParameters) {
  std::string j = R"({"text_config": {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "num_hidden_layers": 2, "intermediate_size": 96, "vocab_size": 200,
    "rope_parameters": {"rope_type": "default", "rope_theta": 12345.0, "mrope_section": [2, 3, 3],
    "mrope_interleaved": true}, "tie_word_embeddings": true},
    "vision_config": {"depth": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 48,
    "out_hidden_size": 64, "num_position_embeddings": 16, "deepstack_visual_indexes": [0, 1]}})";
  auto c = parse_qwen3vl_config(j, "x.json");
  EXPECT_DOUBLE_EQ(c.text.rope_theta, 12345.0);
  EXPECT_EQ(c.text.mrope_section, (std::vector<int64_t>{2, 3, 3}));
}

TEST(ModelConfig, RejectsInconsistentDimensions) {
  std::string bad = R"({"text_config": {"rope_scaling": {"mrope_section": [24, 20, 19]}}})";
  try {
    parse_qwen3vl_config(bad, "bad.json");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mrope_section"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_qwen3vl_config("{not json", "broken.json"), FormatError);
  // Zero sizes are reported by name (they used to divide by zero: SIGFPE).
  for (const auto& [json, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"text_config": {"num_attention_heads": 0}})", "num_attention_heads"},
           {R"({"vision_config": {"num_heads": 0}})", "vision_config.num_heads"},
           {R"({"vision_config": {"patch_size": 0}})", "vision_config.patch_size"},
           {R"({"vision_config": {"spatial_merge_size": 0}})", "vision_config.spatial_merge_size"}}) {
    try {
      parse_qwen3vl_config(json, "zero.json");
      ADD_FAILURE() << "no ConfigError for " << json;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_qwen3vl_config(R"({"text_config": {"hidden_size": "x"}})", "t.json"), ConfigError);
}

TEST(ModelConfig, ParameterCountFormulaMatchesBuiltModel) {
  RewardModelConfig rc;
  rc.backbone = tiny_qwen3vl_config();
  RewardModel m(rc);
  EXPECT_EQ(m->num_parameters(), expected_parameter_count(rc));
  rc.backbone.text.attention_bias = true;
  RewardModel mb(rc);
  EXPECT_EQ(mb->num_parameters(), expected_parameter_count(rc));
}

TEST(ModelConfig, Robometer4BParameterCount) {
  RewardModelConfig rc;
  rc.backbone = qwen3vl_4b_config();
  const int64_t n = expected_parameter_count(rc);
  std::printf("Robometer-4B (vocab 151674): %lld parameters (%.3f B)\n", static_cast<long long>(n), n / 1e9);
  // Qwen3-VL-4B-Instruct is published as 4.44 B parameters with vocab 151,936 (tied embeddings).
  RewardModelConfig hf = rc;
  hf.backbone.text.vocab_size = 151936;
  EXPECT_NEAR(expected_parameter_count(hf) / 1e9, 4.44, 0.01);
  EXPECT_GT(n, 4.3e9);
  EXPECT_LT(n, 4.5e9);
}
