#include "robometer/model/qwen3vl_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>

#include "robometer/core/error.h"

namespace robometer::model {

namespace {

using nlohmann::json;

template <class T>
void read_if(const json& j, const char* key, T& out, const std::string& origin) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  try {
    out = j.at(key).get<T>();
  } catch (const json::exception& e) {
    throw ConfigError(origin + ": field '" + key + "' has the wrong type: " + e.what());
  }
}

}  // namespace

void Qwen3VLConfig::validate() const {
  auto fail = [](const std::string& what) { throw ConfigError("Qwen3-VL config: " + what); };
  // Sizes first: the checks below divide by some of them.
  const std::pair<const char*, int64_t> sizes[] = {
      {"text_config.intermediate_size", text.intermediate_size},
      {"vision_config.depth", vision.depth},
      {"vision_config.hidden_size", vision.hidden_size},
      {"vision_config.intermediate_size", vision.intermediate_size},
      {"vision_config.num_heads", vision.num_heads},
      {"vision_config.in_channels", vision.in_channels},
      {"vision_config.patch_size", vision.patch_size},
      {"vision_config.temporal_patch_size", vision.temporal_patch_size},
      {"vision_config.spatial_merge_size", vision.spatial_merge_size},
      {"vision_config.num_position_embeddings", vision.num_position_embeddings}};
  for (const auto& [name, value] : sizes)
    if (value <= 0) fail(std::string(name) + " must be positive, got " + std::to_string(value));
  if (text.hidden_size <= 0 || text.num_hidden_layers <= 0 || text.vocab_size <= 0)
    fail("text_config hidden_size/num_hidden_layers/vocab_size must be positive");
  if (text.num_attention_heads <= 0 || text.num_key_value_heads <= 0 ||
      text.num_attention_heads % text.num_key_value_heads != 0)
    fail("text_config.num_attention_heads must be a multiple of num_key_value_heads");
  if (text.head_dim <= 0 || text.head_dim % 2 != 0) fail("text_config.head_dim must be even");
  if (text.mrope_section.size() != 3) fail("rope mrope_section must have 3 entries");
  const int64_t sec = std::accumulate(text.mrope_section.begin(), text.mrope_section.end(), 0L);
  if (sec != text.head_dim / 2)
    fail("rope mrope_section sums to " + std::to_string(sec) +
         ", expected head_dim/2 = " + std::to_string(text.head_dim / 2));
  if (!text.mrope_interleaved) fail("only interleaved M-RoPE (Qwen3-VL) is supported");
  if (text.hidden_act != "silu") fail("text_config.hidden_act '" + text.hidden_act + "' unsupported");
  if (vision.hidden_size % vision.num_heads != 0) fail("vision hidden_size % num_heads != 0");
  if (!(vision.rope_theta > 0)) fail("vision rope_theta must be positive");
  if (vision.head_dim() % 4 != 0) fail("vision head_dim must be a multiple of 4 (2-D rotary)");
  if (vision.hidden_act != "gelu_pytorch_tanh")
    fail("vision_config.hidden_act '" + vision.hidden_act + "' unsupported");
  if (vision.out_hidden_size != text.hidden_size)
    fail("vision_config.out_hidden_size (" + std::to_string(vision.out_hidden_size) +
         ") != text hidden_size (" + std::to_string(text.hidden_size) + ")");
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(double(vision.num_position_embeddings))));
  if (side * side != vision.num_position_embeddings)
    fail("vision_config.num_position_embeddings must be a square");
  for (auto i : vision.deepstack_visual_indexes)
    if (i < 0 || i >= vision.depth) fail("deepstack_visual_indexes entry out of range: " + std::to_string(i));
  if (static_cast<int64_t>(vision.deepstack_visual_indexes.size()) > text.num_hidden_layers)
    fail("more DeepStack taps than decoder layers");
}

