#include "robometer/model/kv_cache.h"

#include <algorithm>
#include <string>

namespace robometer::model {

bool KvCacheBudget::try_reserve(int64_t bytes) {
  int64_t cur = used_.load();
  do {
    if (limit_ > 0 && cur + bytes > limit_) return false;
  } while (!used_.compare_exchange_weak(cur, cur + bytes));
  return true;
}

KvCache::KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, at::TensorOptions options,
                 std::shared_ptr<KvCacheBudget> budget, int64_t max_tokens)
    : layers_(layers),
      kv_heads_(kv_heads),
      head_dim_(head_dim),
      max_tokens_(max_tokens),
      options_(options),
      budget_(std::move(budget)) {
  if (layers < 1 || kv_heads < 1 || head_dim < 1) throw Error("kv cache: bad dimensions");
  bytes_per_token_ = 2 * layers_ * kv_heads_ * head_dim_ * static_cast<int64_t>(options_.dtype().itemsize());
}

KvCache::~KvCache() {
  if (budget_) budget_->release(bytes());
}

void KvCache::reserve(int64_t extra) {
  const int64_t need = length_ + extra;
  if (need <= capacity_) return;
  if (max_tokens_ > 0 && need > max_tokens_)
    throw Error("kv cache: " + std::to_string(need) + " tokens needed, the session limit is " +
                std::to_string(max_tokens_));
  int64_t cap = std::max({need, capacity_ + std::max<int64_t>(capacity_ / 2, 256)});
  if (max_tokens_ > 0) cap = std::min(cap, max_tokens_);
  const int64_t new_bytes = cap * bytes_per_token_;
  if (budget_ && !budget_->try_reserve(new_bytes))
    throw KvCacheBudgetExceeded("kv cache budget exceeded: growing a session's cache to " +
                                std::to_string(cap) + " tokens needs " + std::to_string(new_bytes) +
                                " bytes, " + std::to_string(budget_->used()) + " of " +
                                std::to_string(budget_->limit()) + " are in use (serve --kv-cache-mb)");
  try {
    std::vector<at::Tensor> k, v;
    for (int64_t l = 0; l < layers_; ++l) {
      k.push_back(at::empty({kv_heads_, cap, head_dim_}, options_));
      v.push_back(at::empty({kv_heads_, cap, head_dim_}, options_));
      if (length_ > 0) {
        k.back().narrow(1, 0, length_).copy_(k_[l].narrow(1, 0, length_));
        v.back().narrow(1, 0, length_).copy_(v_[l].narrow(1, 0, length_));
      }
    }
    k_ = std::move(k);
    v_ = std::move(v);
  } catch (...) {
    if (budget_) budget_->release(new_bytes);
    throw;
  }
  if (budget_) budget_->release(bytes());  // the old tensors are gone
  capacity_ = cap;
}

std::pair<at::Tensor, at::Tensor> KvCache::write(int64_t layer, const at::Tensor& k, const at::Tensor& v) {
  const int64_t n = k.size(1);
  if (length_ + n > capacity_) throw Error("kv cache: write past the reserved capacity (reserve() first)");
  k_[layer].narrow(1, length_, n).copy_(k);
  v_[layer].narrow(1, length_, n).copy_(v);
  return {k_[layer].narrow(1, 0, length_ + n), v_[layer].narrow(1, 0, length_ + n)};
}

void KvCache::commit(int64_t n) {
  if (length_ + n > capacity_) throw Error("kv cache: commit past the capacity");
  length_ += n;
}

}  // namespace robometer::model
