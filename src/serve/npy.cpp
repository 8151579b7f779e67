#include "robometer/serve/npy.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "robometer/serve/request_limits.h"

namespace robometer::serve {
namespace {

// A cursor over the header's Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
struct HeaderReader {
  const std::string& s;
  size_t i = 0;
  const std::string& what;
  [[noreturn]] void fail(const std::string& why) const {
    throw ClientError(400, what + ": bad .npy header (" + why + ")");
  }
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  std::string quoted() {
    ws();
    if (i >= s.size() || (s[i] != '\'' && s[i] != '"')) fail("expected a quoted string");
    const char q = s[i++];
    const size_t end = s.find(q, i);
    if (end == std::string::npos) fail("unterminated string");
    std::string v = s.substr(i, end - i);
    i = end + 1;
    return v;
  }
  bool boolean() {
    ws();
    if (s.compare(i, 4, "True") == 0) {
      i += 4;
      return true;
    }
    if (s.compare(i, 5, "False") == 0) {
      i += 5;
      return false;
    }
    fail("expected True or False");
  }
  std::vector<int64_t> tuple() {
    if (!eat('(')) fail("expected a shape tuple");
    std::vector<int64_t> v;
    while (!eat(')')) {
      ws();
      int64_t x = 0;
      size_t digits = 0;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (x > (INT64_C(1) << 40)) fail("shape dimension too large");
        x = x * 10 + (s[i++] - '0');
        ++digits;
      }
      if (digits == 0) fail("expected a non-negative integer in the shape");
      if (v.size() >= 8) fail("more than 8 dimensions");
      v.push_back(x);
      if (!eat(',')) {
        if (!eat(')')) fail("expected ',' or ')' in the shape");
        break;
      }
    }
    return v;
  }
};

template <typename T>
void convert(const char* src, size_t n, uint8_t* dst) {
  for (size_t k = 0; k < n; ++k) {
    T v;
    std::memcpy(&v, src + k * sizeof(T), sizeof(T));
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(v)) {
        dst[k] = 0;
        continue;
      }
      dst[k] = static_cast<uint8_t>(v <= 0 ? 0 : v >= 255 ? 255 : static_cast<int>(v));
    } else if constexpr (std::is_signed_v<T>) {
      dst[k] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
    } else {
      dst[k] = static_cast<uint8_t>(v > 255 ? 255 : v);
    }
  }
}

}  // namespace

NpyArray parse_npy(const std::string& bytes, const std::string& what) {
  static const char magic[] = "\x93NUMPY";
  if (bytes.size() < 10 || bytes.compare(0, 6, magic, 6) != 0)
    throw ClientError(400, what + ": not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw ClientError(400, what + ": truncated .npy header");
    header_len = 0;
    for (int k = 0; k < 4; ++k)
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + k])) << (8 * k);
    offset = 12;
  } else {
    throw ClientError(
        400, what + ": .npy format version " + std::to_string(major) + " is not supported (1, 2, 3 are)");
  }
  if (header_len > 65536 || offset + header_len > bytes.size())
    throw ClientError(400, what + ": truncated .npy header");
  const std::string header = bytes.substr(offset, header_len);
  HeaderReader r{header, 0, what};
  NpyArray a;
  bool have_descr = false, have_order = false, have_shape = false;
  if (!r.eat('{')) r.fail("expected '{'");
  while (!r.eat('}')) {
    const std::string key = r.quoted();
    if (!r.eat(':')) r.fail("expected ':'");
    if (key == "descr") {
      a.descr = r.quoted();
      have_descr = true;
    } else if (key == "fortran_order") {
      a.fortran_order = r.boolean();
      have_order = true;
    } else if (key == "shape") {
      a.shape = r.tuple();
      have_shape = true;
    } else
      r.fail("unexpected key '" + key + "'");
    if (!r.eat(',')) {
      if (!r.eat('}')) r.fail("expected ',' or '}'");
      break;
    }
  }
  if (!have_descr || !have_order || !have_shape) r.fail("needs 'descr', 'fortran_order' and 'shape'");
  static const std::pair<const char*, size_t> dtypes[] = {
      {"|u1", 1}, {"<u1", 1}, {"|i1", 1}, {"<i1", 1}, {"|b1", 1}, {"<u2", 2}, {"<i2", 2},
      {"<u4", 4}, {"<i4", 4}, {"<u8", 8}, {"<i8", 8}, {"<f4", 4}, {"<f8", 8}};
  for (const auto& [name, size] : dtypes)
    if (a.descr == name) a.itemsize = size;
  if (a.itemsize == 0)
    throw ClientError(
        400, what + ": .npy dtype '" + a.descr +
                 "' is not supported (use uint8 frames; little-endian integers and floats are converted)");
  size_t count = 1;
  for (int64_t d : a.shape)
    if (__builtin_mul_overflow(count, static_cast<size_t>(d), &count))
      throw ClientError(400, what + ": .npy shape overflows");
  size_t nbytes;
  if (__builtin_mul_overflow(count, a.itemsize, &nbytes))
    throw ClientError(400, what + ": .npy shape overflows");
  const size_t data_at = offset + header_len;
  if (bytes.size() - data_at != nbytes)
    throw ClientError(400, what + ": .npy data has " + std::to_string(bytes.size() - data_at) +
                               " bytes, its shape and dtype need " + std::to_string(nbytes));
  a.data = bytes.data() + data_at;
  a.nbytes = nbytes;
  return a;
}

at::Tensor npy_to_uint8(const NpyArray& a) {
  const size_t n = a.itemsize ? a.nbytes / a.itemsize : 0;
  std::vector<int64_t> shape = a.shape;
  if (a.fortran_order) std::reverse(shape.begin(), shape.end());
  at::Tensor t = at::empty(shape, at::kByte);
  uint8_t* dst = t.data_ptr<uint8_t>();
  const std::string& d = a.descr;
  if (d == "|u1" || d == "<u1")
    std::memcpy(dst, a.data, n);
  else if (d == "|b1")
    convert<uint8_t>(a.data, n, dst);
  else if (d == "|i1" || d == "<i1")
    convert<int8_t>(a.data, n, dst);
  else if (d == "<u2")
    convert<uint16_t>(a.data, n, dst);
  else if (d == "<i2")
    convert<int16_t>(a.data, n, dst);
  else if (d == "<u4")
    convert<uint32_t>(a.data, n, dst);
  else if (d == "<i4")
    convert<int32_t>(a.data, n, dst);
  else if (d == "<u8")
    convert<uint64_t>(a.data, n, dst);
  else if (d == "<i8")
    convert<int64_t>(a.data, n, dst);
  else if (d == "<f4")
    convert<float>(a.data, n, dst);
  else if (d == "<f8")
    convert<double>(a.data, n, dst);
  if (!a.fortran_order) return t;
  // Fortran order: the first index varies fastest, i.e. the reversed shape in C order.
  std::vector<int64_t> perm(shape.size());
  for (size_t k = 0; k < perm.size(); ++k) perm[k] = static_cast<int64_t>(perm.size() - 1 - k);
  return t.permute(perm).contiguous();
}

std::string npy_encode_uint8(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  std::string shape;
  for (int64_t d : c.sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  if (c.dim() == 1) shape += ",";  // numpy writes a one-element tuple as (n,)
  std::string header = "{'descr': '|u1', 'fortran_order': False, 'shape': (" + shape + "), }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>((header.size() >> 8) & 0xFF);
  out += header;
  out.append(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
  return out;
}

}  // namespace robometer::serve
