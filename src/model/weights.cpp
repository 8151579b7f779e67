#include "robometer/model/weights.h"
#include "robometer/core/compat.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>

#include <map>
#include <regex>
#include <sstream>

#include "robometer/core/error.h"

namespace robometer::model {

namespace {

const std::string kPeftPrefix = "base_model.model.";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_lora(const std::string& path) {
  return path.find(".lora_A.") != std::string::npos || path.find(".lora_B.") != std::string::npos;
}

bool is_head(const std::string& path) {
  return path.rfind("progress_head.", 0) == 0 || path.rfind("success_head.", 0) == 0 ||
         path.rfind("preference_head.", 0) == 0 || path.rfind("frame_pool_attn.", 0) == 0;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

std::string join(const std::vector<std::string>& v, size_t max_items = 20) {
  std::ostringstream os;
  for (size_t i = 0; i < v.size() && i < max_items; ++i) os << (i ? ", " : "") << v[i];
  if (v.size() > max_items) os << ", ... (" << v.size() << " in all)";
  return os.str();
}

}  // namespace

std::string checkpoint_key(const std::string& module_path) { return module_path; }

std::string peft_adapter_key(const std::string& module_path, PeftBase base) {
  // Our paths are Qwen3VLForConditionalGeneration's names; Qwen3VLModel's drop the `model.`.
  if (base == PeftBase::Model && module_path.rfind("model.", 0) == 0)
    return kPeftPrefix + module_path.substr(6);
  return kPeftPrefix + module_path;
}

std::string from_checkpoint_key(const std::string& key) {
  std::string k = key;
  if (k.rfind(kPeftPrefix, 0) == 0) {
    k = k.substr(kPeftPrefix.size());
    // An adapter saved from a PEFT-wrapped Qwen3VLModel names its modules without `model.`.
    if (k.rfind("language_model.", 0) == 0 || k.rfind("visual.", 0) == 0) k = "model." + k;
  }
  // The reward model has no LM head (Robometer loads Qwen3VLModel, not the ...ForConditionalGeneration):
  // an untied backbone's lm_head.weight, or a tied one's copy, is not ours to load.
  if (k == "lm_head.weight") return "";
  replace_all(k, ".base_layer.", ".");
  replace_all(k, ".lora_A.default.", ".lora_A.");
  replace_all(k, ".lora_B.default.", ".lora_B.");
  return k;
}

io::NamedTensors state_dict(torch::nn::Module& model, const StateDictOptions& opts) {
  io::NamedTensors out;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const auto& path = item.key();
    const auto& p = item.value();
    if (!opts.include_lora && is_lora(path)) continue;
    if (opts.trainable_only && !p.requires_grad()) continue;
    auto t = p.detach().to(at::kCPU);
    if (!opts.keep_dtype && t.is_floating_point()) t = t.to(opts.dtype);
    const std::string key =
        (opts.peft_names && is_lora(path)) ? peft_adapter_key(path, opts.peft_base) : checkpoint_key(path);
    out.emplace_back(key, t.contiguous());
  }
  return out;
}

at::Tensor resize_embedding_rows(const at::Tensor& table, int64_t new_rows) {
  const int64_t rows = table.size(0);
  if (new_rows <= rows) return table.narrow(0, 0, new_rows);
  auto mean = table.to(at::kFloat).mean(0, /*keepdim=*/true).to(table.scalar_type());
  return at::cat({table, mean.expand({new_rows - rows, table.size(1)})}, 0);
}

namespace {

template <class GetFn>
LoadReport load_impl(torch::nn::Module& model, const std::vector<std::string>& names, const GetFn& get,
                     const LoadOptions& opts) {
  LoadReport rep;
  auto params = model.named_parameters(/*recurse=*/true);
  std::map<std::string, at::Tensor> by_path;
  for (const auto& item : params) by_path[item.key()] = item.value();
  std::map<std::string, bool> seen;

  robometer::compat::NoGradGuard ng;
  for (const auto& key : names) {
    const std::string path = from_checkpoint_key(key);
    if (path.empty()) {
      rep.ignored.push_back(key);
      continue;
    }
    auto it = by_path.find(path);
    if (it == by_path.end()) {
      rep.unexpected.push_back(key);
      continue;
    }
    at::Tensor src = get(key);
    at::Tensor& dst = it->second;
    if (src.sizes() != dst.sizes()) {
      const bool is_embedding = ends_with(path, "embed_tokens.weight") && src.dim() == 2 && dst.dim() == 2 &&
                                src.size(1) == dst.size(1);
      if (is_embedding && opts.resize_embeddings) {
        rep.resized_from = src.size(0);
        src = resize_embedding_rows(src, dst.size(0));
      } else {
        std::ostringstream os;
        os << key << " (file " << src.sizes() << " vs model " << dst.sizes() << ")";
        rep.shape_mismatch.push_back(os.str());
        seen[path] = true;  // reported as a mismatch, not also as missing
        continue;
      }
    }
    dst.copy_(src.to(dst.device(), dst.scalar_type()));
    rep.loaded.push_back(key);
    seen[path] = true;
  }
  for (const auto& item : params) {
    const auto& path = item.key();
    if (seen.count(path)) continue;
    if (is_lora(path)) continue;  // adapters come from a separate file or start fresh
    if (opts.allow_missing_heads && is_head(path)) continue;
    rep.missing.push_back(path);
  }
  if (opts.strict && (!rep.missing.empty() || !rep.unexpected.empty() || !rep.shape_mismatch.empty())) {
    std::ostringstream os;
    os << "load_weights (strict)" << (opts.source.empty() ? "" : " from " + opts.source) << ": ";
    if (!rep.missing.empty()) os << rep.missing.size() << " missing key(s): " << join(rep.missing) << "; ";
    if (!rep.unexpected.empty())
      os << rep.unexpected.size() << " unexpected key(s): " << join(rep.unexpected) << "; ";
    if (!rep.shape_mismatch.empty())
      os << rep.shape_mismatch.size() << " shape mismatch(es): " << join(rep.shape_mismatch) << "; ";
    throw Error(os.str());
  }
  return rep;
}

}  // namespace

LoadReport load_weights(torch::nn::Module& model, const io::SafetensorsSet& weights,
                        const LoadOptions& opts) {
  return load_impl(
      model, weights.names(), [&](const std::string& k) { return weights.get(k); }, opts);
}

LoadReport load_weights(torch::nn::Module& model, const io::NamedTensors& weights, const LoadOptions& opts) {
  std::map<std::string, at::Tensor> m;
  std::vector<std::string> names;
  for (const auto& [k, t] : weights) {
    if (m.count(k)) throw Error("load_weights: duplicate key " + k);
    m[k] = t;
    names.push_back(k);
  }
  return load_impl(
      model, names, [&](const std::string& k) { return m.at(k); }, opts);
}

namespace {

int64_t set_grad_matching(torch::nn::Module& model, const std::string& pattern, bool requires_grad) {
  std::regex re;
  try {
    re = std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw ConfigError("freeze pattern '" + pattern + "' is not a valid regex: " + e.what());
  }
  int64_t n = 0;
  for (auto& item : model.named_parameters(true)) {
    if (!std::regex_search(item.key(), re)) continue;
    item.value().set_requires_grad(requires_grad);
    ++n;
  }
  return n;
}

}  // namespace

int64_t freeze_matching(torch::nn::Module& model, const std::string& pattern) {
  return set_grad_matching(model, pattern, false);
}

int64_t unfreeze_matching(torch::nn::Module& model, const std::string& pattern) {
  return set_grad_matching(model, pattern, true);
}

std::string first_non_finite_tensor(torch::nn::Module& model) {
  robometer::compat::NoGradGuard no_grad;
  auto bad = [](const at::Tensor& t) {
    return t.defined() && t.is_floating_point() && !at::isfinite(t).all().item<bool>();
  };
  for (const auto& p : model.named_parameters())
    if (bad(p.value())) return p.key();
  for (const auto& b : model.named_buffers())
    if (bad(b.value())) return b.key();
  return "";
}

std::vector<std::string> layer_norm_parameter_names(torch::nn::Module& model) {
  std::vector<std::string> out;
  for (const auto& m : model.named_modules()) {
    if (!m.value()->as<torch::nn::LayerNorm>()) continue;
    for (const auto& p : m.value()->named_parameters(/*recurse=*/false))
      out.push_back(m.key().empty() ? p.key() : m.key() + "." + p.key());
  }
  return out;
}

}  // namespace robometer::model
