// Key/value cache of the text decoder for streaming (one per session), and the byte budget
// that all caches of a server draw from.
//
// Each layer keeps K and V as [kv_heads, capacity, head_dim] in the model dtype; `length`
// tokens are valid. Growth is geometric (x1.5, at least 256 tokens, never past max_tokens) so
// that appending T frames copies O(T) tokens in total. bytes() is what the tensors hold
// (capacity, not length): exactly what the budget is charged.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "robometer/core/error.h"

namespace robometer::model {

// Growing a cache past the budget: nothing was allocated.
class KvCacheBudgetExceeded : public Error {
 public:
  using Error::Error;
};

// A shared byte limit (<= 0: unlimited). Thread-safe.
class KvCacheBudget {
 public:
  explicit KvCacheBudget(int64_t limit_bytes = 0) : limit_(limit_bytes) {}
  bool try_reserve(int64_t bytes);
  void release(int64_t bytes) { used_ -= bytes; }
  int64_t used() const { return used_.load(); }
  int64_t limit() const { return limit_; }

 private:
  int64_t limit_;
  std::atomic<int64_t> used_{0};
};

class KvCache {
 public:
  // max_tokens <= 0: no limit on growth (only the budget's).
  KvCache(int64_t layers, int64_t kv_heads, int64_t head_dim, at::TensorOptions options,
          std::shared_ptr<KvCacheBudget> budget = nullptr, int64_t max_tokens = 0);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // Makes room for `extra` more tokens. Throws KvCacheBudgetExceeded (naming the need and the
  // limit) when the budget cannot cover the new tensors while the old ones still exist (the
  // copy's peak), or Error past max_tokens. The cache is unchanged when it throws.
  void reserve(int64_t extra);

  // Writes layer `layer`'s new keys/values k, v [kv_heads, n, head_dim] at [length, length+n)
  // and returns views of all keys/values [kv_heads, length+n, head_dim]. length() moves only at
  // commit(n), once every layer has written (a failed forward leaves the cache as it was).
  std::pair<at::Tensor, at::Tensor> write(int64_t layer, const at::Tensor& k, const at::Tensor& v);
  void commit(int64_t n);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t bytes() const { return capacity_ * bytes_per_token_; }
  int64_t bytes_per_token() const { return bytes_per_token_; }

 private:
  int64_t layers_, kv_heads_, head_dim_, max_tokens_;
  at::TensorOptions options_;
  std::shared_ptr<KvCacheBudget> budget_;
  std::vector<at::Tensor> k_, v_;
  int64_t length_ = 0, capacity_ = 0, bytes_per_token_ = 0;
};

}  // namespace robometer::model
