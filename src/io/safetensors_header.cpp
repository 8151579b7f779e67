// Validation of untrusted safetensors headers. No LibTorch here: this translation unit is what
// the fuzz target links.
#include "robometer/io/safetensors_header.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "robometer/core/error.h"

namespace robometer::io {

using nlohmann::json;

namespace {

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

// nlohmann's messages quote the offending bytes; keep the message printable ASCII and short.
std::string printable(const std::string& s, size_t max_len = 300) {
  std::string out;
  for (char c : s.substr(0, max_len)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (s.size() > max_len) out += "...";
  return out;
}

std::string quote_name(const std::string& name) { return "'" + printable(name, 200) + "'"; }

// Unsigned JSON integer (nlohmann stores non-negative integers as number_unsigned; negatives,
// fractions and integers beyond 2^64 are other types).
bool as_uint(const json& v, uint64_t& out) {
  if (!v.is_number_unsigned()) return false;
  out = v.get<uint64_t>();
  return true;
}

SafetensorsTensorInfo parse_entry(const std::string& path, const std::string& name, const json& entry,
                                  uint64_t data_size) {
  const std::string where = "tensor " + quote_name(name);
  if (!entry.is_object())
    throw FormatError(path, where + ": entry must be a JSON object, got " + entry.type_name());
  SafetensorsTensorInfo info;
  info.name = name;

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end()) throw FormatError(path, where + ": missing \"dtype\"");
  if (!dtype_it->is_string())
    throw FormatError(path, where + ": \"dtype\" must be a string, got " + dtype_it->type_name());
  info.dtype = dtype_it->get<std::string>();
  const size_t elem_size = safetensors_dtype_size(info.dtype);
  if (elem_size == 0) throw FormatError(path, where + ": unknown dtype " + quote_name(info.dtype));

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end()) throw FormatError(path, where + ": missing \"shape\"");
  if (!shape_it->is_array())
    throw FormatError(path, where + ": \"shape\" must be an array, got " + shape_it->type_name());
  // Element count of the non-zero dims, checked so that neither it nor the byte count can wrap
  // (a shape like [2^40, 2^40] must not pass as a small tensor).
  uint64_t count = 1;
  bool has_zero_dim = false;
  for (size_t i = 0; i < shape_it->size(); ++i) {
    uint64_t dim = 0;
    if (!as_uint((*shape_it)[i], dim))
      throw FormatError(path, where + ": shape[" + std::to_string(i) +
                                  "] must be a non-negative integer, got " +
                                  printable((*shape_it)[i].dump(), 60));
    if (dim > kInt64Max)
      throw FormatError(path, where + ": shape[" + std::to_string(i) + "] = " + std::to_string(dim) +
                                  " does not fit a signed 64-bit integer");
    info.shape.push_back(static_cast<int64_t>(dim));
    if (dim == 0) {
      has_zero_dim = true;
      continue;
    }
    uint64_t next = 0;
    if (__builtin_mul_overflow(count, dim, &next) || next > kInt64Max)
      throw FormatError(path, where + ": element count of shape overflows 64 bits");
    count = next;
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(count, static_cast<uint64_t>(elem_size), &nbytes))
    throw FormatError(path, where + ": byte size of shape overflows 64 bits");
  if (has_zero_dim) nbytes = 0;

  auto off_it = entry.find("data_offsets");
  if (off_it == entry.end()) throw FormatError(path, where + ": missing \"data_offsets\"");
  if (!off_it->is_array() || off_it->size() != 2)
    throw FormatError(path, where + ": \"data_offsets\" must be an array [begin, end], got " +
                                printable(off_it->dump(), 80));
  if (!as_uint((*off_it)[0], info.begin) || !as_uint((*off_it)[1], info.end))
    throw FormatError(path, where + ": \"data_offsets\" must hold two non-negative integers, got " +
                                printable(off_it->dump(), 80));
  if (info.begin > info.end)
    throw FormatError(path, where + ": data_offsets begin " + std::to_string(info.begin) + " is after end " +
                                std::to_string(info.end));
  if (info.end > data_size)
    throw FormatError(path, where + ": data_offsets end " + std::to_string(info.end) +
                                " is out of range: the data buffer has " + std::to_string(data_size) +
                                " bytes");
  if (info.end - info.begin != nbytes)
    throw FormatError(path, where + ": byte range [" + std::to_string(info.begin) + ", " +
                                std::to_string(info.end) + ") holds " +
                                std::to_string(info.end - info.begin) + " bytes but shape x dtype size (" +
                                info.dtype + ") needs " + std::to_string(nbytes));
  return info;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& meta) {
  std::map<std::string, std::string> out;
  if (meta.is_null()) return out;  // the reference writes/accepts an absent (None) map as null
  if (!meta.is_object())
    throw FormatError(path,
                      "\"__metadata__\" must be an object of strings, got " + std::string(meta.type_name()));
  for (const auto& [key, value] : meta.items()) {
    if (!value.is_string())
      throw FormatError(path, "\"__metadata__\" value for key " + quote_name(key) +
                                  " must be a string, got " + value.type_name());
    out[key] = value.get<std::string>();
  }
  return out;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8}};
  auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

