#include "robometer/model/factory.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <tuple>

#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/io/safetensors.h"
#include "robometer/model/lora.h"
#include "robometer/model/weights.h"

namespace robometer::model {
namespace fs = std::filesystem;

namespace {

bool has_weights(const fs::path& dir) {
  return fs::exists(dir / "model.safetensors") || fs::exists(dir / "model.safetensors.index.json");
}

std::string regex_escape(const std::string& s) {
  static const std::regex special(R"([.^$|()\[\]{}*+?\\])");
  return std::regex_replace(s, special, R"(\$&)");
}

// The tokenizer: explicit path, else one shipped next to the weights, else the npm copy.
fs::path find_tokenizer(const config::ModelConfig& cfg, const fs::path& weights_dir) {
  if (!cfg.tokenizer.empty()) {
    if (!fs::exists(cfg.tokenizer))
      throw ConfigError("model.tokenizer: file '" + cfg.tokenizer + "' does not exist");
    return cfg.tokenizer;
  }
  if (!weights_dir.empty() && fs::exists(weights_dir / "tokenizer.json"))
    return weights_dir / "tokenizer.json";
  fs::path p = locate_tokenizer_json();
  if (p.empty())
    throw ConfigError(
        "no tokenizer.json: set model.tokenizer, put tokenizer.json next to the weights, set "
        "ROBOMETER_TOKENIZER, or run scripts/deps-node (installs the Qwen3 tokenizer)");
  return p;
}

// The optional "robometer" object of a config.json sets the heads: {"progress_bins": 10,
// "head_dropout": 0.1}. Absent (an HF Qwen3-VL config): the Robometer-4B defaults.
void read_head_config(const std::string& text, const fs::path& config_json, RewardModelConfig& rc) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("robometer")) return;
  const auto& r = j["robometer"];
  const std::string where = config_json.string() + ": robometer.";
  if (!r.is_object()) throw ConfigError(config_json.string() + ": 'robometer' must be an object");
  for (const auto& [key, value] : r.items()) {
    if (key == "progress_bins") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1)
        throw ConfigError(where + "progress_bins must be an integer >= 1, got " + value.dump());
      rc.progress_bins = value.get<int64_t>();
    } else if (key == "head_dropout") {
      if (!value.is_number() || value.get<double>() < 0 || value.get<double>() >= 1)
        throw ConfigError(where + "head_dropout must be a number in [0, 1), got " + value.dump());
      rc.head_dropout = value.get<double>();
    } else {
      throw ConfigError(where + key + ": unknown key (known: progress_bins, head_dropout)");
    }
  }
}

}  // namespace

std::string resolve_checkpoint_dir(const std::string& path) {
  fs::path p(path);
  auto follow = [](const fs::path& latest) {
    std::ifstream f(latest);
    std::string name;
    std::getline(f, name);
    if (name.empty()) throw Error(latest.string() + ": empty checkpoint pointer");
    return latest.parent_path() / name;
  };
  if (fs::is_regular_file(p) && p.filename() == "latest")
    p = follow(p);
  else if (fs::is_directory(p) && !has_weights(p) && fs::exists(p / "checkpoints" / "latest"))
    p = follow(p / "checkpoints" / "latest");
  if (!fs::is_directory(p)) throw Error(path + ": no such checkpoint directory");
  if (!has_weights(p))
    throw Error(p.string() + ": no model.safetensors or model.safetensors.index.json (not a checkpoint)");
  return p.string();
}

config::RunConfig run_config_of(const std::string& checkpoint_dir_or_run) {
  const std::string checkpoint_dir = resolve_checkpoint_dir(checkpoint_dir_or_run);
  const fs::path p = fs::path(checkpoint_dir) / "config.yaml";
  if (!fs::exists(p)) throw Error(checkpoint_dir + ": no config.yaml (not a robometer checkpoint or export)");
  // Dataset paths of the training run may be gone, and its relative paths were relative to
  // where it ran: the checkpoint carries its own config.json, so only the model shape matters.
  std::vector<std::string> ov = {"data.train=[]", "data.eval=[]"};
  if (fs::exists(fs::path(checkpoint_dir) / "config.json")) {
    ov.push_back("model.config_json=");
    ov.push_back("model.pretrained=");
  }
  return config::load_run_config(p.string(), ov).config;
}

