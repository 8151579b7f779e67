// ShardedGradSync: the gradient half of ZeRO-1/2, overlapped with backward. Trainable
// parameters are laid out as in FlatShards; buckets of about `bucket_mb` are contiguous ranges
// of that flat vector, filled in reverse order (≈ the order backward produces gradients). A
// hook on each parameter (as in BucketedGradSync: Tensor::register_hook, the same API in
// LibTorch 1.13 and 2.x) copies its gradient into its bucket; a full bucket is reduced at once
// (asynchronously, in bucket order on every rank) and, when it completes, each rank keeps
// only the part inside its own slice, ÷ world, in an fp32 gradient shard. ShardedAdamW reads
// that shard instead of reducing .grad itself.
//
// Modes:
//  - Optimizer (ZeRO-1): accumulation micro-steps sum locally in .grad (no communication);
//    the synchronising micro-step reduces .grad + its gradient. Numerically the reduction of
//    ShardedAdamW's own (non-overlapped) path: the same sums, the same ÷ world in the
//    gradients' dtype, so on two ranks bitwise the same state.
//  - Gradients (ZeRO-2): every micro-step is reduced and added to the fp32 shard, and .grad
//    is released as soon as the parameter's gradient is in a bucket, so no rank ever holds
//    the whole model's gradient: peak gradient memory is the buckets plus a parameter or two.
// Bucket buffers exist only from a bucket's first gradient until its reduction is folded into
// the shard, and at most two buckets are reduced while backward goes on (the oldest is waited
// for when a third is launched): a few buckets' memory, never a whole gradient copy.
// The reduction is an all-reduce of the bucket (then the own part is kept): LibTorch 1.13's
// Gloo has no reduce-scatter, and a bucket rarely splits evenly across ranks (a bucket lies
// inside one or two ranks' slices). See README "Distributed training" for the traffic.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "robometer/dist/flat_shards.h"
#include "robometer/dist/process_group.h"
#include "robometer/train/world.h"

namespace robometer::dist {

class ShardedGradSync final : public train::GradSync {
 public:
  enum class Mode { Optimizer, Gradients };
  ShardedGradSync(std::shared_ptr<C10dWorld> world, Mode mode, double bucket_mb = 25);
  void attach(const train::NamedParameters& params) override;
  void before_backward(bool sync) override;
  void finish() override;

  // After finish(): the averaged fp32 gradient of this rank's slice (shard_size elements,
  // zero past the end of the parameters) and, per FlatShards entry, whether any rank
  // produced a gradient for it this step. The optimizer may scale the shard in place.
  bool reduced() const { return reduced_; }
  at::Tensor& grad_shard() { return grad_shard_; }
  const std::vector<bool>& has_grad() const { return has_grad_; }
  // Ready for the next step (the optimizer calls it from zero_grad()).
  void clear();

  const FlatShards& layout() const { return layout_; }
  Mode mode() const { return mode_; }
  size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Slot {
    size_t entry = 0;  // in layout_.entries
    size_t bucket = 0;
    int64_t offset = 0;  // in the bucket's flat buffer
    int64_t flag = 0;    // index of its used-flag in the bucket's buffer
    bool ready = false;
  };
  struct Bucket {
    int64_t lo = 0, hi = 0;  // flat range [lo, hi)
    at::Tensor flat;         // gradients of [lo, hi), then one used-flag per slot
    std::vector<size_t> slots;
    size_t pending = 0;
    std::unique_ptr<PendingCollective> work;
  };
  void on_grad(size_t slot, const at::Tensor& grad);
  void allocate(Bucket& b);  // its buffer, on first use in a micro-step
  void launch_ready_buckets();
  void drain_oldest();         // wait for the oldest launched bucket, fold it into grad_shard_, free it
  void complete_micro_step();  // fill, launch and wait for every bucket, fold into grad_shard_
  void release_grads();
  void clear_locked();

  std::shared_ptr<C10dWorld> world_;
  Mode mode_;
  double bucket_mb_;
  FlatShards layout_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  static constexpr size_t kMaxInFlight = 2;
  size_t next_launch_ = 0, next_drain_ = 0;
  bool syncing_ = false;      // hooks copy gradients into buckets
  bool outstanding_ = false;  // a micro-step's buckets still to complete
  int micro_steps_ = 0;       // reduced into grad_shard_ since the last clear()
  bool reduced_ = false;
  std::vector<size_t> to_release_;  // Gradients: slots whose .grad AccumulateGrad has just set
  at::Tensor grad_shard_;
  std::vector<bool> has_grad_;
  std::mutex mutex_;  // hooks may run on autograd device threads
};

}  // namespace robometer::dist
