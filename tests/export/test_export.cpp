#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "eval/eval_test_util.h"
#include "robometer/core/error.h"
#include "robometer/eval/scorer.h"
#include "robometer/export/export.h"
#include "robometer/export/load.h"

namespace robometer::eval {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

json read_json(const fs::path& p) {
  std::ifstream f(p);
  return json::parse(f);
}

// config.yaml is JSON (valid YAML) after one '#' comment line.
json read_json_yaml(const fs::path& p) {
  std::ifstream f(p);
  std::string line, body;
  while (std::getline(f, line))
    if (line.rfind('#', 0) != 0) body += line + "\n";
  return json::parse(body);
}

std::vector<double> outputs(model::ModelBundle& b) {
  Scorer s(b, {4, 4});
  return s.linspace(test::test_frames(6), "put the block in the bowl").progress;
}

TEST(Export, ParseSize) {
  EXPECT_EQ(parse_size("5GB"), 5000000000LL);
  EXPECT_EQ(parse_size("200MB"), 200000000LL);
  EXPECT_EQ(parse_size("1KiB"), 1024);
  EXPECT_EQ(parse_size("123"), 123);
  EXPECT_THROW(parse_size("five"), ConfigError);
  EXPECT_THROW(parse_size("5XB"), ConfigError);
}

TEST(Export, Fp32RoundTripIsBitExactAndShardsFollowTheLimit) {
  test::TempDir tmp;
  auto orig = test::write_tiny_checkpoint(tmp / "ckpt");
  ExportOptions o;
  o.shard_bytes = parse_size("2MB");
  export_model((tmp / "ckpt").string(), (tmp / "out").string(), o);
  const fs::path out = tmp / "out";
  ASSERT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  const auto index = read_json(out / "model.safetensors.index.json");
  std::set<std::string> shards;
  for (auto& [k, v] : index["weight_map"].items()) shards.insert(v.get<std::string>());
  EXPECT_GT(shards.size(), 2u);
  for (const auto& s : shards) {
    // Only a tensor larger than the limit (the embedding) gets a shard above it.
    io::SafetensorsFile f((out / s).string());
    if (f.names().size() > 1) {
      EXPECT_LE(fs::file_size(out / s), 2'000'000u + 100'000u) << s;
    }
  }
  for (const char* f : {"config.json", "config.yaml", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json", "robometer_run.yaml"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_FALSE(fs::exists(out / "adapter_model.safetensors"));

  // The five added tokens are in tokenizer.json's added_tokens, with the tokenizer's ids.
  const auto tok = read_json(out / "tokenizer.json");
  for (const auto& t : model::kRobometerSpecialTokens) {
    bool found = false;
    for (const auto& a : tok["added_tokens"])
      if (a["content"] == t) {
        found = true;
        EXPECT_EQ(a["id"].get<int64_t>(), *orig.tokenizer->token_to_id(t));
        EXPECT_TRUE(a["special"].get<bool>());
      }
    EXPECT_TRUE(found) << t;
  }
  const auto tcfg = read_json(out / "tokenizer_config.json");
  EXPECT_TRUE(
      tcfg["added_tokens_decoder"].contains(std::to_string(*orig.tokenizer->token_to_id("<|prog_token|>"))));

  // Robometer's config.yaml (JSON is YAML) has the fields its loader reads.
  std::ifstream yf(out / "config.yaml");
  std::string line, body;
  while (std::getline(yf, line))
    if (line.rfind("#", 0) != 0) body += line + "\n";
  const auto rcfg = json::parse(body);
  EXPECT_EQ(rcfg["model"]["progress_discrete_bins"], 10);
  EXPECT_EQ(rcfg["model"]["base_model_id"], "Qwen/Qwen3-VL-4B-Instruct");
  EXPECT_EQ(rcfg["model"]["use_peft"], false);
  EXPECT_EQ(rcfg["training"]["predict_pref_progress"], true);

  // Re-import: every tensor bit-exact.
  auto back = load_checkpoint(out.string(), at::kCPU);
  const auto a = model::state_dict(*orig.model), b = model::state_dict(*back.bundle.model);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(at::equal(a[i].second, b[i].second)) << a[i].first;
  }
  // And as model.pretrained of a new run (factory.cpp's path).
  auto cfg = test::tiny_run_config();
  cfg.model.config_json.clear();
  cfg.model.pretrained = out.string();
  auto fresh = model::build_model(cfg.model, at::kCPU, 999);
  const auto c = model::state_dict(*fresh.model);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i].second, c[i].second)) << a[i].first;
}

