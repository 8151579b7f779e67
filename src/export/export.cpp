#include "robometer/export/export.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/core/remove_tree.h"
#include "robometer/export/load.h"
#include "robometer/io/atomic_dir.h"
#include "robometer/io/atomic_file.h"
#include "robometer/io/safetensors.h"
#include "robometer/model/factory.h"
#include "robometer/model/lora.h"
#include "robometer/model/tokenizer.h"
#include "robometer/model/weights.h"

namespace robometer::eval {
namespace fs = std::filesystem;
using nlohmann::json;

int64_t parse_size(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) throw ConfigError("size '" + s + "': expected e.g. 5GB, 500MB or a byte count");
  const double v = std::stod(s.substr(0, i));
  std::string unit = s.substr(i);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mul = 1;
  if (unit.empty() || unit == "B")
    mul = 1;
  else if (unit == "KB")
    mul = 1e3;
  else if (unit == "MB")
    mul = 1e6;
  else if (unit == "GB")
    mul = 1e9;
  else if (unit == "KIB")
    mul = 1024.0;
  else if (unit == "MIB")
    mul = 1024.0 * 1024;
  else if (unit == "GIB")
    mul = 1024.0 * 1024 * 1024;
  else
    throw ConfigError("size '" + s + "': unknown unit '" + unit + "'");
  return static_cast<int64_t>(v * mul);
}

json robometer_experiment_config(const config::RunConfig& cfg, const ExportOptions& opts) {
  // Field names are Robometer's (robometer/configs/experiment_configs.py, config.yaml).
  const bool lora = cfg.model.lora.enabled && !opts.merge_lora;
  const bool vision_frozen =
      std::find(cfg.model.freeze.begin(), cfg.model.freeze.end(), "model.visual.") != cfg.model.freeze.end();
  json j;
  j["trainer_cls"] = "rbm_heads";
  j["model"] = {{"model_type", "default"},
                {"base_model_id", opts.base_model_id},
                {"torch_dtype", opts.dtype == "bf16" ? "bfloat16" : "float32"},
                {"trust_remote_code", true},
                {"train_vision_encoder", !vision_frozen},
                {"train_language_model", !cfg.model.lora.enabled},
                {"train_progress_head", true},
                {"train_preference_head", true},
                {"train_success_head", true},
                {"average_temporal_patches", false},
                {"use_per_frame_progress_token", true},
                {"frame_pooling", "mean"},
                {"frame_pooling_attn_temperature", 1.0},
                {"use_multi_image", true},
                {"use_peft", lora},
                {"peft_vision_encoder", false},
                {"quantization", false},
                // The load path the adapter keys are written for (ExportOptions::peft_base).
                {"use_unsloth", lora && opts.peft_base == "for-conditional-generation"},
                {"progress_loss_type", "discrete"},
                {"progress_discrete_bins", 10}};
  j["peft"] = {{"r", cfg.model.lora.r},
               {"lora_alpha", cfg.model.lora.alpha},
               {"target_modules", cfg.model.lora.targets},
               {"lora_dropout", cfg.model.lora.dropout},
               {"bias", "none"}};
  j["data"] = {{"max_frames", cfg.data.frames_per_trajectory},
               {"max_frames_after_preprocessing", cfg.data.max_stored_frames},
               {"use_multi_image", true},
               {"use_per_frame_progress_token", true},
               {"progress_pred_type", "absolute_first_frame"},
               {"progress_loss_type", "discrete"},
               {"progress_discrete_bins", 10},
               {"traj_same_source_prob", cfg.data.different_task_same_source_prob},
               {"predict_last_frame_partial_progress", cfg.data.predict_last_frame_partial_progress},
               {"min_success", 0.5},
               {"max_success", 1.0},
               {"preference_strategy_ratio",
                {cfg.data.strategy_ratios.rewind, cfg.data.strategy_ratios.suboptimal,
                 cfg.data.strategy_ratios.different_task, cfg.data.strategy_ratios.reverse}},
               {"seed", cfg.train.seed}};
  j["loss"] = {{"progress_loss_type", "discrete"},
               {"progress_discrete_bins", 10},
               {"predict_last_frame_progress", false}};
  j["training"] = {{"predict_pref_progress", true},
                   {"learning_rate", cfg.train.lr},
                   {"max_steps", cfg.train.max_steps},
                   {"per_device_train_batch_size", cfg.train.batch_size},
                   {"bf16", cfg.train.compute_dtype != "float32"}};
  return j;
}

