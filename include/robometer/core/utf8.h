// UTF-8 validity for text that reaches JSON (manifests, reports): nlohmann::json refuses to
// dump invalid UTF-8, so such text is found and reported before it gets there.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace robometer {

// Offset of the first byte that does not start a well-formed UTF-8 sequence (overlong forms,
// surrogates and code points above U+10FFFF are ill-formed), or std::string::npos.
size_t invalid_utf8_offset(std::string_view s);
inline bool is_valid_utf8(std::string_view s) { return invalid_utf8_offset(s) == std::string::npos; }

// `s` with every byte of an ill-formed sequence written as \xHH (valid text is unchanged):
// safe to put into JSON and readable in a report.
std::string printable_utf8(std::string_view s);

// "" for valid text, else e.g. "is not valid UTF-8 (byte 0xff at offset 3)".
std::string utf8_problem(std::string_view s);

}  // namespace robometer