TEST(Export, Bf16RoundsEveryFloatTensor) {
  test::TempDir tmp;
  auto orig = test::write_tiny_checkpoint(tmp / "ckpt");
  ExportOptions o;
  o.dtype = "bf16";
  o.shard_bytes = 0;
  export_model((tmp / "ckpt").string(), (tmp / "out").string(), o);
  io::SafetensorsSet set((tmp / "out").string());
  for (const auto& [k, t] : model::state_dict(*orig.model)) {
    ASSERT_EQ(set.dtype(k), at::kBFloat16) << k;
    EXPECT_TRUE(at::equal(set.get(k), t.to(at::kBFloat16))) << k;
  }
  EXPECT_THROW(
      {
        ExportOptions bad;
        bad.dtype = "fp8";
        export_model((tmp / "ckpt").string(), (tmp / "o2").string(), bad);
      },
      ConfigError);
}

// --out is never the checkpoint or a directory holding it; a non-empty --out needs --force and
// is then replaced whole (no stale adapter files from an earlier export survive); nothing of
// the staging directory is left next to it.
TEST(Export, RefusesToOverwriteAndReplacesWholeWithForce) {
  test::TempDir tmp;
  test::write_tiny_checkpoint(tmp / "ckpt");
  ExportOptions o;
  o.shard_bytes = 0;
  robometer::test::expect_throw_contains(
      [&] { export_model((tmp / "ckpt").string(), (tmp / "ckpt").string(), o); },
      {"is or contains the checkpoint"});
  robometer::test::expect_throw_contains(
      [&] { export_model((tmp / "ckpt").string(), tmp.path().string(), o); },
      {"is or contains the checkpoint"});
  fs::create_directories(tmp / "out");
  std::ofstream(tmp / "out" / "adapter_model.safetensors") << "stale";
  robometer::test::expect_throw_contains(
      [&] { export_model((tmp / "ckpt").string(), (tmp / "out").string(), o); }, {"not empty", "--force"});
  EXPECT_TRUE(fs::exists(tmp / "out" / "adapter_model.safetensors"));  // untouched
  o.force = true;
  export_model((tmp / "ckpt").string(), (tmp / "out").string(), o);
  EXPECT_FALSE(fs::exists(tmp / "out" / "adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "model.safetensors"));
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(tmp.path())) entries.push_back(e.path().filename().string());
  std::sort(entries.begin(), entries.end());
  EXPECT_EQ(entries, (std::vector<std::string>{"ckpt", "out"}));
}

TEST(Export, LoraAdapterInPeftFormatAndMergedExportAgree) {
  test::TempDir tmp;
  auto orig = test::write_tiny_checkpoint(tmp / "ckpt", /*lora=*/true);
  const auto ref = outputs(orig);

  ExportOptions o;
  o.shard_bytes = 0;
  export_model((tmp / "ckpt").string(), (tmp / "peft").string(), o);
  const fs::path peft = tmp / "peft";
  ASSERT_TRUE(fs::exists(peft / "adapter_model.safetensors"));
  const auto acfg = read_json(peft / "adapter_config.json");
  EXPECT_EQ(acfg["peft_type"], "LORA");
  EXPECT_EQ(acfg["r"], 4);
  EXPECT_EQ(acfg["lora_alpha"], 8.0);
  EXPECT_EQ(acfg["bias"], "none");
  EXPECT_TRUE(acfg.contains("target_modules") && acfg.contains("lora_dropout") &&
              acfg.contains("task_type") && acfg.contains("base_model_name_or_path"));
  // The PEFT key names are `base_model.model.` + the parameter names of the module PEFT wraps,
  // as transformers' Qwen3-VL names them. Default (--peft-base model): Qwen3VLModel, what the
  // original's setup_utils.py wraps on its load path (`_load_base_model_standard` ->
  // Qwen3VLModel, `PeftModel.from_pretrained(model.model, ...)`): language_model.layers.<l>.
  // self_attn.{q,k,v,o}_proj / mlp.{gate,up,down}_proj. for-conditional-generation:
  // Qwen3VLForConditionalGeneration, whose Qwen3VLModel is `.model` (the Unsloth path).
  const int layers = read_json(peft / "config.json")["text_config"]["num_hidden_layers"];
  auto hf_names = [&](const std::string& prefix) {
    std::set<std::string> want;
    for (int l = 0; l < layers; ++l)
      for (const std::string m : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                  "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
        for (const std::string ab : {"lora_A", "lora_B"})
          want.insert(prefix + "language_model.layers." + std::to_string(l) + "." + m + "." + ab + ".weight");
    return want;
  };
  io::SafetensorsFile ad((peft / "adapter_model.safetensors").string());
  const auto names = ad.names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), hf_names("base_model.model."));
  EXPECT_FALSE(fs::exists(peft / "peft_target_module.json"));  // save.py writes none
  EXPECT_EQ(read_json_yaml(peft / "config.yaml")["model"]["use_unsloth"], false);
  ExportOptions fcg = o;
  fcg.peft_base = "for-conditional-generation";
  export_model((tmp / "ckpt").string(), (tmp / "peft_fcg").string(), fcg);
  io::SafetensorsFile ad2((tmp / "peft_fcg" / "adapter_model.safetensors").string());
  const auto names2 = ad2.names();
  EXPECT_EQ(std::set<std::string>(names2.begin(), names2.end()), hf_names("base_model.model.model."));
  EXPECT_EQ(read_json_yaml(tmp / "peft_fcg" / "config.yaml")["model"]["use_unsloth"], true);
  auto reloaded_fcg = load_checkpoint((tmp / "peft_fcg").string(), at::kCPU);  // both spellings import
  const auto rf = outputs(reloaded_fcg.bundle);
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(rf[i], ref[i], 1e-6);
  ExportOptions bad = o;
  bad.peft_base = "Qwen3VLModel";
  robometer::test::expect_throw_contains(
      [&] { export_model((tmp / "ckpt").string(), (tmp / "bad").string(), bad); },
      {"--peft-base", "Qwen3VLModel"});
  io::SafetensorsFile heads((peft / "custom_heads.safetensors").string());
  EXPECT_TRUE(heads.contains("progress_head.0.weight"));
  EXPECT_TRUE(heads.contains("preference_head.0.weight"));
  io::SafetensorsSet base(peft.string());
  for (const auto& k : base.names()) EXPECT_EQ(k.find("lora_"), std::string::npos) << k;

  auto reloaded = load_checkpoint(peft.string(), at::kCPU);
  const auto r1 = outputs(reloaded.bundle);
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(r1[i], ref[i], 1e-6);
  // Without its adapter file the unmerged export must not load as the base model.
  fs::copy(peft, tmp / "no_adapter", fs::copy_options::recursive);
  fs::remove(tmp / "no_adapter" / "adapter_model.safetensors");
  robometer::test::expect_throw_contains([&] { load_checkpoint((tmp / "no_adapter").string(), at::kCPU); },
                                         {"lora.enabled=true", "adapter_model.safetensors"});

  o.merge_lora = true;
  export_model((tmp / "ckpt").string(), (tmp / "merged").string(), o);
  EXPECT_FALSE(fs::exists(tmp / "merged" / "adapter_model.safetensors"));
  auto merged = load_checkpoint((tmp / "merged").string(), at::kCPU);
  EXPECT_FALSE(merged.config.model.lora.enabled);
  const auto r2 = outputs(merged.bundle);
  double diff = 0;
  for (size_t i = 0; i < ref.size(); ++i) diff = std::max(diff, std::abs(r2[i] - ref[i]));
  EXPECT_LT(diff, 1e-4);
  // The adapters mattered (otherwise the comparison proves nothing).
  auto plain_cfg = test::tiny_run_config();
  auto plain = model::build_model(plain_cfg.model, at::kCPU, 7);
  const auto r0 = outputs(plain);
  double moved = 0;
  for (size_t i = 0; i < ref.size(); ++i) moved = std::max(moved, std::abs(r0[i] - ref[i]));
  EXPECT_GT(moved, 1e-4);
}

}  // namespace
}  // namespace robometer::eval
