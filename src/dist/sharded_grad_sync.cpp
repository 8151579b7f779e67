#include "robometer/dist/sharded_grad_sync.h"
#include "robometer/core/compat.h"
#include "robometer/core/host_sync.h"

#include <spdlog/spdlog.h>

#include "robometer/core/error.h"

namespace robometer::dist {

ShardedGradSync::ShardedGradSync(std::shared_ptr<C10dWorld> world, Mode mode, double bucket_mb)
    : world_(std::move(world)), mode_(mode), bucket_mb_(bucket_mb) {}

void ShardedGradSync::attach(const train::NamedParameters& params) {
  if (!slots_.empty()) throw Error("ShardedGradSync::attach called twice");
  layout_ = FlatShards::build(params, world_->rank(), world_->size());
  const int64_t elem = static_cast<int64_t>(c10::elementSize(layout_.dtype));
  const int64_t cap = std::max<int64_t>(1, static_cast<int64_t>(bucket_mb_ * 1024 * 1024) / elem);
  // Reverse order ≈ the order backward produces gradients; each bucket a contiguous range.
  for (size_t i = layout_.entries.size(); i-- > 0;) {
    const auto& e = layout_.entries[i];
    if (buckets_.empty() || (buckets_.back().hi - buckets_.back().lo) + e.numel > cap) {
      buckets_.emplace_back();
      buckets_.back().hi = e.offset + e.numel;
    }
    auto& b = buckets_.back();
    b.lo = e.offset;
    Slot s;
    s.entry = i;
    s.bucket = buckets_.size() - 1;
    b.slots.push_back(slots_.size());
    slots_.push_back(s);
  }
  for (auto& b : buckets_) {
    const int64_t n = b.hi - b.lo;
    // One "has a gradient" count per slot after the gradients, reduced with them, so a
    // parameter no rank produced a gradient for is skipped by the optimizer (as in one process).
    for (size_t k = 0; k < b.slots.size(); ++k) {
      auto& s = slots_[b.slots[k]];
      s.offset = layout_.entries[s.entry].offset - b.lo;
      s.flag = n + static_cast<int64_t>(k);
    }
    b.pending = b.slots.size();
  }
  grad_shard_ =
      at::zeros({layout_.shard_size}, at::TensorOptions().dtype(at::kFloat).device(world_->device()));
  has_grad_.assign(layout_.entries.size(), false);
  for (size_t i = 0; i < slots_.size(); ++i) {
    layout_.entries[slots_[i].entry].param.register_hook([this, i](const at::Tensor& grad) {
      on_grad(i, grad);
      return at::Tensor();  // leave the gradient unchanged
    });
  }
  spdlog::info("sharded grad sync ({}): {} parameters in {} buckets of <= {} MB, rank {} owns [{}, {}) of {}",
               mode_ == Mode::Gradients ? "ZeRO-2" : "ZeRO-1", slots_.size(), buckets_.size(), bucket_mb_,
               world_->rank(), layout_.shard_begin, layout_.shard_end, layout_.total);
}

void ShardedGradSync::before_backward(bool sync) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (reduced_) clear_locked();
  if (mode_ == Mode::Gradients) {
    // Every micro-step is reduced: finish the previous one before this backward refills the buckets.
    if (outstanding_) {
      lock.unlock();
      complete_micro_step();
      lock.lock();
    }
    syncing_ = true;
    outstanding_ = true;
    return;
  }
  syncing_ = sync;
  if (sync) outstanding_ = true;
}

void ShardedGradSync::on_grad(size_t i, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!syncing_) return;  // ZeRO-1 accumulation micro-step: AccumulateGrad sums locally
  auto& s = slots_[i];
  const auto& e = layout_.entries[s.entry];
  if (s.ready)
    throw Error("grad sync: parameter '" + e.name +
                "' received two gradients in one synchronising backward (call backward once "
                "per micro-step)");
  auto& b = buckets_[s.bucket];
  robometer::compat::NoGradGuard no_grad;
  allocate(b);
  auto view = b.flat.slice(0, s.offset, s.offset + e.numel).view(e.param.sizes());
  const auto& old = e.param.grad();
  // old + grad in the parameter's dtype: what AccumulateGrad would have left in .grad.
  if (old.defined())
    view.copy_(at::add(old, grad));
  else
    view.copy_(grad);
  b.flat[s.flag] = 1;
  s.ready = true;
  if (mode_ == Mode::Gradients) {
    // The parameters reported before this one have been through AccumulateGrad (it runs right
    // after its hook, and the engine runs a device's nodes one at a time): their .grad is in a
    // bucket and can go. This one's is set after we return; it goes at the next hook.
    release_grads();
    to_release_.push_back(s.entry);
  }
  if (--b.pending == 0) launch_ready_buckets();
}

