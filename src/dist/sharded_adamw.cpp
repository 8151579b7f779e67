#include "robometer/dist/sharded_adamw.h"
#include "robometer/core/compat.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "robometer/core/error.h"

namespace robometer::dist {
namespace {

constexpr const char* kFormat = "robometer.adamw.zero1";

at::ScalarType dtype_from_name(const std::string& s) {
  if (s == "float32") return at::kFloat;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "float16") return at::kHalf;
  if (s == "float64") return at::kDouble;
  throw Error("optimizer state: unknown dtype '" + s + "'");
}

std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "float32";
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    case at::kDouble:
      return "float64";
    default:
      return c10::toString(t);
  }
}

}  // namespace

ShardedAdamW::ShardedAdamW(std::shared_ptr<C10dWorld> world, const train::NamedParameters& params,
                           train::AdamWConfig cfg)
    : world_(std::move(world)), cfg_(std::move(cfg)) {
  // Per-parameter lr and weight decay exactly as train::AdamW groups them.
  std::set<at::ScalarType> dtypes;
  for (const auto& plan : train::plan_parameters(params, cfg_)) {
    const at::Tensor& tensor = plan.tensor;
    Param p;
    p.name = plan.name;
    p.param = tensor;
    p.offset = total_;
    p.base_lr = plan.base_lr;
    p.weight_decay = plan.weight_decay;
    total_ += tensor.numel();
    dtypes.insert(tensor.scalar_type());
    params_.push_back(std::move(p));
  }
  if (params_.empty()) throw ConfigError("optimizer: no trainable parameters");
  flat_dtype_ = dtypes.size() == 1 ? *dtypes.begin() : at::kFloat;
  const int64_t w = world_->size();
  shard_size_ = (total_ + w - 1) / w;
  padded_ = shard_size_ * w;
  shard_begin_ = std::min(total_, shard_size_ * world_->rank());
  shard_end_ = std::min(total_, shard_begin_ + shard_size_);
  has_grad_.assign(params_.size(), false);

  // fp32 master of the own slice, from the (already broadcast) model weights.
  const auto fopts = at::TensorOptions().dtype(at::kFloat).device(world_->device());
  master_ = at::zeros({shard_size_}, fopts);
  exp_avg_ = at::zeros({shard_size_}, fopts);
  exp_avg_sq_ = at::zeros({shard_size_}, fopts);
  robometer::compat::NoGradGuard no_grad;
  for (const auto& p : params_) {
    const int64_t lo = std::max(p.offset, shard_begin_);
    const int64_t hi = std::min(p.offset + p.param.numel(), shard_end_);
    if (lo >= hi) continue;
    master_.slice(0, lo - shard_begin_, hi - shard_begin_)
        .copy_(p.param.detach().reshape({-1}).slice(0, lo - p.offset, hi - p.offset));
  }
  spdlog::info("ZeRO-1 AdamW: {} parameters ({} elements), rank {} owns [{}, {})", params_.size(), total_,
               world_->rank(), shard_begin_, shard_end_);
}

double ShardedAdamW::lr() const { return params_.front().base_lr * lr_factor_; }

void ShardedAdamW::reduce_grads() {
  if (reduced_) return;
  robometer::compat::NoGradGuard no_grad;
  const auto dev = world_->device();
  auto flat = at::zeros({padded_}, at::TensorOptions().dtype(flat_dtype_).device(dev));
  auto flags =
      at::zeros({static_cast<int64_t>(params_.size())}, at::TensorOptions().dtype(at::kFloat).device(dev));
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& g = params_[i].param.grad();
    if (!g.defined()) continue;
    flat.slice(0, params_[i].offset, params_[i].offset + g.numel()).copy_(g.reshape({-1}));
    flags[static_cast<int64_t>(i)] = 1.0f;
  }
  std::vector<at::Tensor> f{flags};
  world_->all_reduce_sum(f);
  auto flags_cpu = flags.to(at::kCPU);
  for (size_t i = 0; i < params_.size(); ++i)
    has_grad_[i] = flags_cpu[static_cast<int64_t>(i)].item<float>() > 0;
  auto shard = at::empty({shard_size_}, flat.options());
  world_->reduce_scatter_sum(flat, shard);
  shard.div_(world_->size());  // the average, in the gradients' dtype (as DDP does)
  grad_shard_ = shard.to(at::kFloat);
  reduced_ = true;
}

double ShardedAdamW::clip_grad_norm(double max_norm) {
  reduce_grads();
  robometer::compat::NoGradGuard no_grad;
  auto sq = at::zeros({1}, grad_shard_.options());
  sq[0] = grad_shard_.pow(2).sum();
  std::vector<at::Tensor> v{sq};
  world_->all_reduce_sum(v);
  const double norm = std::sqrt(sq.item<double>());
  if (!std::isfinite(norm) || max_norm <= 0) return norm;
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) grad_shard_.mul_(static_cast<float>(coef));
  return norm;
}

