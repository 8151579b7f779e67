// NumPy .npy arrays (format versions 1.0, 2.0, 3.0), as np.save writes them, for the
// original's /evaluate_batch_npy clients. Only the header is parsed up front, so dtype and
// shape can be checked against the request limits before any conversion allocates.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace robometer::serve {

struct NpyArray {
  std::string descr;  // e.g. "|u1", "<f4"
  std::vector<int64_t> shape;
  bool fortran_order = false;
  size_t itemsize = 0;
  const char* data = nullptr;  // points into the buffer given to parse_npy
  size_t nbytes = 0;           // == itemsize * product(shape), checked
};

// Throws ClientError 400 naming `what` on a bad magic, header, dtype (accepted: u1, i1 and
// little-endian u2/i2/u4/i4/u8/i8/f4/f8, bool) or a data size that does not match the shape.
NpyArray parse_npy(const std::string& bytes, const std::string& what);

// uint8 tensor of the array's shape (C order). Other dtypes are converted as the original's
// collator does: np.clip(x, 0, 255).astype(np.uint8) (floats truncated, NaN -> 0).
at::Tensor npy_to_uint8(const NpyArray& a);

// np.save of a uint8 C-order array (for tests and clients).
std::string npy_encode_uint8(const at::Tensor& t);

}  // namespace robometer::serve
