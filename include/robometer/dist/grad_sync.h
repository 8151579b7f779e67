// BucketedGradSync: data-parallel gradient averaging that overlaps communication with backward
// (the part of PyTorch's DDP Reducer the trainer needs).
//
// Parameters are packed, in reverse registration order (≈ the order backward produces their
// gradients), into flat buckets of about `bucket_mb` (one dtype/device per bucket). A hook on
// each parameter (Tensor::register_hook on the leaf: it runs just before AccumulateGrad, with
// this backward's gradient g while .grad still holds earlier micro-steps' sum) copies
// g + .grad into the parameter's slot of its bucket on the synchronising micro-step. When every
// parameter of a bucket has reported, the bucket's all-reduce starts asynchronously — in bucket
// index order, so every rank issues the same collectives in the same sequence even when
// gradients arrive in a different order. finish() zero-fills the slots of parameters that got
// no gradient this step (unused on this rank), launches the remaining buckets, waits, divides
// by the world size and writes the averaged gradients into .grad.
// Why a tensor hook rather than an AccumulateGrad post-hook: register_hook has the same API
// in LibTorch 1.13 and 2.x, and copying into the bucket means .grad never aliases a buffer
// that is being reduced (AccumulateGrad may write .grad in place after the hook).
// Cost: one bucket copy of the gradients (same as DDP without gradient_as_bucket_view).
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "robometer/dist/process_group.h"
#include "robometer/train/world.h"

namespace robometer::dist {

class BucketedGradSync final : public train::GradSync {
 public:
  BucketedGradSync(std::shared_ptr<C10dWorld> world, double bucket_mb = 25);
  void attach(const train::NamedParameters& params) override;
  void before_backward(bool sync) override;
  void finish() override;

  size_t bucket_count() const { return buckets_.size(); }
  // Parameter names per bucket (for tests / logs).
  std::vector<std::vector<std::string>> bucket_layout() const;

 private:
  struct Slot {
    std::string name;
    at::Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;  // in the bucket's flat buffer
    bool ready = false;
  };
  struct Bucket {
    at::Tensor flat;  // gradients, then one used-flag per slot
    int64_t grad_numel = 0;
    std::vector<size_t> slots;
    size_t pending = 0;  // slots not ready yet
    std::unique_ptr<PendingCollective> work;
    bool launched = false;
  };
  void on_grad(size_t slot, const at::Tensor& grad);
  void launch_ready_buckets();
  int64_t flag_index(size_t slot) const;  // in index order, stops at the first not-ready bucket

  std::shared_ptr<C10dWorld> world_;
  double bucket_mb_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  bool syncing_ = false;
  std::mutex mutex_;  // hooks may run on autograd device threads
};

}  // namespace robometer::dist