namespace {

bool is_head(const std::string& k) {
  return k.rfind("progress_head.", 0) == 0 || k.rfind("success_head.", 0) == 0 ||
         k.rfind("preference_head.", 0) == 0 || k.rfind("frame_pool_attn.", 0) == 0;
}

void write_json(const fs::path& p, const json& j) { io::write_file_atomic(p.string(), j.dump(2) + "\n"); }

json added_token_entry(int64_t id, const std::string& content) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

// tokenizer.json with the five tokens in added_tokens, tokenizer_config.json and
// special_tokens_map.json (what AutoTokenizer / AutoProcessor read).
void write_tokenizer_files(const model::ModelBundle& b, const fs::path& out) {
  std::ifstream in(b.tokenizer_path);
  json tok = json::parse(in);
  json& added = tok["added_tokens"];
  std::set<std::string> present;
  for (const auto& t : added) present.insert(t.value("content", ""));
  json added_decoder = json::object();
  for (const auto& t : model::kRobometerSpecialTokens) {
    const auto id = b.tokenizer->token_to_id(t);
    if (!id) throw Error("export: tokenizer has no id for " + t);
    if (!present.count(t)) added.push_back(added_token_entry(*id, t));
  }
  for (const auto& t : added) {
    json e = t;
    const std::string id = std::to_string(e["id"].get<int64_t>());
    e.erase("id");
    added_decoder[id] = e;
  }
  write_json(out / "tokenizer.json", tok);

  json cfg = json::object();
  const fs::path orig_cfg = fs::path(b.tokenizer_path).parent_path() / "tokenizer_config.json";
  if (fs::exists(orig_cfg)) {
    std::ifstream cin(orig_cfg);
    cfg = json::parse(cin);
  } else {
    cfg = {{"tokenizer_class", "Qwen2Tokenizer"}, {"eos_token", "<|im_end|>"},
           {"pad_token", "<|endoftext|>"},        {"add_bos_token", false},
           {"model_max_length", 262144},          {"clean_up_tokenization_spaces", false},
           {"split_special_tokens", false}};
  }
  cfg["added_tokens_decoder"] = added_decoder;
  json specials = cfg.value("additional_special_tokens", json::array());
  for (const auto& t : model::kRobometerSpecialTokens)
    if (std::find(specials.begin(), specials.end(), t) == specials.end()) specials.push_back(t);
  cfg["additional_special_tokens"] = specials;
  write_json(out / "tokenizer_config.json", cfg);
  write_json(out / "special_tokens_map.json", {{"additional_special_tokens", specials},
                                               {"eos_token", cfg.value("eos_token", "<|im_end|>")},
                                               {"pad_token", cfg.value("pad_token", "<|endoftext|>")}});
}

}  // namespace

namespace {

bool non_empty_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec) && fs::directory_iterator(p, ec) != fs::directory_iterator();
}

// Moves the finished staging directory to `final_dir`, replacing what is there whole.
void publish(const fs::path& staging, const fs::path& final_dir) {
  const fs::path old = io::swap_directory_into_place(
      staging, final_dir,
      final_dir.parent_path() / ("." + final_dir.filename().string() + ".old-" + std::to_string(::getpid())));
  std::error_code ec;
  if (!old.empty()) remove_tree(old.string(), ec);
  if (ec) spdlog::warn("export: cannot remove the previous contents in {}: {}", old.string(), ec.message());
}

}  // namespace

