// Every place the training step reads a computed tensor value on the host goes through here:
// on a GPU each such read waits for the device to drain its queue (a host sync), so the step
// counts them. A read is counted by what it reads (a value the model, objective or optimizer
// computed), not by where the tensor lives, so CPU runs and tests count what a GPU run would.
// Reads of host-made data (the processor's ids, masks, grids, the batch's labels before they
// are copied) are not syncs and do not come here.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace robometer::core {

class HostSyncCounter {
 public:
  static HostSyncCounter& instance() {
    static HostSyncCounter c;
    return c;
  }
  void count(const char* site) {
    total_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lk(mu_);
    ++by_site_[site];
  }
  int64_t total() const { return total_.load(std::memory_order_relaxed); }
  std::map<std::string, int64_t> by_site() const {
    std::lock_guard<std::mutex> lk(mu_);
    return by_site_;
  }
  void reset() {
    std::lock_guard<std::mutex> lk(mu_);
    total_ = 0;
    by_site_.clear();
  }

 private:
  std::atomic<int64_t> total_{0};
  mutable std::mutex mu_;
  std::map<std::string, int64_t> by_site_;
};

// t.item<T>(), counted under `site`.
template <class T>
T host_value(const at::Tensor& t, const char* site) {
  HostSyncCounter::instance().count(site);
  return t.item<T>();
}

// A computed tensor read back whole (t.cpu()), counted under `site`.
inline at::Tensor host_copy(const at::Tensor& t, const char* site) {
  HostSyncCounter::instance().count(site);
  return t.cpu();
}

// Host-made data (ids, masks, grids) on the host: free when it is there already, a counted
// device-to-host copy when a caller moved it to a device.
inline at::Tensor on_host(const at::Tensor& t, const char* site) {
  if (!t.defined() || t.is_cpu()) return t;
  return host_copy(t, site);
}

}  // namespace robometer::core
