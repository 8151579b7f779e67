#include "robometer/dist/sharded_adamw.h"
#include "robometer/core/compat.h"
#include "robometer/core/host_sync.h"

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
                           train::AdamWConfig cfg, ShardedGradSync* grads, double gather_mb)
    : grads_(grads), gather_mb_(gather_mb), world_(std::move(world)), cfg_(std::move(cfg)) {
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
  if (grads_) {
    // The gradient shard must line up with this optimizer's slice element for element.
    const auto& lay = grads_->layout();
    bool same = lay.entries.size() == params_.size() && lay.total == total_ &&
                lay.shard_begin == shard_begin_ && lay.shard_size == shard_size_ && lay.dtype == flat_dtype_;
    for (size_t i = 0; same && i < params_.size(); ++i)
      same = lay.entries[i].name == params_[i].name && lay.entries[i].offset == params_[i].offset;
    if (!same)
      throw Error("ZeRO: the gradient sync was attached to other parameters than the optimizer's (" +
                  std::to_string(lay.entries.size()) + " vs " + std::to_string(params_.size()) + ")");
  }
  spdlog::info("ZeRO AdamW: {} parameters ({} elements), rank {} owns [{}, {}){}", params_.size(), total_,
               world_->rank(), shard_begin_, shard_end_, grads_ ? ", gradients reduced during backward" : "");
}

double ShardedAdamW::lr() const { return params_.front().base_lr * lr_factor_; }

void ShardedAdamW::reduce_grads() {
  if (reduced_) return;
  if (grads_) {
    if (!grads_->reduced())
      throw Error("ZeRO: optimizer step before the gradient sync finished (GradSync::finish)");
    grad_shard_ = grads_->grad_shard();  // the same storage: clipping scales it in place
    has_grad_ = grads_->has_grad();
    reduced_ = true;
    return;
  }
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
  auto flags_cpu = core::host_copy(flags, "sharded AdamW: which parameters have gradients");
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
  const double norm = std::sqrt(core::host_value<double>(sq, "sharded AdamW: gradient norm"));
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
  // Every rank gets every updated slice, gathered in chunks of about gather_mb so that no
  // buffer of the whole model is ever needed: chunk j of rank r is the flat range
  // r·shard_size + [j, j + c).
  const int64_t n = world_->size();
  const auto elem = static_cast<int64_t>(c10::elementSize(flat_dtype_));
  const int64_t chunk = std::max<int64_t>(
      1, std::min<int64_t>(shard_size_, static_cast<int64_t>(gather_mb_ * 1048576) / elem / n));
  auto gathered = at::empty({n * chunk}, at::TensorOptions().dtype(flat_dtype_).device(world_->device()));
  for (int64_t j = 0; j < shard_size_; j += chunk) {
    const int64_t c = std::min(chunk, shard_size_ - j);
    auto out = gathered.slice(0, 0, n * c);
    world_->all_gather(out, master_.slice(0, j, j + c).to(flat_dtype_).contiguous());
    for (int64_t r = 0; r < n; ++r) copy_into_params(r * shard_size_ + j, out.slice(0, r * c, (r + 1) * c));
  }
  reduced_ = false;
  grad_shard_ = at::Tensor();
}

void ShardedAdamW::copy_into_params(int64_t lo, const at::Tensor& data) {
  const int64_t hi = std::min(total_, lo + data.numel());
  if (lo >= hi) return;  // the padding past the last parameter
  // The first parameter ending after lo (params_ are sorted by offset).
  auto it = std::upper_bound(params_.begin(), params_.end(), lo,
                             [](int64_t v, const Param& p) { return v < p.offset + p.param.numel(); });
  for (; it != params_.end() && it->offset < hi; ++it) {
    const size_t i = static_cast<size_t>(it - params_.begin());
    if (!has_grad_[i]) continue;  // not updated: unchanged
    const int64_t a = std::max(lo, it->offset), b = std::min(hi, it->offset + it->param.numel());
    if (!it->param.is_contiguous())
      throw Error("ZeRO: parameter '" + it->name + "' is not contiguous; cannot update it in place");
    it->param.detach()
        .view({-1})
        .slice(0, a - it->offset, b - it->offset)
        .copy_(data.slice(0, a - lo, b - lo));
  }
}

