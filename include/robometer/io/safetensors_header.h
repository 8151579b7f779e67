// The torch-free half of safetensors: parsing and validating the header of an untrusted file
// image. Kept apart from safetensors.h (which needs ATen) so that the fuzz target and other
// torch-free tools can link it alone.
//
// File layout: u64 little-endian N | N bytes of UTF-8 JSON | data buffer.
// JSON: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//        "__metadata__": {"<key>": "<string>"}}   offsets are relative to the data buffer.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace robometer::io {

// Same cap as the reference implementation (MAX_HEADER_SIZE = 100,000,000 bytes), so a
// corrupt length field cannot make us allocate or parse gigabytes.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsTensorInfo {
  std::string name;
  std::string dtype;           // as written in the file: "F32", "BF16", ...
  std::vector<int64_t> shape;  // every dim fits int64 and so does the element count
  uint64_t begin = 0;          // byte range within the data buffer
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<SafetensorsTensorInfo> tensors;  // sorted by data offset (file order)
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // offset of the data buffer in the file (8 + N)
  uint64_t data_size = 0;
};

// Bytes per element of a safetensors dtype name (all names the reference defines, including
// those LibTorch 1.13 cannot hold such as U16 or F8_E4M3); 0 when the name is unknown.
size_t safetensors_dtype_size(const std::string& dtype);

// Parses a header (the JSON bytes after the 8-byte length) describing a data buffer of
// `data_size` bytes. Throws FormatError(path, reason) on: invalid UTF-8/JSON, a non-object,
// duplicate keys, nesting deeper than the format allows, entries that are not objects, a missing
// or mistyped dtype/shape/data_offsets, unknown dtypes, negative or non-integer dims, element
// counts that overflow, byte ranges that are out of bounds, overlapping, leave gaps or do not
// match shape x dtype size, and metadata that is not a string->string map.
SafetensorsHeader parse_safetensors_header(const std::string& path, const char* json, size_t json_len,
                                           uint64_t data_size);

// The same checks, result discarded.
void validate_safetensors_header(const std::string& path, const char* json, size_t json_len,
                                 uint64_t data_size);

// Parses a whole file image (length prefix + header + data): additionally rejects files shorter
// than 8 bytes, a header length above kSafetensorsMaxHeaderBytes and one that runs past the end.
SafetensorsHeader parse_safetensors_image(const std::string& path, const uint8_t* bytes, size_t size);

// JSON parsing that rejects duplicate object keys (nlohmann::json silently keeps the last one)
// and nesting deeper than `max_depth`. Throws FormatError(path, ...). Used for the header and
// the sharded-set index.
nlohmann::json parse_json_strict(const std::string& path, const char* text, size_t len, int max_depth = 64);

}  // namespace robometer::io
