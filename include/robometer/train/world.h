// The trainer's view of the process group. The Trainer never knows whether it runs on 1 or N
// ranks: gradient synchronisation and collective helpers sit behind these two interfaces,
// which dist/ implements with c10d (Gloo on CPU, NCCL on CUDA). LocalWorld is the 1-process
// no-op used when no distributed environment is present.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "robometer/train/named_parameters.h"

namespace robometer::train {

class World {
 public:
  virtual ~World() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;
  bool is_main() const { return rank() == 0; }
  // In-place collectives over every rank (tensors on the backend's device).
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root = 0) = 0;
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  virtual void barrier() = 0;
  // Any rank may ask for a coordinated stop (SIGTERM pre-emption); true on every rank once any
  // rank asked. Collective: every rank calls it at the same step.
  virtual bool any(bool flag) = 0;
};

class LocalWorld final : public World {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  void broadcast(std::vector<at::Tensor>&, int) override {}
  void all_reduce_sum(std::vector<at::Tensor>&) override {}
  void barrier() override {}
  bool any(bool flag) override { return flag; }
};

// Data-parallel gradient synchronisation.
class GradSync {
 public:
  virtual ~GradSync() = default;
  // Once, with the trainable parameters in registration order (buckets fill in reverse).
  virtual void attach(const NamedParameters& params) = 0;
  // Before each micro-step's backward; `sync` is false on gradient-accumulation micro-steps
  // (no communication then).
  virtual void before_backward(bool sync) = 0;
  // After the last micro-step's backward: waits for every bucket; gradients are averaged.
  virtual void finish() = 0;
};

class NoGradSync final : public GradSync {
 public:
  void attach(const NamedParameters&) override {}
  void before_backward(bool) override {}
  void finish() override {}
};

}  // namespace robometer::train
