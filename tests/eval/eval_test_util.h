// Tiny random-init reward models and checkpoint directories for the eval/serve tests.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../common/test_util.h"
#include "robometer/config/loader.h"
#include "robometer/io/safetensors.h"
#include "robometer/model/factory.h"
#include "robometer/model/lora.h"
#include "robometer/model/weights.h"

namespace robometer::test {

inline config::RunConfig tiny_run_config(bool lora = false) {
  config::RunConfig cfg;
  cfg.model.config_json = (source_dir() / "configs/models/tiny.json").string();
  cfg.model.freeze.clear();
  cfg.model.lora.enabled = lora;
  cfg.model.lora.r = 4;
  cfg.model.lora.alpha = 8;
  cfg.data.resize.mode = "exact";
  cfg.data.resize.width = 64;
  cfg.data.resize.height = 64;
  cfg.train.seed = 7;
  return cfg;
}

// Non-zero LoRA B matrices, so that adapters change the outputs.
inline void randomize_lora(torch::nn::Module& m) {
  torch::NoGradGuard ng;
  torch::manual_seed(3);
  for (auto& p : m.named_parameters())
    if (p.key().find(".lora_B.") != std::string::npos) p.value().normal_(0.0, 0.05);
}

// A directory shaped like a trainer checkpoint (config.yaml, config.json, model.safetensors).
inline model::ModelBundle write_tiny_checkpoint(const std::filesystem::path& dir, bool lora = false) {
  std::filesystem::create_directories(dir);
  auto cfg = tiny_run_config(lora);
  auto b = model::build_model(cfg.model, at::kCPU, static_cast<uint64_t>(cfg.train.seed));
  if (lora) randomize_lora(*b.model);
  b.model->eval();
  io::save_safetensors((dir / "model.safetensors").string(), model::state_dict(*b.model));
  std::filesystem::copy_file(cfg.model.config_json, dir / "config.json");
  std::ofstream(dir / "config.yaml") << config::to_yaml(cfg);
  return b;
}

// Deterministic uint8 frames [T, S, S, 3].
inline at::Tensor test_frames(int64_t t, int64_t s = 64, int64_t seed = 1) {
  at::manual_seed(seed);
  return at::randint(0, 256, {t, s, s, 3}, at::kByte);
}

// Base of suites whose tests share one random-init tiny model (built once per suite).
class TinyModelSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    bundle_ = new model::ModelBundle(model::build_model(tiny_run_config().model, at::kCPU, 7));
  }
  static void TearDownTestSuite() {
    delete bundle_;
    bundle_ = nullptr;
  }
  static inline model::ModelBundle* bundle_ = nullptr;
};

}  // namespace robometer::test
