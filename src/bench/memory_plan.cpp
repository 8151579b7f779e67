#include "robometer/bench/memory_plan.h"

#include <spdlog/spdlog.h>

#include <unistd.h>
#include <algorithm>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "robometer/core/error.h"
#include "robometer/model/factory.h"
#include "robometer/model/processor.h"

namespace robometer::bench {
namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

ParamCensus parameter_census(const config::ModelConfig& model, const PairShape& pair) {
  if (model.config_json.empty()) throw ConfigError("bench memory: model.config_json is empty");
  std::ifstream in(model.config_json);
  if (!in) throw ConfigError("bench memory: cannot open model.config_json '" + model.config_json + "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(model.config_json + ": invalid JSON: " + e.what());
  }
  auto& text = j.at("text_config");
  auto& vision = j.at("vision_config");
  ParamCensus c;
  c.text_layers = text.at("num_hidden_layers").get<int64_t>();
  c.vision_blocks = vision.at("depth").get<int64_t>();
  c.hidden = text.at("hidden_size").get<int64_t>();
  c.intermediate = text.at("intermediate_size").get<int64_t>();
  const int64_t head_dim = text.value("head_dim", c.hidden / text.at("num_attention_heads").get<int64_t>());
  c.q_dim = text.at("num_attention_heads").get<int64_t>() * head_dim;
  c.kv_dim = text.at("num_key_value_heads").get<int64_t>() * head_dim;
  // The probe: one vision block (the DeepStack mergers, one per tap, stay) and as few decoder
  // layers as the taps need (each tap feeds one layer), at least one.
  int64_t taps = 0;
  if (vision.contains("deepstack_visual_indexes"))
    for (auto& t : vision["deepstack_visual_indexes"]) t = 0, ++taps;
  const int64_t probe_layers = std::max<int64_t>(1, taps);
  if (probe_layers > c.text_layers)
    throw ConfigError(model.config_json + ": more DeepStack taps than decoder layers");
  text["num_hidden_layers"] = probe_layers;
  vision["depth"] = 1;
  const fs::path probe =
      fs::temp_directory_path() / ("robometer_census_" + std::to_string(::getpid()) + ".json");
  std::ofstream(probe) << j.dump(1);
  config::ModelConfig mc = model;
  mc.config_json = probe.string();
  mc.pretrained = "";  // the shapes only
  model::ModelBundle b;
  try {
    b = model::build_model(mc, at::Device(at::kCPU), 0);
  } catch (...) {
    fs::remove(probe);
    throw;
  }
  fs::remove(probe);
  // Every probe parameter once; then layer 0's and block 0's for the layers and blocks the probe
  // lacks (identical modules).
  const std::string layer0 = "model.language_model.layers.0.", block0 = "model.visual.blocks.0.";
  for (const auto& np : b.model->named_parameters()) {
    const auto& name = np.key();
    const auto& t = np.value();
    const int64_t n = t.numel();
    const bool train = t.requires_grad();
    int64_t times = 1;
    if (starts_with(name, layer0)) {
      c.layer_total += n;
      c.layer_trainable += train ? n : 0;
      times = 1 + c.text_layers - probe_layers;
    } else if (starts_with(name, block0)) {
      c.block_total += n;
      c.block_trainable += train ? n : 0;
      times = c.vision_blocks;
    }
    c.total += n * times;
    if (train) {
      c.trainable += n * times;
      c.largest_trainable = std::max(c.largest_trainable, n);
    }
  }
  const auto blank = at::zeros({pair.frames, pair.height, pair.width, 3}, at::kByte);
  c.pair_tokens = b.processor->pair_inputs({model::PairQuery{pair.task, blank, blank}}).input_ids.size(1);
  for (const auto& prefix : model.freeze)
    if (prefix.find(".layers.") != std::string::npos || prefix.find(".blocks.") != std::string::npos)
      spdlog::warn(
          "bench memory: model.freeze '{}' names single layers; the census counts every layer like layer 0",
          prefix);
  return c;
}

MemoryPlan plan_memory(const ParamCensus& c, const PlanInputs& in) {
  if (in.world < 1) throw ConfigError("bench memory: --world must be >= 1");
  const std::string mode = in.world == 1 ? "none" : in.shard;  // one rank has nothing to shard
  if (mode != "none" && mode != "optimizer" && mode != "gradients" && mode != "parameters")
    throw ConfigError("bench memory: --shard '" + in.shard +
                      "' is not one of none, optimizer, gradients, parameters");
  const double N = in.world, P = static_cast<double>(c.total), T = static_cast<double>(c.trainable);
  const double b = in.weight_bytes;
  const double bucket = in.bucket_mb * 1048576.0;
  const double largest = static_cast<double>(c.largest_trainable) * b;
  MemoryPlan m;
  // Buckets of the sharded grad sync: the one filling plus two in flight, each a bucket or
  // the largest tensor, and in ZeRO-2/3 the .grad AccumulateGrad holds until the next hook.
  const double shard_buckets = 3 * std::max(bucket, largest);
  if (mode == "none") {
    m.weights = P * b;
    m.grads = T * b;
    // train::AdamW: fp32 master (and fp32 moments) for low-precision weights when fp32_master.
    const bool master = in.fp32_master && in.weight_bytes < 4;
    m.master = master ? 4 * T : 0;
    m.moments = master ? 8 * T : 2 * T * b;
    m.buffers = in.world > 1 ? T * b : 0;  // BucketedGradSync: one bucket copy of the gradients
  } else {
    // ShardedAdamW: fp32 master and moments of 1/N of the trainable elements; the fp32
    // gradient shard; the weights all-gathered in chunks of about a bucket.
    m.master = 4 * T / N;
    m.moments = 8 * T / N;
    m.grads = 4 * T / N;
    m.weights = P * b;
    if (mode == "optimizer") {
      m.grads += T * b;  // .grad of every parameter through backward
      m.buffers = shard_buckets + bucket;
    } else if (mode == "gradients") {
      m.buffers = shard_buckets + largest + bucket;
    } else {
      // ZeRO-3: frozen weights replicated, trainable weights sharded, the layer in use and the
      // prefetched next one gathered (bf16).
      const double unit =
          std::max(static_cast<double>(c.layer_trainable), static_cast<double>(c.largest_trainable));
      m.weights = (P - T) * b + T * b / N + std::min(2 * unit * b, T * b * (1 - 1 / N));
      m.buffers = shard_buckets + largest + bucket;
    }
  }
  // Activations of one micro-batch (bf16 compute). Per token and decoder layer, what autograd
  // keeps: residual in, norm out ×2, q/k/v, q/k norm inputs, rotary outputs, attention out,
  // o_proj out, post-norm ×2, gate, up, act(gate), product, down out (flash/efficient
  // attention: no L×L scores). A fully checkpointed layer keeps only its input (one layer's
  // activations exist again while it is recomputed); a selective one keeps its input, the
  // projection outputs (q/k/v, o, gate/up, down) and the attention output, and recomputes the
  // elementwise rest.
  const double tokens = static_cast<double>(in.batch) * static_cast<double>(in.tokens_per_sample);
  const double per_layer_token =
      static_cast<double>(6 * c.hidden + 4 * c.q_dim + 4 * c.kv_dim + 4 * c.intermediate);
  const double L = static_cast<double>(c.text_layers), a = in.activation_bytes;
  const double hidden = static_cast<double>(c.hidden);
  const double selective_token =
      static_cast<double>(3 * c.hidden + 2 * c.q_dim + 2 * c.kv_dim + 3 * c.intermediate);
  const auto& ck = in.checkpointing;
  double per_token = L * per_layer_token;  // none
  if (ck.mode == model::CheckpointPlan::Mode::Selective) {
    per_token = L * selective_token + (per_layer_token - selective_token);
  } else if (ck.any()) {
    const double full =
        ck.mode == model::CheckpointPlan::Mode::Full ? L : std::min(L, static_cast<double>(ck.layers));
    per_token = full * hidden + (L - full) * per_layer_token + per_layer_token;
  }
  m.activations = tokens * a * per_token;
  return m;
}

}  // namespace robometer::bench