void ShardedGradSync::release_grads() {
  for (auto entry : to_release_) layout_.entries[entry].param.mutable_grad() = at::Tensor();
  to_release_.clear();
}

void ShardedGradSync::allocate(Bucket& b) {
  if (b.flat.defined()) return;
  // Every slot and flag is written before the bucket is reduced: no need to zero it.
  b.flat = at::empty({(b.hi - b.lo) + static_cast<int64_t>(b.slots.size())},
                     at::TensorOptions().dtype(layout_.dtype).device(world_->device()));
}

void ShardedGradSync::launch_ready_buckets() {
  // In bucket order, so every rank issues the same collectives in the same sequence.
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    auto& b = buckets_[next_launch_];
    b.work = world_->all_reduce_async(
        b.flat, "sharded gradient reduce (bucket " + std::to_string(next_launch_) + ")");
    ++next_launch_;
    // Bounded overlap: at most kMaxInFlight buckets are reduced while backward goes on, so the
    // bucket buffers never add up to a whole gradient (the oldest is folded and freed).
    while (next_launch_ - next_drain_ > kMaxInFlight) drain_oldest();
  }
}

void ShardedGradSync::drain_oldest() {
  robometer::compat::NoGradGuard no_grad;
  auto& b = buckets_[next_drain_];
  b.work->wait();
  b.work.reset();
  const auto [a, e] = layout_.own_part(b.lo, b.hi);
  if (a < e) {
    auto part = b.flat.slice(0, a - b.lo, e - b.lo);
    part.div_(world_->size());  // the average, in the gradients' dtype (as DDP and ZeRO-1 do)
    auto dst = grad_shard_.slice(0, a - layout_.shard_begin, e - layout_.shard_begin);
    if (micro_steps_ == 0)
      dst.copy_(part);
    else
      dst.add_(part.to(at::kFloat));
  }
  const int64_t n = b.hi - b.lo;
  auto flags = core::host_copy(b.flat.slice(0, n), "sharded grad sync: which parameters have gradients")
                   .to(at::kFloat);
  for (size_t k = 0; k < b.slots.size(); ++k)
    if (flags[static_cast<int64_t>(k)].item<float>() > 0) has_grad_[slots_[b.slots[k]].entry] = true;
  b.flat = at::Tensor();  // back to the allocator
  ++next_drain_;
}

void ShardedGradSync::complete_micro_step() {
  std::unique_lock<std::mutex> lock(mutex_);
  robometer::compat::NoGradGuard no_grad;
  // Parameters that got no gradient in this backward contribute what .grad holds (earlier
  // ZeRO-1 accumulation micro-steps), else zeros with a 0 flag.
  for (auto& b : buckets_) {
    if (b.pending == 0) continue;
    allocate(b);
    for (auto k : b.slots) {
      auto& s = slots_[k];
      if (s.ready) continue;
      const auto& e = layout_.entries[s.entry];
      auto view = b.flat.slice(0, s.offset, s.offset + e.numel);
      const auto& old = e.param.grad();
      if (old.defined()) {
        view.copy_(old.reshape({-1}));
        b.flat[s.flag] = 1;
      } else {
        view.zero_();
        b.flat[s.flag] = 0;
      }
    }
    b.pending = 0;
  }
  launch_ready_buckets();
  while (next_drain_ < buckets_.size()) drain_oldest();
  // The gradients now live in grad_shard_ only.
  for (auto& s : slots_) {
    s.ready = false;
    layout_.entries[s.entry].param.mutable_grad() = at::Tensor();
  }
  to_release_.clear();
  for (auto& b : buckets_) b.pending = b.slots.size();
  next_launch_ = 0;
  next_drain_ = 0;
  outstanding_ = false;
  syncing_ = false;
  ++micro_steps_;
}

void ShardedGradSync::finish() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!outstanding_) throw Error("grad sync: finish() without a synchronising micro-step");
  }
  complete_micro_step();
  std::lock_guard<std::mutex> lock(mutex_);
  reduced_ = true;
}

void ShardedGradSync::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  clear_locked();
}

void ShardedGradSync::clear_locked() {
  reduced_ = false;
  micro_steps_ = 0;
  std::fill(has_grad_.begin(), has_grad_.end(), false);
}

}  // namespace robometer::dist
