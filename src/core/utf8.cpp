// Strict UTF-8 checking (Unicode 15, table 3-7 "well-formed byte sequences").
#include "robometer/core/utf8.h"

#include <cstdint>
#include <cstdio>

namespace robometer {
namespace {

// Length of the well-formed sequence starting at s[i], or 0 if it is ill-formed.
size_t sequence_length(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  uint8_t lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf)
    n = 2;
  else if (b0 == 0xe0)
    n = 3, lo = 0xa0;
  else if (b0 >= 0xe1 && b0 <= 0xec)
    n = 3;  // NOLINT(bugprone-branch-clone): Unicode Table 3-7, row by row
  else if (b0 == 0xed)
    n = 3, hi = 0x9f;  // no surrogates
  else if (b0 >= 0xee && b0 <= 0xef)
    n = 3;
  else if (b0 == 0xf0)
    n = 4, lo = 0x90;
  else if (b0 >= 0xf1 && b0 <= 0xf3)
    n = 4;
  else if (b0 == 0xf4)
    n = 4, hi = 0x8f;  // <= U+10FFFF
  else
    return 0;
  if (i + n > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  return n;
}

}  // namespace

size_t invalid_utf8_offset(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t n = sequence_length(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string::npos;
}

std::string printable_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = sequence_length(s, i);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(static_cast<uint8_t>(s[i])));
      out += buf;
      ++i;
    }
  }
  return out;
}

std::string utf8_problem(std::string_view s) {
  const size_t at = invalid_utf8_offset(s);
  if (at == std::string::npos) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "is not valid UTF-8 (byte 0x%02x at offset %zu)",
                static_cast<unsigned>(static_cast<uint8_t>(s[at])), at);
  return buf;
}

}  // namespace robometer
