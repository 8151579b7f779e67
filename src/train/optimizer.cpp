#include "robometer/train/optimizer.h"
#include "robometer/core/compat.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>

#include "robometer/core/error.h"
#include "robometer/core/host_sync.h"

namespace robometer::train {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

}  // namespace

bool is_no_decay_name(const std::string& name) {
  std::stringstream ss(lower(name));
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (part.find("bias") != std::string::npos || part.find("norm") != std::string::npos) return true;
  }
  return false;
}

void adamw_update(at::Tensor& param, const at::Tensor& grad, at::Tensor& exp_avg, at::Tensor& exp_avg_sq,
                  int64_t step, const AdamWHyper& h) {
  // Same operation order as torch.optim.AdamW / torch::optim::AdamW so results are bitwise
  // equal for fp32.
  const auto g = grad.scalar_type() == param.scalar_type() ? grad : grad.to(param.scalar_type());
  if (h.weight_decay != 0) param.mul_(1 - h.lr * h.weight_decay);
  exp_avg.mul_(h.beta1).add_(g, 1 - h.beta1);
  exp_avg_sq.mul_(h.beta2).addcmul_(g, g, 1 - h.beta2);
  const double bias_correction1 = 1 - std::pow(h.beta1, static_cast<double>(step));
  const double bias_correction2 = 1 - std::pow(h.beta2, static_cast<double>(step));
  auto denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(h.eps);
  const double step_size = h.lr / bias_correction1;
  param.addcdiv_(exp_avg, denom, -step_size);
}

namespace {

// Per-tensor fp32 L2 norms of CUDA grads in one multi-tensor launch per dtype.
std::vector<at::Tensor> foreach_norms(const std::vector<at::Tensor>& grads) {
  std::map<at::ScalarType, std::vector<at::Tensor>> by_dtype;
  for (const auto& g : grads) by_dtype[g.scalar_type()].push_back(g);
  std::vector<at::Tensor> out;
  for (auto& [dtype, list] : by_dtype) {
#if ROBOMETER_HAS_FOREACH_NORM_DTYPE
    auto norms = at::_foreach_norm(list, 2, at::kFloat);
#else
    auto norms = at::_foreach_norm(list, 2);
#endif
    for (auto& n : norms) out.push_back(n.to(at::kFloat));
  }
  return out;
}

}  // namespace

double clip_grad_norm(const std::vector<at::Tensor>& params, double max_norm) {
  robometer::compat::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  std::vector<at::Tensor> grads;
  bool all_cuda = true;
  for (const auto& p : params) {
    const auto& g = p.grad();
    if (!g.defined()) continue;
    grads.push_back(g);
    all_cuda = all_cuda && compat::use_foreach_norm(g) && g.device() == grads.front().device();
  }
  if (grads.empty()) return 0.0;
  if (all_cuda) {
    norms = foreach_norms(grads);
  } else {
    for (const auto& g : grads) {
      auto gf = g.scalar_type() == at::kFloat ? g : g.to(at::kFloat);
      norms.push_back(at::norm(gf, 2));  // stays on the device: one sync below, not one per tensor
    }
  }
  // As torch: norm of the per-tensor norms, coefficient computed in fp32.
  for (auto& n : norms) n = n.to(norms.front().device());  // (parameters on several devices)
  auto total = at::norm(at::stack(norms), 2);
  const double total_value = core::host_value<double>(total, "optimizer: gradient norm");
  if (!std::isfinite(total_value) || max_norm <= 0) return total_value;
  auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  const double c = core::host_value<double>(coef, "optimizer: clip coefficient");
  if (c < 1.0) {
    if (all_cuda)
      at::_foreach_mul_(grads, static_cast<double>(static_cast<float>(c)));  // the fp32 coefficient
    else
      for (auto& g : grads) g.mul_(coef.to(g.device()));
  }
  return total_value;
}

