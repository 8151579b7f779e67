// Internals of the Parquet reader shared by parquet_thrift.cpp, parquet_encodings.cpp and
// parquet_reader.cpp. Low-level code throws ParquetCorrupt (no path known there); the
// ParquetFile entry points catch it and rethrow FormatError(path, context + reason).
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "robometer/io/parquet.h"

namespace robometer::io::parquet {

struct ParquetCorrupt : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void corrupt(const std::string& what) { throw ParquetCorrupt(what); }

// A bounds-checked view over bytes.
struct Span {
  const uint8_t* data = nullptr;
  size_t size = 0;
  Span() = default;
  Span(const uint8_t* d, size_t n) : data(d), size(n) {}
  explicit Span(const std::string& s) : data(reinterpret_cast<const uint8_t*>(s.data())), size(s.size()) {}
  Span sub(size_t offset, size_t len, const char* what) const {
    if (offset > size || len > size - offset)
      corrupt(std::string(what) + ": needs " + std::to_string(len) + " bytes at offset " +
              std::to_string(offset) + " but only " + std::to_string(size) + " are available");
    return Span(data + offset, len);
  }
};

// Sequential reader over a Span.
struct Cursor {
  Span span;
  size_t pos = 0;
  explicit Cursor(Span s) : span(s) {}
  size_t remaining() const { return span.size - pos; }
  bool at_end() const { return pos >= span.size; }
  const uint8_t* take(size_t n, const char* what) {
    if (n > remaining())
      corrupt(std::string(what) + ": truncated (needs " + std::to_string(n) + " bytes, " +
              std::to_string(remaining()) + " left)");
    const uint8_t* p = span.data + pos;
    pos += n;
    return p;
  }
  uint8_t byte(const char* what) { return *take(1, what); }
  uint32_t u32le(const char* what) {
    const uint8_t* p = take(4, what);
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  }
  uint64_t uleb(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      uint8_t b = byte(what);
      if (shift == 63 && (b & 0x7e)) corrupt(std::string(what) + ": varint overflows 64 bits");
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    corrupt(std::string(what) + ": varint longer than 10 bytes");
  }
  int64_t zigzag(const char* what) {
    uint64_t v = uleb(what);
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
  }
};

// ------------------------------------------------------------------ metadata (Thrift)
struct SchemaElement {
  int type = -1;  // physical type, -1 for groups
  int type_length = 0;
  int repetition = 0;  // 0 REQUIRED, 1 OPTIONAL, 2 REPEATED
  std::string name;
  int num_children = 0;
  int converted_type = -1;
  int scale = 0, precision = 0;  // DECIMAL (converted-type form)
  std::string logical_type;
  // Details of the logical type: DECIMAL scale/precision, INTEGER width/signedness,
  // TIME/TIMESTAMP unit ("MILLIS", "MICROS", "NANOS").
  int logical_scale = -1, logical_precision = 0;
  int logical_bit_width = 0;
  bool logical_signed = true;
  std::string logical_unit;
};

struct ColumnChunkMeta {
  int type = -1;
  std::vector<std::string> path;
  int codec = 0;
  int64_t num_values = 0;
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = -1;
  int64_t dictionary_page_offset = -1;
  bool has_meta = false;
  std::string file_path;  // non-empty: data lives in another file (unsupported)
};

struct RowGroupMeta {
  std::vector<ColumnChunkMeta> columns;
  int64_t num_rows = 0;
};

struct FileMeta {
  int version = 0;
  std::vector<SchemaElement> schema;
  int64_t num_rows = 0;
  std::vector<RowGroupMeta> row_groups;
  std::vector<std::pair<std::string, std::string>> key_value;
  std::string created_by;
};

enum PageType { kDataPage = 0, kIndexPage = 1, kDictionaryPage = 2, kDataPageV2 = 3 };

struct PageHeader {
  int type = -1;
  int32_t uncompressed_size = -1;
  int32_t compressed_size = -1;
  // data page v1 / v2 / dictionary
  int32_t num_values = -1;
  int encoding = -1;
  // v2 only
  int32_t num_nulls = 0;
  int32_t num_rows = 0;
  int32_t def_levels_bytes = 0;
  int32_t rep_levels_bytes = 0;
  bool is_compressed = true;
  bool has_data_header = false, has_dict_header = false, has_v2_header = false;
};

// Parses FileMetaData from the footer bytes.
FileMeta parse_file_metadata(Span bytes, int max_depth);
// Parses one PageHeader at the cursor, advancing it.
PageHeader parse_page_header(Cursor& cur, int max_depth);

// ------------------------------------------------------------------ encodings
enum Encoding {
  kPlain = 0,
  kPlainDictionary = 2,
  kRle = 3,
  kBitPacked = 4,
  kDeltaBinaryPacked = 5,
  kDeltaLengthByteArray = 6,
  kDeltaByteArray = 7,
  kRleDictionary = 8,
  kByteStreamSplit = 9
};
const char* encoding_name(int e);

int bit_width_for(uint32_t max_value);

// RLE/bit-packed hybrid: appends exactly `count` values of `bit_width` bits to `out`.
void decode_rle_hybrid(Span data, int bit_width, int64_t count, std::vector<uint32_t>& out);

// PLAIN: `count` values of the physical type into `out` (the matching vector alternative).
// Returns the number of bytes consumed.
size_t decode_plain(Span data, ParquetType type, int type_length, int64_t count, ParquetValues& out);
// DELTA_BINARY_PACKED for INT32/INT64 (as int64). Returns bytes consumed.
size_t decode_delta_binary_packed(Span data, int64_t count, std::vector<int64_t>& out, bool is_int32);
size_t decode_delta_length_byte_array(Span data, int64_t count, std::vector<std::string>& out);
size_t decode_delta_byte_array(Span data, int64_t count, std::vector<std::string>& out);
void decode_byte_stream_split(Span data, ParquetType type, int type_length, int64_t count,
                              ParquetValues& out);

// An empty vector alternative matching the physical type.
ParquetValues make_values(ParquetType type);

}  // namespace robometer::io::parquet