void ShardedAdamW::step() {
  reduce_grads();
  robometer::compat::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    if (!has_grad_[i]) continue;
    ++p.step;
    const int64_t lo = std::max(p.offset, shard_begin_);
    const int64_t hi = std::min(p.offset + p.param.numel(), shard_end_);
    if (lo >= hi) continue;
    const int64_t a = lo - shard_begin_, b = hi - shard_begin_;
    auto master = master_.slice(0, a, b);
    auto m = exp_avg_.slice(0, a, b);
    auto v = exp_avg_sq_.slice(0, a, b);
    const train::AdamWHyper h{p.base_lr * lr_factor_, cfg_.beta1, cfg_.beta2, cfg_.eps, p.weight_decay};
    train::adamw_update(master, grad_shard_.slice(0, a, b), m, v, p.step, h);
  }
  // Every rank gets every updated slice.
  auto flat = at::empty({padded_}, at::TensorOptions().dtype(flat_dtype_).device(world_->device()));
  world_->all_gather(flat, master_.to(flat_dtype_));
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad_[i]) continue;
    auto& p = params_[i];
    p.param.detach().copy_(flat.slice(0, p.offset, p.offset + p.param.numel()).view(p.param.sizes()));
  }
  reduced_ = false;
  grad_shard_ = at::Tensor();
}

void ShardedAdamW::zero_grad() {
  for (auto& p : params_) p.param.mutable_grad() = at::Tensor();
  reduced_ = false;
  grad_shard_ = at::Tensor();
}

io::NamedTensors ShardedAdamW::state_tensors() const {
  // Copies (a CPU .to(kCPU) would alias the live state).
  return {{"zero1.master", master_.to(at::kCPU, false, true)},
          {"zero1.exp_avg", exp_avg_.to(at::kCPU, false, true)},
          {"zero1.exp_avg_sq", exp_avg_sq_.to(at::kCPU, false, true)}};
}

nlohmann::json ShardedAdamW::state_json() const {
  nlohmann::json j;
  j["format"] = kFormat;
  j["version"] = 1;
  j["rank"] = world_->rank();
  j["world_size"] = world_->size();
  j["total"] = total_;
  j["shard_size"] = shard_size_;
  j["shard_begin"] = shard_begin_;
  j["shard_end"] = shard_end_;
  j["lr_factor"] = lr_factor_;
  j["hyper"] = {{"lr", cfg_.lr},
                {"beta1", cfg_.beta1},
                {"beta2", cfg_.beta2},
                {"eps", cfg_.eps},
                {"weight_decay", cfg_.weight_decay},
                {"fp32_master", true},
                {"decay_1d_params", cfg_.decay_1d_params}};
  j["params"] = nlohmann::json::array();
  for (const auto& p : params_) {
    j["params"].push_back({{"name", p.name},
                           {"offset", p.offset},
                           {"shape", p.param.sizes().vec()},
                           {"dtype", dtype_name(p.param.scalar_type())},
                           {"base_lr", p.base_lr},
                           {"weight_decay", p.weight_decay},
                           {"step", p.step}});
  }
  return j;
}

void ShardedAdamW::load_state(const io::NamedTensors& tensors, const nlohmann::json& state) {
  if (!state.is_object() || state.value("format", "") != kFormat)
    throw Error(std::string("optimizer state: not a ") + kFormat +
                " state (a single-process AdamW state cannot resume a ZeRO-1 run directly)");
  const int saved_world = state.at("world_size").get<int>();
  const int saved_rank = state.at("rank").get<int>();
  if (saved_world != world_->size())
    throw Error("optimizer state: ZeRO-1 shards were saved with world size " + std::to_string(saved_world) +
                ", this run has " + std::to_string(world_->size()) +
                " (consolidate the state or resume with the same world size)");
  if (saved_rank != world_->rank())
    throw Error("optimizer state: shard of rank " + std::to_string(saved_rank) + " given to rank " +
                std::to_string(world_->rank()));
  if (state.at("total").get<int64_t>() != total_)
    throw Error("optimizer state: " + std::to_string(state.at("total").get<int64_t>()) +
                " trainable elements saved, the model has " + std::to_string(total_));
  const auto& ps = state.at("params");
  if (ps.size() != params_.size())
    throw Error("optimizer state: " + std::to_string(ps.size()) + " parameters saved, " +
                std::to_string(params_.size()) + " trainable now");
  for (size_t i = 0; i < params_.size(); ++i) {
    if (ps[i].at("name").get<std::string>() != params_[i].name ||
        ps[i].at("offset").get<int64_t>() != params_[i].offset)
      throw Error("optimizer state: parameter " + std::to_string(i) + " is '" +
                  ps[i].at("name").get<std::string>() + "' in the checkpoint, '" + params_[i].name + "' now");
  }
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  auto load = [&](const std::string& key, at::Tensor& dst) {
    auto it = by_name.find(key);
    if (it == by_name.end()) throw Error("optimizer state: missing tensor '" + key + "'");
    if (it->second.numel() != dst.numel())
      throw Error("optimizer state: '" + key + "' has " + std::to_string(it->second.numel()) +
                  " elements, expected " + std::to_string(dst.numel()));
    dst.copy_(it->second.reshape({-1}));
  };
  load("zero1.master", master_);
  load("zero1.exp_avg", exp_avg_);
  load("zero1.exp_avg_sq", exp_avg_sq_);
  for (size_t i = 0; i < params_.size(); ++i) params_[i].step = ps[i].at("step").get<int64_t>();
  lr_factor_ = state.value("lr_factor", 1.0);
  reduced_ = false;
}

