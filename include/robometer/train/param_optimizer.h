// The optimizer as the Trainer sees it. train/ provides the single-process AdamW (wrapped by
// LocalAdamW below); dist/ provides ShardedAdamW (ZeRO-1), which shards moments and fp32
// master weights across ranks. Clipping lives here because a sharded optimizer must reduce
// the squared norm across ranks.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>

#include "robometer/core/error.h"
#include "robometer/io/safetensors.h"
#include "robometer/train/optimizer.h"

namespace robometer::train {

class ParamOptimizer {
 public:
  virtual ~ParamOptimizer() = default;
  virtual void set_lr_factor(double factor) = 0;
  virtual double lr() const = 0;  // the first group's current lr (for logs)
  // Global L2 norm of all gradients (clipped to max_norm when > 0); non-finite is returned as is.
  virtual double clip_grad_norm(double max_norm) = 0;
  virtual void step() = 0;
  virtual void zero_grad() = 0;
  // This rank's optimizer state (all of it for LocalAdamW, the own shard for ShardedAdamW).
  virtual io::NamedTensors state_tensors() const = 0;
  virtual nlohmann::json state_json() const = 0;
  virtual void load_state(const io::NamedTensors& tensors, const nlohmann::json& state) = 0;
  // True when each rank holds a different part of the state (one file per rank).
  virtual bool sharded() const { return false; }
  // Resume on another world size: the state a sharded optimizer saved on `saved_world` ranks
  // (rank k's shard through json_of(k) / tensors_of(k), read only when needed), re-cut for
  // this rank. Only sharded optimizers can.
  virtual void load_resharded(int saved_world, const std::function<nlohmann::json(int)>& json_of,
                              const std::function<io::NamedTensors(int)>& tensors_of) {
    (void)json_of;
    (void)tensors_of;
    throw Error("optimizer state: saved sharded on " + std::to_string(saved_world) +
                " ranks; this run's optimizer is not sharded (resume with dist.shard: optimizer or "
                "gradients on several ranks)");
  }
};

class LocalAdamW final : public ParamOptimizer {
 public:
  LocalAdamW(const NamedParameters& params, AdamWConfig cfg) : adamw_(params, std::move(cfg)) {}
  void set_lr_factor(double f) override { adamw_.set_lr_factor(f); }
  double lr() const override { return adamw_.groups().empty() ? 0.0 : adamw_.group_lr(0); }
  double clip_grad_norm(double max_norm) override {
    return train::clip_grad_norm(adamw_.param_tensors(), max_norm);
  }
  void step() override { adamw_.step(); }
  void zero_grad() override { adamw_.zero_grad(); }
  io::NamedTensors state_tensors() const override { return adamw_.state_tensors(); }
  nlohmann::json state_json() const override { return adamw_.state_json(); }
  void load_state(const io::NamedTensors& t, const nlohmann::json& s) override { adamw_.load_state(t, s); }
  AdamW& impl() { return adamw_; }

 private:
  AdamW adamw_;
};

}  // namespace robometer::train
