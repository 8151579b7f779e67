#include "robometer/export/load.h"

#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/data/labels.h"
#include "robometer/data/run_options.h"
#include "robometer/io/safetensors.h"
#include "robometer/model/factory.h"
#include "robometer/model/weights.h"

namespace robometer::eval {
namespace fs = std::filesystem;

at::Device pick_device(const std::string& device) {
  if (device == "cpu") return at::kCPU;
  if (device == "cuda") {
    if (!torch::cuda::is_available()) throw ConfigError("--device cuda: no CUDA device available");
    return at::Device(at::kCUDA, 0);
  }
  if (device != "auto") throw ConfigError("--device '" + device + "': expected auto, cpu or cuda");
  return torch::cuda::is_available() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
}

LoadedModel load_checkpoint(const std::string& given, at::Device device,
                            const std::vector<std::string>& overrides) {
  if (!fs::exists(given)) throw ConfigError("--checkpoint '" + given + "': no such file or directory");
  // A checkpoint directory, its run's checkpoints/latest pointer, or the run directory itself.
  std::string dir;
  try {
    dir = model::resolve_checkpoint_dir(given);
  } catch (const Error& e) {
    throw ConfigError("--checkpoint '" + given + "': " + e.what());
  }
  LoadedModel m;
  // An export carries our run config as robometer_run.yaml (its config.yaml is Robometer's).
  fs::path ours = fs::path(dir) / "robometer_run.yaml";
  if (!fs::exists(ours)) ours = fs::path(dir) / "config.yaml";
  if (!fs::exists(ours)) throw Error(dir + ": no config.yaml (not a robometer checkpoint or export)");
  // Datasets and the run's (possibly relative) backbone path do not matter here: the
  // architecture is the config.json inside the directory.
  const bool has_config_json = fs::exists(fs::path(dir) / "config.json");
  std::vector<std::string> ov = {"data.train=[]", "data.eval=[]", "model.pretrained=\"\""};
  if (has_config_json) ov.push_back("model.config_json=\"\"");
  m.config = config::load_run_config(ours.string(), ov).config;
  if (!overrides.empty()) config::apply_overrides(m.config, overrides);
  config::ModelConfig mc = m.config.model;
  // The architecture comes from the directory itself, so the run's relative paths do not matter.
  if (fs::exists(fs::path(dir) / "config.json")) mc.config_json = (fs::path(dir) / "config.json").string();
  if (fs::exists(fs::path(dir) / "tokenizer.json"))
    mc.tokenizer = (fs::path(dir) / "tokenizer.json").string();
  mc.pretrained.clear();
  m.bundle = model::build_model(mc, device, static_cast<uint64_t>(m.config.train.seed));
  // Loaded after build_model so that LoRA adapters (attached there) are filled too.
  io::SafetensorsSet weights(dir);
  model::LoadOptions lo;
  lo.source = dir;
  const auto rep = model::load_weights(*m.bundle.model, weights, lo);
  spdlog::info("loaded {} tensors from {}", rep.loaded.size(), dir);
  // A PEFT adapter next to the base weights (an unmerged LoRA export).
  const fs::path adapter = fs::path(dir) / "adapter_model.safetensors";
  if (fs::exists(adapter)) {
    if (!m.config.model.lora.enabled)
      throw ConfigError(dir +
                        ": adapter_model.safetensors present but the run config has lora.enabled=false");
    io::SafetensorsSet ad(adapter.string());
    model::LoadOptions ao = lo;
    ao.strict = false;
    const auto arep = model::load_weights(*m.bundle.model, ad, ao);
    if (!arep.unexpected.empty() || !arep.shape_mismatch.empty() || arep.loaded.size() != ad.names().size())
      throw Error(adapter.string() + ": " + std::to_string(arep.unexpected.size()) + " unexpected and " +
                  std::to_string(arep.shape_mismatch.size()) + " mis-shaped adapter tensors");
    spdlog::info("loaded {} adapter tensors from {}", arep.loaded.size(), adapter.string());
  } else if (m.config.model.lora.enabled) {
    // LoRA on, adapters neither in the weights (a training checkpoint) nor next to them (an
    // unmerged export): scoring would silently use the base model.
    const auto names = weights.names();
    const bool in_weights = std::any_of(names.begin(), names.end(), [](const std::string& n) {
      return n.find(".lora_A.") != std::string::npos;
    });
    if (!in_weights)
      throw FormatError(dir,
                        "the run config has lora.enabled=true but neither the weights nor an "
                        "adapter_model.safetensors hold LoRA tensors (an incomplete export?)");
  }
  // A diverged run's weights would score NaN without an error.
  if (const auto bad = model::first_non_finite_tensor(*m.bundle.model); !bad.empty())
    throw FormatError(dir, "weight tensor '" + bad +
                               "' holds non-finite values (NaN/Inf): the "
                               "run diverged; refusing to use this checkpoint");
  m.bundle.model->eval();
  return m;
}

LoadedModel load_untrained(const std::string& config_yaml, at::Device device,
                           const std::vector<std::string>& overrides) {
  auto ov = overrides;
  ov.push_back("data.train=[]");  // the model does not need the datasets (eval gets --data)
  ov.push_back("data.eval=[]");
  LoadedModel m;
  m.config = config::load_run_config(config_yaml, ov).config;
  m.bundle = model::build_model(m.config.model, device, static_cast<uint64_t>(m.config.train.seed));
  m.bundle.model->eval();
  return m;
}

at::Tensor read_video(const std::string& path, const data::ResizeSpec& resize, double fps) {
  data::VideoReaderOptions ro;
  ro.resize = resize;
  data::VideoReader reader(path, ro);
  const int64_t n = reader.num_frames();
  std::vector<int64_t> idx;
  if (fps > 0 && reader.fps() > 0) {
    const auto keep = std::max<int64_t>(1, std::llround(static_cast<double>(n) * fps / reader.fps()));
    idx = data::linspace_positions(n, static_cast<int>(std::min(keep, n)));
  } else {
    for (int64_t i = 0; i < n; ++i) idx.push_back(i);
  }
  return reader.frames(idx);
}

data::ResizeSpec resize_spec(const config::RunConfig& cfg) { return data::resize_spec(cfg.eval.resize); }

}  // namespace robometer::eval
