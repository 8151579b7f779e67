// Qwen3-VL backbone dimensions (HF `Qwen3VLConfig`: text_config + vision_config + token ids),
// read from a Hugging Face config.json or built in code for the 4B model and tiny tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace robometer::model {

struct VisionConfig {
  int64_t depth = 24;
  int64_t hidden_size = 1024;
  int64_t intermediate_size = 4096;
  int64_t num_heads = 16;
  int64_t in_channels = 3;
  int64_t patch_size = 16;
  int64_t temporal_patch_size = 2;
  int64_t spatial_merge_size = 2;
  int64_t out_hidden_size = 2560;          // = text hidden size
  int64_t num_position_embeddings = 2304;  // a 48x48 learned grid, interpolated per image
  std::vector<int64_t> deepstack_visual_indexes = {5, 11, 17};
  std::string hidden_act = "gelu_pytorch_tanh";
  double rope_theta = 10000.0;  // 2-D rotary base (5.x: vision_config.rope_parameters.rope_theta)

  int64_t head_dim() const { return hidden_size / num_heads; }
  int64_t patch_dim() const { return in_channels * temporal_patch_size * patch_size * patch_size; }
};

struct TextConfig {
  int64_t vocab_size = 151936;
  int64_t hidden_size = 2560;
  int64_t intermediate_size = 9728;
  int64_t num_hidden_layers = 36;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 8;
  int64_t head_dim = 128;
  double rms_norm_eps = 1e-6;
  double rope_theta = 5000000.0;
  std::vector<int64_t> mrope_section = {24, 20, 20};  // sums to head_dim / 2
  bool mrope_interleaved = true;
  bool attention_bias = false;
  std::string hidden_act = "silu";
  int64_t pad_token_id = -1;  // -1 = none
};

struct Qwen3VLConfig {
  TextConfig text;
  VisionConfig vision;
  int64_t image_token_id = 151655;
  int64_t video_token_id = 151656;
  int64_t vision_start_token_id = 151652;
  int64_t vision_end_token_id = 151653;
  bool tie_word_embeddings = true;

  // Throws ConfigError naming the field when the dimensions are inconsistent.
  void validate() const;
};

// Parses an HF config.json (transformers 4.57 `rope_scaling`/`rope_theta` or 5.x
// `rope_parameters` layouts). Unknown fields are ignored; missing ones keep the 4B defaults.
Qwen3VLConfig load_qwen3vl_config(const std::string& config_json_path);
Qwen3VLConfig parse_qwen3vl_config(const std::string& json_text, const std::string& origin);

// Qwen/Qwen3-VL-4B-Instruct with Robometer's vocabulary (151,669 tokenizer + 5 added tokens).
Qwen3VLConfig qwen3vl_4b_config(int64_t vocab_size = 151674);

// A few-KB model with the same structure (2 vision blocks, both DeepStack taps, 2 decoder
// layers, GQA 4/2, M-RoPE sections summing to head_dim/2) for CPU tests and parity fixtures.
Qwen3VLConfig tiny_qwen3vl_config();

}  // namespace robometer::model
