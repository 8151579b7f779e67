#include "robometer/train/rng_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <mutex>

namespace robometer::train {

namespace {

int cuda_devices() { return at::hasCUDA() ? static_cast<int>(at::getNumGPUs()) : 0; }

at::Tensor get_state(at::Generator gen) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state().clone();
}

void set_state(at::Generator gen, const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state.to(at::kCPU).contiguous());
}

}  // namespace

RngState capture_rng_state() {
  RngState s;
  s.cpu = get_state(at::detail::getDefaultCPUGenerator());
  for (int d = 0; d < cuda_devices(); ++d)
    s.cuda.push_back(get_state(at::globalContext().defaultGenerator(at::Device(at::kCUDA, d))));
  return s;
}

void restore_rng_state(const RngState& s) {
  if (!s.cpu.defined()) throw Error("rng state: no CPU generator state");
  set_state(at::detail::getDefaultCPUGenerator(), s.cpu);
  const int n = cuda_devices();
  if (static_cast<int>(s.cuda.size()) != n)
    spdlog::warn(
        "rng state: checkpoint has {} CUDA generator states, this process has {} "
        "devices; restoring the first {}",
        s.cuda.size(), n, std::min<int>(n, static_cast<int>(s.cuda.size())));
  for (int d = 0; d < n && d < static_cast<int>(s.cuda.size()); ++d)
    set_state(at::globalContext().defaultGenerator(at::Device(at::kCUDA, d)), s.cuda[d]);
}

io::NamedTensors rng_state_tensors(const RngState& s) {
  io::NamedTensors out;
  out.emplace_back("cpu", s.cpu);
  for (size_t d = 0; d < s.cuda.size(); ++d) out.emplace_back("cuda." + std::to_string(d), s.cuda[d]);
  return out;
}

RngState rng_state_from_tensors(const io::NamedTensors& t) {
  RngState s;
  std::map<std::string, at::Tensor> by_name(t.begin(), t.end());
  auto it = by_name.find("cpu");
  if (it == by_name.end()) throw Error("rng state: no 'cpu' tensor");
  s.cpu = it->second;
  for (size_t d = 0;; ++d) {
    auto c = by_name.find("cuda." + std::to_string(d));
    if (c == by_name.end()) break;
    s.cuda.push_back(c->second);
  }
  return s;
}

}  // namespace robometer::train