json export_model(const std::string& checkpoint_dir, const std::string& out_dir, const ExportOptions& opts) {
  if (opts.dtype != "fp32" && opts.dtype != "bf16") throw ConfigError("--dtype: expected fp32 or bf16");
  if (opts.peft_base != "model" && opts.peft_base != "for-conditional-generation")
    throw ConfigError("--peft-base: expected model or for-conditional-generation, got '" + opts.peft_base +
                      "'");
  // The directory the weights really come from (a run dir or `latest` resolves to a step).
  const fs::path source = model::resolve_checkpoint_dir(checkpoint_dir);
  const fs::path final_dir = fs::weakly_canonical(out_dir);
  std::error_code ec;
  // --out must not be, or hold, the checkpoint (a run dir, say): replacing it would delete it.
  const fs::path src_canon = fs::weakly_canonical(source);
  const auto rel = src_canon.lexically_relative(final_dir);
  if (!rel.empty() && *rel.begin() != "..")
    throw ConfigError("export: --out " + out_dir + " is or contains the checkpoint being exported (" +
                      source.string() + ")");
  if (non_empty_dir(final_dir) && !opts.force)
    throw ConfigError("export: --out " + out_dir + " is not empty; pass --force to replace its contents");
  if (fs::exists(final_dir) && !fs::is_directory(final_dir))
    throw ConfigError("export: --out " + out_dir + " exists and is not a directory");
  LoadedModel m = load_checkpoint(checkpoint_dir, at::kCPU);
  auto& model = *m.bundle.model;
  const bool lora = m.config.model.lora.enabled;
  if (lora && opts.merge_lora) model::merge_lora(model);
  // Everything is written into a sibling staging directory and moved into place at the end:
  // an interrupted export leaves `--out` as it was, never a partial directory that loads.
  fs::create_directories(final_dir.parent_path());
  const fs::path out =
      final_dir.parent_path() / ("." + final_dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
  remove_tree(out.string(), ec);
  fs::create_directories(out);
  struct Cleanup {
    fs::path dir;
    bool done = false;
    Cleanup(const Cleanup&) = delete;  // the directory is removed once
    Cleanup& operator=(const Cleanup&) = delete;
    ~Cleanup() {
      if (done) return;
      std::error_code e;
      remove_tree(dir.string(), e);
    }
  } cleanup{out};

  model::StateDictOptions so;
  so.keep_dtype = false;
  so.dtype = opts.dtype == "bf16" ? at::kBFloat16 : at::kFloat;
  so.include_lora = false;  // merged into the weights, or exported as a PEFT adapter below
  const io::NamedTensors weights = model::state_dict(model, so);
  const io::Metadata meta{{"format", "pt"}, {"producer", "robometer.cpp export"}};
  io::save_sharded_safetensors(out.string(), weights, opts.shard_bytes, "model", meta);
  int64_t bytes = 0;
  for (const auto& [k, t] : weights) bytes += static_cast<int64_t>(t.nbytes());

  io::write_file_atomic((out / "config.json").string(), m.bundle.config_json_text);
  write_tokenizer_files(m.bundle, out);
  io::write_file_atomic((out / "config.yaml").string(),
                        "# Robometer ExperimentConfig (JSON is YAML), written by robometer.cpp export\n" +
                            robometer_experiment_config(m.config, opts).dump(2) + "\n");
  // Our own run config, so that eval/score/serve/export load the directory back. After a
  // merge the adapters live in the weights: the reloaded model has none.
  config::RunConfig ours = m.config;
  ours.model.config_json.clear();
  ours.model.pretrained.clear();
  ours.model.tokenizer.clear();
  ours.model.dtype = opts.dtype == "bf16" ? "bfloat16" : "float32";
  if (opts.merge_lora) ours.model.lora.enabled = false;
  io::write_file_atomic((out / "robometer_run.yaml").string(), config::to_yaml(ours));

  json files = json::array({"config.json", "config.yaml", "robometer_run.yaml", "tokenizer.json",
                            "tokenizer_config.json", "special_tokens_map.json"});
  if (lora && !opts.merge_lora) {
    model::StateDictOptions ao;
    ao.trainable_only = false;
    ao.include_lora = true;
    ao.peft_names = true;
    ao.peft_base = opts.peft_base == "for-conditional-generation" ? model::PeftBase::ForConditionalGeneration
                                                                  : model::PeftBase::Model;
    ao.keep_dtype = false;
    ao.dtype = so.dtype;
    io::NamedTensors adapter, heads;
    for (auto& [k, t] : model::state_dict(model, ao)) {
      if (k.find(".lora_A.") != std::string::npos || k.find(".lora_B.") != std::string::npos)
        adapter.emplace_back(k, t);
      else if (is_head(k))
        heads.emplace_back(k, t);
    }
    io::save_safetensors((out / "adapter_model.safetensors").string(), adapter, meta);
    io::save_safetensors((out / "custom_heads.safetensors").string(), heads, meta);
    const auto& lc = m.config.model.lora;
    write_json(out / "adapter_config.json", {{"peft_type", "LORA"},
                                             {"task_type", nullptr},
                                             {"base_model_name_or_path", opts.base_model_id},
                                             {"r", lc.r},
                                             {"lora_alpha", lc.alpha},
                                             {"lora_dropout", lc.dropout},
                                             {"target_modules", lc.targets},
                                             {"bias", "none"},
                                             {"fan_in_fan_out", false},
                                             {"inference_mode", true},
                                             {"init_lora_weights", true},
                                             {"use_rslora", false},
                                             {"use_dora", false},
                                             {"modules_to_save", nullptr},
                                             {"layers_to_transform", nullptr},
                                             {"layers_pattern", nullptr},
                                             {"rank_pattern", json::object()},
                                             {"alpha_pattern", json::object()},
                                             {"revision", nullptr}});
    for (const char* f : {"adapter_model.safetensors", "adapter_config.json", "custom_heads.safetensors"})
      files.push_back(f);
  }
  publish(out, final_dir);
  cleanup.done = true;
  spdlog::info("exported {} tensors ({:.1f} MB, {}) to {}", weights.size(), bytes / 1e6, opts.dtype, out_dir);
  return {{"out", out_dir}, {"tensors", weights.size()},         {"bytes", bytes},
          {"lora", lora},   {"merged", lora && opts.merge_lora}, {"dtype", opts.dtype},
          {"files", files}};
}

}  // namespace robometer::eval