std::pair<io::NamedTensors, nlohmann::json> consolidate_zero1_state(
    const std::vector<io::NamedTensors>& tensors, const std::vector<nlohmann::json>& states) {
  if (states.empty() || states.size() != tensors.size())
    throw Error("consolidate ZeRO-1 state: need one (tensors, json) pair per rank");
  const auto& s0 = states.front();
  const int world = s0.at("world_size").get<int>();
  if (static_cast<int>(states.size()) != world)
    throw Error("consolidate ZeRO-1 state: " + std::to_string(states.size()) +
                " shards given, saved with world size " + std::to_string(world));
  const int64_t total = s0.at("total").get<int64_t>();
  at::Tensor full[3] = {at::zeros({total}), at::zeros({total}), at::zeros({total})};
  const char* keys[3] = {"zero1.master", "zero1.exp_avg", "zero1.exp_avg_sq"};
  for (int r = 0; r < world; ++r) {
    const auto& s = states[r];
    if (s.value("format", "") != kFormat || s.at("rank").get<int>() != r ||
        s.at("total").get<int64_t>() != total)
      throw Error("consolidate ZeRO-1 state: shard " + std::to_string(r) + " is not rank " +
                  std::to_string(r) + "'s shard of the same run");
    const int64_t b = s.at("shard_begin").get<int64_t>(), e = s.at("shard_end").get<int64_t>();
    std::map<std::string, at::Tensor> by_name(tensors[r].begin(), tensors[r].end());
    for (int k = 0; k < 3; ++k) {
      auto it = by_name.find(keys[k]);
      if (it == by_name.end())
        throw Error("consolidate ZeRO-1 state: rank " + std::to_string(r) + " lacks '" + keys[k] + "'");
      full[k].slice(0, b, e).copy_(it->second.reshape({-1}).slice(0, 0, e - b));
    }
  }
  io::NamedTensors out;
  nlohmann::json j;
  j["format"] = "robometer.adamw";
  j["version"] = 1;
  j["hyper"] = s0.at("hyper");
  j["lr_factor"] = s0.value("lr_factor", 1.0);
  j["steps"] = nlohmann::json::object();
  std::map<std::pair<double, double>, size_t> group_of;
  j["groups"] = nlohmann::json::array();
  for (const auto& p : s0.at("params")) {
    const auto name = p.at("name").get<std::string>();
    const auto off = p.at("offset").get<int64_t>();
    const auto shape = p.at("shape").get<std::vector<int64_t>>();
    int64_t n = 1;
    for (auto d : shape) n *= d;
    const int64_t step = p.at("step").get<int64_t>();
    j["steps"][name] = step;
    if (step > 0) {
      out.emplace_back(name + ".exp_avg", full[1].slice(0, off, off + n).view(shape).clone());
      out.emplace_back(name + ".exp_avg_sq", full[2].slice(0, off, off + n).view(shape).clone());
    }
    if (dtype_from_name(p.at("dtype").get<std::string>()) != at::kFloat)
      out.emplace_back(name + ".master", full[0].slice(0, off, off + n).view(shape).clone());
    const auto key = std::make_pair(p.at("base_lr").get<double>(), p.at("weight_decay").get<double>());
    auto it = group_of.find(key);
    if (it == group_of.end()) {
      it = group_of.emplace(key, j["groups"].size()).first;
      j["groups"].push_back({{"name", "group" + std::to_string(it->second)},
                             {"base_lr", key.first},
                             {"weight_decay", key.second},
                             {"params", nlohmann::json::array()}});
    }
    j["groups"][it->second]["params"].push_back(name);
  }
  return {out, j};
}

}  // namespace robometer::dist
