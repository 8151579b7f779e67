#include "robometer/dist/grad_sync.h"
#include "robometer/core/compat.h"
#include "robometer/core/host_sync.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "robometer/core/error.h"

namespace robometer::dist {

BucketedGradSync::BucketedGradSync(std::shared_ptr<C10dWorld> world, double bucket_mb)
    : world_(std::move(world)), bucket_mb_(bucket_mb) {}

void BucketedGradSync::attach(const train::NamedParameters& params) {
  if (!slots_.empty()) throw Error("BucketedGradSync::attach called twice");
  const auto cap_bytes = static_cast<int64_t>(bucket_mb_ * 1024 * 1024);
  std::set<const void*> seen;  // tied weights appear once
  // Reverse registration order ≈ the order backward produces gradients.
  std::vector<int64_t> bucket_bytes;
  std::vector<std::pair<at::ScalarType, std::string>> bucket_kind;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const auto& [name, p] = *it;
    if (!p.requires_grad() || !seen.insert(p.unsafeGetTensorImpl()).second) continue;
    const auto kind = std::make_pair(p.scalar_type(), p.device().str());
    const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
    const bool full = !buckets_.empty() && bucket_bytes.back() > 0 && bucket_bytes.back() + bytes > cap_bytes;
    if (buckets_.empty() || bucket_kind.back() != kind || full) {
      buckets_.emplace_back();
      bucket_bytes.push_back(0);
      bucket_kind.push_back(kind);
    }
    Slot s;
    s.name = name;
    s.param = p;
    s.bucket = buckets_.size() - 1;
    s.offset = bucket_bytes.back() / static_cast<int64_t>(p.element_size());
    bucket_bytes.back() += bytes;
    buckets_.back().slots.push_back(slots_.size());
    slots_.push_back(std::move(s));
  }
  for (size_t b = 0; b < buckets_.size(); ++b) {
    const auto& first = slots_[buckets_[b].slots.front()].param;
    // One "has a gradient" count per slot after the gradients, reduced with them, so a
    // parameter no rank produced a gradient for keeps .grad undefined (as in one process).
    const auto numel = bucket_bytes[b] / static_cast<int64_t>(first.element_size());
    buckets_[b].grad_numel = numel;
    buckets_[b].flat = at::zeros({numel + static_cast<int64_t>(buckets_[b].slots.size())},
                                 first.options().requires_grad(false));
    buckets_[b].pending = buckets_[b].slots.size();
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i].param.register_hook([this, i](const at::Tensor& grad) {
      on_grad(i, grad);
      return at::Tensor();  // leave the gradient unchanged
    });
  }
  spdlog::info("grad sync: {} parameters in {} buckets of <= {} MB", slots_.size(), buckets_.size(),
               bucket_mb_);
}

void BucketedGradSync::before_backward(bool sync) {
  std::lock_guard<std::mutex> lock(mutex_);
  syncing_ = sync;
}

void BucketedGradSync::on_grad(size_t i, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!syncing_) return;  // accumulation micro-step: AccumulateGrad sums locally
  auto& s = slots_[i];
  if (s.ready)
    throw Error("grad sync: parameter '" + s.name +
                "' received two gradients in one synchronising backward (call backward once "
                "per micro-step)");
  auto& b = buckets_[s.bucket];
  robometer::compat::NoGradGuard no_grad;
  auto view = b.flat.slice(0, s.offset, s.offset + s.param.numel()).view(s.param.sizes());
  const auto& old = s.param.grad();
  if (old.defined()) {
    view.copy_(old);
    view.add_(grad);
  } else {
    view.copy_(grad);
  }
  b.flat[flag_index(i)] = 1;
  s.ready = true;
  if (--b.pending == 0) launch_ready_buckets();
}

int64_t BucketedGradSync::flag_index(size_t slot) const {
  const auto& b = buckets_[slots_[slot].bucket];
  const auto pos = std::find(b.slots.begin(), b.slots.end(), slot) - b.slots.begin();
  return b.grad_numel + pos;
}

void BucketedGradSync::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    auto& b = buckets_[next_launch_];
    b.work =
        world_->all_reduce_async(b.flat, "gradient all_reduce (bucket " + std::to_string(next_launch_) + ")");
    b.launched = true;
    ++next_launch_;
  }
}

void BucketedGradSync::finish() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!syncing_) throw Error("grad sync: finish() without a synchronising micro-step");
  // Parameters that got no gradient on this rank contribute zeros.
  for (auto& b : buckets_) {
    if (b.launched) continue;
    for (auto i : b.slots) {
      auto& s = slots_[i];
      if (s.ready) continue;
      auto view = b.flat.slice(0, s.offset, s.offset + s.param.numel());
      const auto& old = s.param.grad();  // from earlier accumulation micro-steps, if any
      if (old.defined()) {
        view.copy_(old.reshape({-1}));
        b.flat[flag_index(i)] = 1;
      } else {
        view.zero_();
        b.flat[flag_index(i)] = 0;
      }
    }
    b.pending = 0;
  }
  launch_ready_buckets();
  lock.unlock();
  const double inv = 1.0 / world_->size();
  robometer::compat::NoGradGuard no_grad;
  for (auto& b : buckets_) {
    b.work->wait();
    b.work.reset();
    auto flags = core::host_copy(b.flat.slice(0, b.grad_numel), "grad sync: which parameters have gradients")
                     .to(at::kFloat);
    b.flat.slice(0, 0, b.grad_numel).mul_(inv);
    for (size_t k = 0; k < b.slots.size(); ++k) {
      auto& s = slots_[b.slots[k]];
      if (flags[static_cast<int64_t>(k)].item<float>() == 0) {
        s.param.mutable_grad() = at::Tensor();  // no rank produced a gradient
        continue;
      }
      auto view = b.flat.slice(0, s.offset, s.offset + s.param.numel()).view(s.param.sizes());
      auto& g = s.param.mutable_grad();
      if (g.defined() && g.sizes() == s.param.sizes()) {
        g.copy_(view);
      } else {
        g = view.clone();
      }
    }
  }
  // Ready for the next step.
  lock.lock();
  for (auto& s : slots_) s.ready = false;
  for (auto& b : buckets_) {
    b.pending = b.slots.size();
    b.launched = false;
  }
  next_launch_ = 0;
  syncing_ = false;
}

std::vector<std::vector<std::string>> BucketedGradSync::bucket_layout() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& b : buckets_) {
    out.emplace_back();
    for (auto i : b.slots) out.back().push_back(slots_[i].name);
  }
  return out;
}

}  // namespace robometer::dist
