// Capturing and restoring random-number state for bitwise resume: LibTorch's default CPU
// generator, every CUDA device's default generator (when CUDA is present), and any standard
// <random> engine the caller holds (text form of operator<<).
#pragma once
#include <ATen/ATen.h>

#include <sstream>
#include <string>
#include <vector>

#include "robometer/core/error.h"
#include "robometer/io/safetensors.h"

namespace robometer::train {

struct RngState {
  at::Tensor cpu;                // uint8 state of at::detail::getDefaultCPUGenerator()
  std::vector<at::Tensor> cuda;  // uint8 state per CUDA device (empty without CUDA)
};

RngState capture_rng_state();
// Restores the CPU generator and the CUDA generators of the devices present in both the
// state and this process (a count mismatch is logged, not fatal: resuming on another machine).
void restore_rng_state(const RngState& s);

// As tensors for a safetensors file: "cpu", "cuda.0", "cuda.1", ...
io::NamedTensors rng_state_tensors(const RngState& s);
RngState rng_state_from_tensors(const io::NamedTensors& t);  // throws Error without "cpu"

// Text state of a <random> engine (std::mt19937, std::mt19937_64, ...).
template <class Engine>
std::string engine_state(const Engine& e) {
  std::ostringstream os;
  os << e;
  return os.str();
}

template <class Engine>
void restore_engine_state(Engine& e, const std::string& state) {
  std::istringstream is(state);
  Engine tmp;
  is >> tmp;
  if (is.fail())
    throw Error("rng state: cannot parse engine state of " + std::to_string(state.size()) + " characters");
  e = tmp;
}

}  // namespace robometer::train