std::vector<ParamPlan> plan_parameters(const NamedParameters& named_params, const AdamWConfig& cfg) {
  std::vector<std::regex> rules;
  for (size_t i = 0; i < cfg.lr_rules.size(); ++i) {
    try {
      rules.emplace_back(cfg.lr_rules[i].pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw ConfigError("optimizer lr rule " + std::to_string(i) + ": bad regex '" + cfg.lr_rules[i].pattern +
                        "': " + e.what());
    }
  }
  const std::set<std::string> exempt(cfg.no_decay_names.begin(), cfg.no_decay_names.end());
  std::set<std::string> seen;
  std::vector<ParamPlan> out;
  for (const auto& [name, tensor] : named_params) {
    if (!tensor.requires_grad()) continue;
    if (!seen.insert(name).second) throw ConfigError("optimizer: duplicate parameter '" + name + "'");
    ParamPlan p;
    p.name = name;
    p.tensor = tensor;
    for (size_t i = 0; i < rules.size(); ++i) {
      if (std::regex_search(name, rules[i])) {
        p.rule = static_cast<int>(i);
        break;
      }
    }
    p.decay = !is_no_decay_name(name) && !exempt.count(name) && (cfg.decay_1d_params || tensor.dim() > 1);
    p.base_lr = cfg.lr;
    if (p.rule >= 0) {
      const auto& r = cfg.lr_rules[static_cast<size_t>(p.rule)];
      p.base_lr = r.lr > 0 ? r.lr : cfg.lr * r.lr_scale;
    }
    p.weight_decay = p.decay ? cfg.weight_decay : 0.0;
    out.push_back(std::move(p));
  }
  return out;
}

AdamW::AdamW(const NamedParameters& named_params, AdamWConfig cfg) : cfg_(std::move(cfg)) {
  std::map<std::pair<int, bool>, size_t> group_of;  // (rule or -1, decay) → group index
  for (const auto& plan : plan_parameters(named_params, cfg_)) {
    const std::string& name = plan.name;
    const at::Tensor& tensor = plan.tensor;
    auto key = std::make_pair(plan.rule, plan.decay);
    auto it = group_of.find(key);
    if (it == group_of.end()) {
      Group g;
      g.name = (plan.rule >= 0 ? "rule" + std::to_string(plan.rule) + "_" : std::string()) +
               (plan.decay ? "decay" : "no_decay");
      g.base_lr = plan.base_lr;
      g.weight_decay = plan.weight_decay;
      it = group_of.emplace(key, groups_.size()).first;
      groups_.push_back(std::move(g));
    }
    Param p;
    p.name = name;
    p.param = tensor;
    p.group = it->second;
    if (cfg_.fp32_master && tensor.is_floating_point() && tensor.scalar_type() != at::kFloat &&
        tensor.scalar_type() != at::kDouble) {
      p.master = tensor.detach().to(at::kFloat).clone();
    }
    groups_[p.group].params.push_back(params_.size());
    params_.push_back(std::move(p));
  }
  for (const auto& g : groups_) {
    spdlog::debug("optimizer group {}: {} tensors, lr {}, weight decay {}", g.name, g.params.size(),
                  g.base_lr, g.weight_decay);
  }
}

void AdamW::set_lr_factor(double factor) { lr_factor_ = factor; }

void AdamW::step() {
  robometer::compat::NoGradGuard no_grad;
  // Fused CUDA path: one kernel launch per (group, device, dtype) over chunks of tensors.
  struct Bucket {
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    std::vector<Param*> members;
  };
  std::map<std::tuple<size_t, std::string, int>, Bucket> buckets;
  for (auto& p : params_) {
    const auto& grad = p.param.grad();
    if (!grad.defined()) continue;
    at::Tensor target = p.master.defined() ? p.master : p.param.detach();
    if (!compat::use_fused_adamw(target)) continue;
    if (!p.exp_avg.defined()) {
      p.exp_avg = at::zeros_like(target, at::MemoryFormat::Preserve);
      p.exp_avg_sq = at::zeros_like(target, at::MemoryFormat::Preserve);
    }
    if (!p.step_t.defined())
      p.step_t = at::full({}, static_cast<double>(p.step), target.options().dtype(at::kFloat));
    auto& b = buckets[{p.group, target.device().str(), static_cast<int>(target.scalar_type())}];
    b.params.push_back(target);
    b.grads.push_back(grad);
    b.exp_avgs.push_back(p.exp_avg);
    b.exp_avg_sqs.push_back(p.exp_avg_sq);
    b.steps.push_back(p.step_t);
    b.members.push_back(&p);
  }
  for (auto& [key, b] : buckets) {
    const auto& group = groups_[std::get<0>(key)];
    // Grads of another dtype than the master are converted a chunk (<= 256 tensors, ~1 GiB of
    // converted grads) at a time, so the copies never hold all of them at once.
    for (size_t s = 0, e = 0; s < b.params.size(); s = e) {
      int64_t bytes = 0;
      for (e = s; e < b.params.size() && e - s < 256 && bytes < (int64_t{1} << 30); ++e)
        if (b.grads[e].scalar_type() != b.params[e].scalar_type())
          bytes += b.params[e].numel() * static_cast<int64_t>(b.params[e].element_size());
      std::vector<at::Tensor> ps(b.params.begin() + s, b.params.begin() + e);
      std::vector<at::Tensor> gs, ms(b.exp_avgs.begin() + s, b.exp_avgs.begin() + e),
          vs(b.exp_avg_sqs.begin() + s, b.exp_avg_sqs.begin() + e),
          ts(b.steps.begin() + s, b.steps.begin() + e);
      for (size_t i = s; i < e; ++i)
        gs.push_back(b.grads[i].scalar_type() == b.params[i].scalar_type()
                         ? b.grads[i]
                         : b.grads[i].to(b.params[i].scalar_type()));
      compat::fused_adamw_step(ps, gs, ms, vs, ts, group.base_lr * lr_factor_, cfg_.beta1, cfg_.beta2,
                               group.weight_decay, cfg_.eps);
    }
    for (Param* p : b.members) {
      ++p->step;
      if (p->master.defined()) p->param.detach().copy_(p->master);
    }
  }
  for (auto& p : params_) {
    const auto& grad = p.param.grad();
    if (!grad.defined()) continue;
    if (compat::use_fused_adamw(p.master.defined() ? p.master : p.param)) continue;  // done above
    const auto& group = groups_[p.group];
    at::Tensor target = p.master.defined() ? p.master : p.param.detach();
    if (!p.exp_avg.defined()) {
      p.exp_avg = at::zeros_like(target, at::MemoryFormat::Preserve);
      p.exp_avg_sq = at::zeros_like(target, at::MemoryFormat::Preserve);
    }
    ++p.step;
    const AdamWHyper h{group.base_lr * lr_factor_, cfg_.beta1, cfg_.beta2, cfg_.eps, group.weight_decay};
    adamw_update(target, grad, p.exp_avg, p.exp_avg_sq, p.step, h);
    if (p.master.defined()) p.param.detach().copy_(p.master);
  }
}

void AdamW::zero_grad(bool set_to_none) {
  for (auto& p : params_) {
    auto& g = p.param.mutable_grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      g = at::Tensor();
    } else {
      g.detach_();
      g.zero_();
    }
  }
}