ModelBundle build_model(const config::ModelConfig& cfg, at::Device device, uint64_t seed,
                        const std::string& weights_dir_override) {
  ModelBundle b;
  const std::string wd = !weights_dir_override.empty() ? weights_dir_override : cfg.pretrained;
  const fs::path weights_dir = wd.empty() ? fs::path() : fs::path(resolve_checkpoint_dir(wd));
  if (!weights_dir.empty() && !has_weights(weights_dir))
    throw ConfigError("model weights: '" + weights_dir.string() +
                      "' has neither model.safetensors nor model.safetensors.index.json");

  // Backbone config: explicit config_json, else the one next to the weights.
  fs::path config_json = cfg.config_json;
  if (config_json.empty() && !weights_dir.empty() && fs::exists(weights_dir / "config.json"))
    config_json = weights_dir / "config.json";
  if (config_json.empty())
    throw ConfigError("model.config_json is empty and no config.json was found next to the weights");
  b.config_json_path = config_json.string();
  // Read once: checkpoints and exports carry this text, so a file edited or removed during a
  // run cannot put another architecture (or nothing) next to the weights.
  {
    std::ifstream in(config_json, std::ios::binary);
    if (!in) throw ConfigError(config_json.string() + ": cannot open the model config.json");
    std::ostringstream ss;
    ss << in.rdbuf();
    b.config_json_text = ss.str();
  }
  b.config.backbone = parse_qwen3vl_config(b.config_json_text, config_json.string());
  read_head_config(b.config_json_text, config_json, b.config);
  b.config.checkpointing = CheckpointPlan::parse(cfg.activation_checkpointing);
  b.config.train_vision = true;  // model.freeze alone decides what stays frozen

  // Tokenizer with Robometer's tokens; the embedding table must cover them.
  const fs::path tok = find_tokenizer(cfg, weights_dir);
  b.tokenizer_path = tok.string();
  b.tokenizer = std::make_shared<Tokenizer>(Tokenizer::robometer_from_file(tok));
  // The vision placeholders the processor writes are the ids the model looks for.
  for (const auto& [token, key, want] :
       {std::tuple<const char*, const char*, int64_t>{"<|image_pad|>", "image_token_id",
                                                      b.config.backbone.image_token_id},
        {"<|vision_start|>", "vision_start_token_id", b.config.backbone.vision_start_token_id},
        {"<|vision_end|>", "vision_end_token_id", b.config.backbone.vision_end_token_id}}) {
    const auto id = b.tokenizer->token_to_id(token);
    if (id && *id != want)
      throw ConfigError(tok.string() + ": " + token + " is id " + std::to_string(*id) + " but " +
                        config_json.string() + " says " + key + " = " + std::to_string(want));
  }
  if (b.tokenizer->vocab_size() > b.config.backbone.text.vocab_size)
    throw ConfigError(config_json.string() + ": text_config.vocab_size " +
                      std::to_string(b.config.backbone.text.vocab_size) +
                      " is smaller than the tokenizer's " + std::to_string(b.tokenizer->vocab_size()) +
                      " ids (" + tok.string() + ")");
  ProcessorOptions popts;
  if (cfg.min_pixels > 0) popts.min_pixels = cfg.min_pixels;
  if (cfg.max_pixels > 0) popts.max_pixels = cfg.max_pixels;
  popts.patch_size = b.config.backbone.vision.patch_size;
  popts.merge_size = b.config.backbone.vision.spatial_merge_size;
  popts.temporal_patch_size = b.config.backbone.vision.temporal_patch_size;
  b.processor = std::make_shared<Processor>(*b.tokenizer, popts);

  // Same random init on every rank (rank 0 broadcasts anyway).
  torch::manual_seed(seed);
  const at::ScalarType dtype = cfg.dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  b.model = make_reward_model(b.config, dtype);

  LoraConfig lc;
  lc.r = cfg.lora.r;
  lc.alpha = cfg.lora.alpha;
  lc.dropout = cfg.lora.dropout;
  lc.targets = cfg.lora.targets;
  bool lora_attached = false;
  if (!weights_dir.empty()) {
    io::SafetensorsSet weights(weights_dir.string());
    // A LoRA training checkpoint holds the adapters: attach them before loading.
    bool has_lora = false;
    for (const auto& n : weights.names())
      if (n.find(".lora_A.") != std::string::npos) {
        has_lora = true;
        break;
      }
    if (has_lora && cfg.lora.enabled) {
      apply_lora(*b.model, lc, /*freeze_base=*/true);
      lora_attached = true;
    }
    LoadOptions lo;
    // A Robometer checkpoint has the heads; an HF Qwen3-VL dir does not (heads keep their init)
    // and its 151,936-row embedding is resized to the tokenizer's vocabulary.
    const bool has_heads = weights.contains("preference_head.0.weight");
    lo.allow_missing_heads = !has_heads;
    lo.resize_embeddings = true;
    lo.source = weights_dir.string();
    const auto report = load_weights(*b.model, weights, lo);
    spdlog::info("loaded {} tensors from {}{}", report.loaded.size(), weights_dir.string(),
                 has_heads ? "" : " (backbone only: heads randomly initialised)");
    if (report.resized_from >= 0)
      spdlog::info("embedding resized {} -> {} rows", report.resized_from, b.config.backbone.text.vocab_size);
  }

  for (const auto& prefix : cfg.freeze) {
    const auto n = freeze_matching(*b.model, "^" + regex_escape(prefix));
    spdlog::debug("froze {} tensors under '{}'", n, prefix);
  }
  if (cfg.lora.enabled) {
    // apply_lora freezes every non-adapter parameter (PEFT's default).
    if (!lora_attached) apply_lora(*b.model, lc, /*freeze_base=*/true);
    // Robometer's LoRA recipe trains the three heads too (saved as custom_heads.safetensors).
    unfreeze_matching(*b.model, "^(progress_head|success_head|preference_head)\\.");
    spdlog::info("LoRA r={} alpha={}{}", lc.r, lc.alpha,
                 lora_attached ? " (adapters loaded from the checkpoint)" : " (fresh adapters)");
  }
  b.model->to(device);
  return b;
}

}  // namespace robometer::model