Qwen3VLConfig parse_qwen3vl_config(const std::string& json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw FormatError(origin, std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw FormatError(origin, "config is not a JSON object");
  Qwen3VLConfig c;
  read_if(j, "image_token_id", c.image_token_id, origin);
  read_if(j, "video_token_id", c.video_token_id, origin);
  read_if(j, "vision_start_token_id", c.vision_start_token_id, origin);
  read_if(j, "vision_end_token_id", c.vision_end_token_id, origin);
  read_if(j, "tie_word_embeddings", c.tie_word_embeddings, origin);

  if (j.contains("text_config")) {
    const json& t = j.at("text_config");
    const std::string o = origin + ": text_config";
    read_if(t, "vocab_size", c.text.vocab_size, o);
    read_if(t, "hidden_size", c.text.hidden_size, o);
    read_if(t, "intermediate_size", c.text.intermediate_size, o);
    read_if(t, "num_hidden_layers", c.text.num_hidden_layers, o);
    read_if(t, "num_attention_heads", c.text.num_attention_heads, o);
    read_if(t, "num_key_value_heads", c.text.num_key_value_heads, o);
    // HF's default; a zero head count is left for validate() to report (not a SIGFPE here).
    c.text.head_dim = c.text.num_attention_heads > 0 ? c.text.hidden_size / c.text.num_attention_heads : 0;
    read_if(t, "head_dim", c.text.head_dim, o);
    read_if(t, "rms_norm_eps", c.text.rms_norm_eps, o);
    read_if(t, "rope_theta", c.text.rope_theta, o);
    read_if(t, "attention_bias", c.text.attention_bias, o);
    read_if(t, "hidden_act", c.text.hidden_act, o);
    read_if(t, "pad_token_id", c.text.pad_token_id, o);
    // 4.57 writes rope_scaling {mrope_section, mrope_interleaved, rope_type}; 5.x writes
    // rope_parameters {rope_theta, mrope_section, ...}.
    for (const char* key : {"rope_scaling", "rope_parameters"}) {
      if (!t.contains(key) || !t.at(key).is_object()) continue;
      const json& r = t.at(key);
      read_if(r, "mrope_section", c.text.mrope_section, o + "." + key);
      read_if(r, "mrope_interleaved", c.text.mrope_interleaved, o + "." + key);
      read_if(r, "rope_theta", c.text.rope_theta, o + "." + key);
      std::string type = "default";
      read_if(r, "rope_type", type, o + "." + key);
      if (type != "default" && type != "mrope")
        throw ConfigError(o + "." + key + ".rope_type '" + type + "' is not supported");
    }
    // Qwen3-VL always interleaves (HF ignores the flag); older configs omit it.
    if (!t.contains("rope_scaling") || !t.at("rope_scaling").contains("mrope_interleaved"))
      c.text.mrope_interleaved = true;
    // tie_word_embeddings may live in text_config (5.x) or at the top level (4.57).
    read_if(t, "tie_word_embeddings", c.tie_word_embeddings, o);
  }
  if (j.contains("vision_config")) {
    const json& v = j.at("vision_config");
    const std::string o = origin + ": vision_config";
    read_if(v, "depth", c.vision.depth, o);
    read_if(v, "hidden_size", c.vision.hidden_size, o);
    read_if(v, "intermediate_size", c.vision.intermediate_size, o);
    read_if(v, "num_heads", c.vision.num_heads, o);
    read_if(v, "in_channels", c.vision.in_channels, o);
    read_if(v, "patch_size", c.vision.patch_size, o);
    read_if(v, "temporal_patch_size", c.vision.temporal_patch_size, o);
    read_if(v, "spatial_merge_size", c.vision.spatial_merge_size, o);
    read_if(v, "out_hidden_size", c.vision.out_hidden_size, o);
    read_if(v, "num_position_embeddings", c.vision.num_position_embeddings, o);
    read_if(v, "deepstack_visual_indexes", c.vision.deepstack_visual_indexes, o);
    read_if(v, "hidden_act", c.vision.hidden_act, o);
    if (v.contains("rope_parameters") && v.at("rope_parameters").is_object())
      read_if(v.at("rope_parameters"), "rope_theta", c.vision.rope_theta, o + ".rope_parameters");
  }
  try {
    c.validate();
  } catch (const ConfigError& e) {
    throw ConfigError(origin + ": " + e.what());
  }
  return c;
}

Qwen3VLConfig load_qwen3vl_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path, "cannot open config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_qwen3vl_config(ss.str(), path);
}

Qwen3VLConfig qwen3vl_4b_config(int64_t vocab_size) {
  Qwen3VLConfig c;  // the defaults above are the 4B values
  c.text.vocab_size = vocab_size;
  c.validate();
  return c;
}

Qwen3VLConfig tiny_qwen3vl_config() {
  Qwen3VLConfig c;
  c.text.vocab_size = 160;
  c.text.hidden_size = 64;
  c.text.intermediate_size = 96;
  c.text.num_hidden_layers = 3;
  c.text.num_attention_heads = 4;
  c.text.num_key_value_heads = 2;
  c.text.head_dim = 16;
  c.text.mrope_section = {2, 3, 3};
  c.text.rope_theta = 10000.0;
  c.vision.depth = 2;
  c.vision.hidden_size = 32;
  c.vision.intermediate_size = 48;
  c.vision.num_heads = 2;
  c.vision.out_hidden_size = 64;
  c.vision.num_position_embeddings = 16;  // 4x4 grid: interpolation is exercised
  c.vision.deepstack_visual_indexes = {0, 1};
  // Special ids inside the tiny vocabulary (same roles as the real ones).
  c.vision_start_token_id = 150;
  c.vision_end_token_id = 151;
  c.image_token_id = 152;
  c.video_token_id = 153;
  c.validate();
  return c;
}

}  // namespace robometer::model
