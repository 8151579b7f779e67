// C10dWorld: the trainer's World over a c10d process group. Rendezvous through a TCPStore
// (rank 0 serves it at MASTER_ADDR:MASTER_PORT), then Gloo (CPU) or NCCL (CUDA, GPU build).
// Every wait uses the configured timeout; a timeout or a dead peer raises robometer::Error
// naming the operation, this rank and the cause (never a silent hang).
#pragma once
#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "robometer/dist/env.h"
#include "robometer/train/world.h"

namespace robometer::dist {

struct ProcessGroupConfig {
  std::string backend = "auto";  // auto (nccl when CUDA is available and compiled in), gloo, nccl
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};
};

// An asynchronous collective in flight.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;  // throws robometer::Error on failure/timeout
};

class C10dWorld final : public train::World {
 public:
  C10dWorld(const DistEnv& env, const ProcessGroupConfig& cfg);
  ~C10dWorld() override;
  C10dWorld(const C10dWorld&) = delete;  // owns the process group and its store
  C10dWorld& operator=(const C10dWorld&) = delete;

  int rank() const override { return env_.rank; }
  int size() const override { return env_.world_size; }
  int local_rank() const override { return env_.local_rank; }
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0) override;
  void all_reduce_sum(std::vector<at::Tensor>& tensors) override;
  void barrier() override;
  bool any(bool flag) override;

  const std::string& backend() const { return backend_; }  // "gloo" or "nccl"
  // Device the backend's tensors live on (CPU for gloo, cuda:local_rank for nccl).
  at::Device device() const;
  std::chrono::milliseconds timeout() const { return cfg_.timeout; }

  // In-place SUM all-reduce of one contiguous tensor, returned before completion.
  std::unique_ptr<PendingCollective> all_reduce_async(at::Tensor tensor, const std::string& what);
  // `out` ← this rank's slice of the element-wise sum of `flat` over ranks; flat.numel() must
  // be size() · out.numel(). NCCL: a reduce-scatter. Gloo (1.13 has no reduce_scatter): a full
  // all-reduce of `flat` then a copy of the slice (2× the bandwidth of a reduce-scatter;
  // `flat` is overwritten with the full sum).
  void reduce_scatter_sum(at::Tensor flat, at::Tensor out);
  // flat ← concatenation of every rank's `shard` (flat.numel() = size() · shard.numel()).
  void all_gather(at::Tensor flat, const at::Tensor& shard);

 private:
  struct Impl;
  DistEnv env_;
  ProcessGroupConfig cfg_;
  std::string backend_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace robometer::dist
