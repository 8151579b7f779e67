// libFuzzer target: a whole safetensors file image (8-byte length + header + data) goes through
// the validator. A FormatError is the expected outcome for bad input; anything else (another
// exception, a sanitizer report, a broken invariant on an accepted file) is a bug.
#include <cstdint>
#include <cstdlib>

#include "robometer/core/error.h"
#include "robometer/io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace robometer::io;
  SafetensorsHeader header;
  try {
    header = parse_safetensors_image("fuzz.safetensors", data, size);
  } catch (const robometer::Error&) {
    return 0;
  }
  // Accepted: the guarantees readers rely on must hold. Reading every tensor's bytes lets ASan
  // prove the validated ranges lie inside the input.
  if (header.data_start + header.data_size != size) std::abort();
  uint64_t expected_begin = 0;
  volatile uint8_t sink = 0;
  for (const auto& t : header.tensors) {
    if (t.begin != expected_begin || t.end < t.begin || t.end > header.data_size) std::abort();
    uint64_t count = 1;
    for (int64_t d : t.shape) {
      if (d < 0) std::abort();
      count *= static_cast<uint64_t>(d);
    }
    if (count * safetensors_dtype_size(t.dtype) != t.end - t.begin) std::abort();
    const uint8_t* p = data + header.data_start + t.begin;
    for (uint64_t i = 0; i < t.end - t.begin; ++i) sink = sink ^ p[i];
    expected_begin = t.end;
  }
  if (expected_begin != header.data_size) std::abort();
  return 0;
}