std::vector<at::Tensor> AdamW::param_tensors() const {
  std::vector<at::Tensor> out;
  out.reserve(params_.size());
  for (const auto& p : params_) out.push_back(p.param);
  return out;
}

io::NamedTensors AdamW::state_tensors() const {
  io::NamedTensors out;
  for (const auto& p : params_) {
    if (p.exp_avg.defined()) {
      out.emplace_back(p.name + ".exp_avg",
                       p.exp_avg.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous());
      out.emplace_back(
          p.name + ".exp_avg_sq",
          p.exp_avg_sq.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous());
    }
    if (p.master.defined())
      out.emplace_back(p.name + ".master",
                       p.master.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous());
  }
  return out;
}

nlohmann::json AdamW::state_json() const {
  nlohmann::json j;
  j["format"] = "robometer.adamw";
  j["version"] = 1;
  j["hyper"] = {{"lr", cfg_.lr},
                {"beta1", cfg_.beta1},
                {"beta2", cfg_.beta2},
                {"eps", cfg_.eps},
                {"weight_decay", cfg_.weight_decay},
                {"fp32_master", cfg_.fp32_master},
                {"decay_1d_params", cfg_.decay_1d_params}};
  j["lr_factor"] = lr_factor_;
  j["groups"] = nlohmann::json::array();
  for (const auto& g : groups_) {
    nlohmann::json names = nlohmann::json::array();
    for (auto i : g.params) names.push_back(params_[i].name);
    j["groups"].push_back(
        {{"name", g.name}, {"base_lr", g.base_lr}, {"weight_decay", g.weight_decay}, {"params", names}});
  }
  j["steps"] = nlohmann::json::object();
  for (const auto& p : params_) j["steps"][p.name] = p.step;
  return j;
}

void AdamW::load_state(const io::NamedTensors& tensors, const nlohmann::json& state) {
  if (!state.is_object() || state.value("format", "") != "robometer.adamw")
    throw Error("optimizer state: not a robometer.adamw state (missing \"format\")");
  const auto& steps = state.at("steps");
  std::map<std::string, at::Tensor> by_name(tensors.begin(), tensors.end());
  std::set<std::string> own;
  for (const auto& p : params_) {
    own.insert(p.name);
    if (!steps.contains(p.name)) throw Error("optimizer state: no entry for parameter '" + p.name + "'");
  }
  for (const auto& [name, _] : steps.items()) {
    if (!own.count(name))
      throw Error("optimizer state: parameter '" + name + "' is not trainable in this model");
  }
  auto take = [&](const Param& p, const std::string& suffix, const at::Tensor& like,
                  bool required) -> at::Tensor {
    auto it = by_name.find(p.name + suffix);
    if (it == by_name.end()) {
      if (required) throw Error("optimizer state: missing tensor '" + p.name + suffix + "'");
      return {};
    }
    if (it->second.sizes() != like.sizes())
      throw Error("optimizer state: '" + p.name + suffix + "' has shape " + shape_str(it->second.sizes()) +
                  ", parameter has " + shape_str(like.sizes()));
    return it->second.to(like.device()).clone();
  };
  for (auto& p : params_) {
    p.step = steps.at(p.name).get<int64_t>();
    p.step_t = at::Tensor();  // re-made from `step` on the next fused step
    if (p.master.defined()) p.master.copy_(take(p, ".master", p.master, true));
    const auto& like = p.master.defined() ? p.master : p.param;
    p.exp_avg = take(p, ".exp_avg", like, p.step > 0);
    p.exp_avg_sq = take(p, ".exp_avg_sq", like, p.step > 0);
  }
  lr_factor_ = state.value("lr_factor", 1.0);
  const auto& h = state.at("hyper");
  auto check = [&](const char* key, double now) {
    const double saved = h.value(key, now);
    if (saved != now)
      spdlog::warn("optimizer: {} was {} in the checkpoint, now {} (using {})", key, saved, now, now);
  };
  check("lr", cfg_.lr);
  check("beta1", cfg_.beta1);
  check("beta2", cfg_.beta2);
  check("eps", cfg_.eps);
  check("weight_decay", cfg_.weight_decay);
}

}  // namespace robometer::train