json parse_json_strict(const std::string& path, const char* text, size_t len, int max_depth) {
  // One set of seen keys per open object; the callback sees keys before values.
  std::vector<std::set<std::string>> open_objects;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    if (depth > max_depth)
      throw FormatError(
          path, "JSON nesting deeper than " + std::to_string(max_depth) + " levels (not a valid header)");
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key: {
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open_objects.empty() && !open_objects.back().insert(key).second)
          throw FormatError(path, "duplicate key " + quote_name(key) + " in JSON");
        break;
      }
      default:
        break;
    }
    return true;
  };
  // nlohmann's lexer takes a NUL byte for the end of input, so "{}\0garbage" would pass.
  if (const void* nul = std::memchr(text, '\0', len))
    throw FormatError(path, "invalid JSON (NUL byte at offset " +
                                std::to_string(static_cast<const char*>(nul) - text) + ")");
  try {
    return json::parse(text, text + len, callback);
  } catch (const json::exception& e) {
    throw FormatError(path, "invalid JSON (" + printable(e.what()) + ")");
  }
}

SafetensorsHeader parse_safetensors_header(const std::string& path, const char* text, size_t len,
                                           uint64_t data_size) {
  // A valid header nests 3 levels: {name: {"shape": [dim]}}.
  json root = parse_json_strict(path, text, len, /*max_depth=*/3);
  if (!root.is_object())
    throw FormatError(path, "header must be a JSON object, got " + std::string(root.type_name()));

  SafetensorsHeader header;
  header.data_size = data_size;
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      header.metadata = parse_metadata(path, entry);
      continue;
    }
    header.tensors.push_back(parse_entry(path, name, entry, data_size));
  }

  // The byte ranges must tile the data buffer exactly: sorted by offset, each one starts where
  // the previous ended and the last ends at the buffer end.
  std::sort(header.tensors.begin(), header.tensors.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const SafetensorsTensorInfo* previous = nullptr;
  for (const auto& t : header.tensors) {
    if (t.begin < expected)
      throw FormatError(path, "tensor " + quote_name(t.name) + " bytes [" + std::to_string(t.begin) + ", " +
                                  std::to_string(t.end) + ") overlap tensor " + quote_name(previous->name) +
                                  " which ends at " + std::to_string(expected));
    if (t.begin > expected)
      throw FormatError(path, "gap in the data buffer: bytes [" + std::to_string(expected) + ", " +
                                  std::to_string(t.begin) + ") before tensor " + quote_name(t.name) +
                                  " belong to no tensor");
    expected = t.end;
    previous = &t;
  }
  if (expected != data_size)
    throw FormatError(path, "data buffer has " + std::to_string(data_size) +
                                " bytes but the tensors cover only " + std::to_string(expected) +
                                " (trailing bytes belong to no tensor)");
  return header;
}

void validate_safetensors_header(const std::string& path, const char* json_text, size_t json_len,
                                 uint64_t data_size) {
  (void)parse_safetensors_header(path, json_text, json_len, data_size);
}

SafetensorsHeader parse_safetensors_image(const std::string& path, const uint8_t* bytes, size_t size) {
  if (size < 8)
    throw FormatError(path,
                      "file is " + std::to_string(size) +
                          " bytes, shorter than the 8-byte header length field (not a safetensors file)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian u64
  if (n > kSafetensorsMaxHeaderBytes)
    throw FormatError(path, "header length " + std::to_string(n) + " exceeds the limit of " +
                                std::to_string(kSafetensorsMaxHeaderBytes) +
                                " bytes (corrupt or not a safetensors file)");
  if (n > size - 8)
    throw FormatError(path, "header length " + std::to_string(n) + " runs past the end of the file (" +
                                std::to_string(size - 8) + " bytes follow the length field)");
  SafetensorsHeader header = parse_safetensors_header(path, reinterpret_cast<const char*>(bytes + 8),
                                                      static_cast<size_t>(n), size - 8 - n);
  header.data_start = 8 + n;
  return header;
}

}  // namespace robometer::io