void ShardedAdamW::zero_grad() {
  for (auto& p : params_) p.param.mutable_grad() = at::Tensor();
  if (grads_) grads_->clear();
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

void ShardedAdamW::check_same_params(const nlohmann::json& state) const {
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
}

void ShardedAdamW::load_state(const io::NamedTensors& tensors, const nlohmann::json& state) {
  if (state.is_object() && state.value("format", "") == "robometer.adamw")
    return load_adamw_state(tensors, state);
  if (!state.is_object() || state.value("format", "") != kFormat)
    throw Error(std::string("optimizer state: neither a ") + kFormat + " shard nor a robometer.adamw state");
  const int saved_world = state.at("world_size").get<int>();
  const int saved_rank = state.at("rank").get<int>();
  if (saved_world != world_->size())
    throw Error("optimizer state: ZeRO shards were saved with world size " + std::to_string(saved_world) +
                ", this run has " + std::to_string(world_->size()) +
                " (load_resharded re-cuts them; the trainer does so on resume)");
  if (saved_rank != world_->rank())
    throw Error("optimizer state: shard of rank " + std::to_string(saved_rank) + " given to rank " +
                std::to_string(world_->rank()));
  check_same_params(state);
  const auto& ps = state.at("params");
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

void ShardedAdamW::load_resharded(int saved_world, const std::function<nlohmann::json(int)>& json_of,
                                  const std::function<io::NamedTensors(int)>& tensors_of) {
  if (saved_world < 1) throw Error("optimizer state: saved world size " + std::to_string(saved_world));
  const nlohmann::json s0 = json_of(0);
  if (!s0.is_object() || s0.value("format", "") != kFormat)
    throw Error(std::string("optimizer state: shard 0 is not a ") + kFormat + " shard");
  check_same_params(s0);
  robometer::compat::NoGradGuard no_grad;
  master_.zero_();
  exp_avg_.zero_();
  exp_avg_sq_.zero_();
  int64_t covered = 0;
  const char* keys[3] = {"zero1.master", "zero1.exp_avg", "zero1.exp_avg_sq"};
  at::Tensor* dsts[3] = {&master_, &exp_avg_, &exp_avg_sq_};
  for (int k = 0; k < saved_world; ++k) {
    const nlohmann::json sk = k == 0 ? s0 : json_of(k);
    if (sk.value("format", "") != kFormat || sk.at("rank").get<int>() != k ||
        sk.at("world_size").get<int>() != saved_world || sk.at("total").get<int64_t>() != total_)
      throw Error("optimizer state: shard " + std::to_string(k) + " is not rank " + std::to_string(k) +
                  " of " + std::to_string(saved_world) + " of the same run");
    const int64_t b = sk.at("shard_begin").get<int64_t>(), e = sk.at("shard_end").get<int64_t>();
    const int64_t lo = std::max(b, shard_begin_), hi = std::min(e, shard_end_);
    if (lo >= hi) continue;  // only the shards overlapping this rank's slice are read
    const auto tensors = tensors_of(k);
    std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
    for (int t = 0; t < 3; ++t) {
      auto it = by_name.find(keys[t]);
      if (it == by_name.end() || it->second.numel() < e - b)
        throw Error("optimizer state: shard " + std::to_string(k) + " lacks '" + keys[t] + "' of " +
                    std::to_string(e - b) + " elements");
      dsts[t]
          ->slice(0, lo - shard_begin_, hi - shard_begin_)
          .copy_(it->second.reshape({-1}).slice(0, lo - b, hi - b));
    }
    covered += hi - lo;
  }
  if (covered != shard_end_ - shard_begin_)
    throw Error("optimizer state: the " + std::to_string(saved_world) + " saved shards cover " +
                std::to_string(covered) + " of this rank's " + std::to_string(shard_end_ - shard_begin_) +
                " elements");
  const auto& ps = s0.at("params");
  for (size_t i = 0; i < params_.size(); ++i) params_[i].step = ps[i].at("step").get<int64_t>();
  lr_factor_ = s0.value("lr_factor", 1.0);
  reduced_ = false;
  spdlog::info("ZeRO AdamW: state of {} ranks re-sharded onto rank {} of {}", saved_world, world_->rank(),
               world_->size());
}

// A single-process AdamW state ("<param>.exp_avg", ".exp_avg_sq", ".master" for non-fp32
// parameters; JSON steps per parameter): this rank takes its slice of each.
void ShardedAdamW::load_adamw_state(const io::NamedTensors& tensors, const nlohmann::json& state) {
  const auto& steps = state.at("steps");
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  robometer::compat::NoGradGuard no_grad;
  for (auto& p : params_) {
    if (!steps.contains(p.name)) throw Error("optimizer state: no entry for parameter '" + p.name + "'");
    p.step = steps.at(p.name).get<int64_t>();
    const int64_t lo = std::max(p.offset, shard_begin_);
    const int64_t hi = std::min(p.offset + p.param.numel(), shard_end_);
    if (lo >= hi) continue;
    auto part = [&](const at::Tensor& full) {
      if (full.numel() != p.param.numel())
        throw Error("optimizer state: '" + p.name + "' state has " + std::to_string(full.numel()) +
                    " elements, the parameter " + std::to_string(p.param.numel()));
      return full.reshape({-1}).slice(0, lo - p.offset, hi - p.offset);
    };
    const int64_t a = lo - shard_begin_, b = hi - shard_begin_;
    auto m = by_name.find(p.name + ".master");
    master_.slice(0, a, b).copy_(part(m != by_name.end() ? m->second : p.param.detach()));
    for (auto [suffix, dst] :
         {std::make_pair(".exp_avg", &exp_avg_), std::make_pair(".exp_avg_sq", &exp_avg_sq_)}) {
      auto it = by_name.find(p.name + suffix);
      if (it != by_name.end())
        dst->slice(0, a, b).copy_(part(it->second));
      else if (p.step > 0)
        throw Error("optimizer state: missing tensor '" + p.name + suffix + "'");
      else
        dst->slice(0, a, b).zero_();
    }
  }
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
