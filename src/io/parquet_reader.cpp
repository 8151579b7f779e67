// ParquetFile: footer, schema → leaf columns, and column-chunk reading (pages, codecs,
// levels, assembly into ColumnData).
#include <brotli/decode.h>
#include <fcntl.h>
#include <lz4.h>
#include <snappy.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>

#include "parquet_internal.h"
#include "robometer/core/error.h"

namespace robometer::io {

using namespace parquet;

const char* parquet_type_name(ParquetType t) {
  switch (t) {
    case ParquetType::Boolean:
      return "BOOLEAN";
    case ParquetType::Int32:
      return "INT32";
    case ParquetType::Int64:
      return "INT64";
    case ParquetType::Int96:
      return "INT96";
    case ParquetType::Float:
      return "FLOAT";
    case ParquetType::Double:
      return "DOUBLE";
    case ParquetType::ByteArray:
      return "BYTE_ARRAY";
    case ParquetType::FixedLenByteArray:
      return "FIXED_LEN_BYTE_ARRAY";
  }
  return "?";
}

namespace {

enum Codec {
  kUncompressed = 0,
  kSnappy = 1,
  kGzip = 2,
  kLzo = 3,
  kBrotli = 4,
  kLz4 = 5,
  kZstd = 6,
  kLz4Raw = 7
};

std::string codec_name(int codec) {
  static const char* const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
                                      "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};
  if (codec >= 0 && codec <= kLz4Raw) return names[codec];
  return std::to_string(codec) + " (not a Parquet codec)";
}

uint32_t u32be(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Parquet's deprecated LZ4 codec as Hadoop writes it: blocks of [u32 BE uncompressed size,
// u32 BE compressed size, raw LZ4 block]. False when the data is not framed that way.
bool lz4_hadoop(Span in, std::string& out) {
  size_t ip = 0, op = 0;
  while (ip < in.size) {
    if (in.size - ip < 8) return false;
    const uint32_t usize = u32be(in.data + ip), csize = u32be(in.data + ip + 4);
    ip += 8;
    if (csize > in.size - ip || usize > out.size() - op || csize > INT32_MAX || usize > INT32_MAX)
      return false;
    const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data + ip), out.data() + op,
                                      static_cast<int>(csize), static_cast<int>(usize));
    if (n < 0 || static_cast<uint32_t>(n) != usize) return false;
    ip += csize;
    op += usize;
  }
  return op == out.size();
}

bool lz4_block(Span in, std::string& out) {
  if (in.size > INT32_MAX || out.size() > INT32_MAX) return false;
  const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data), out.data(),
                                    static_cast<int>(in.size), static_cast<int>(out.size()));
  return n >= 0 && static_cast<size_t>(n) == out.size();
}

std::string decompress(int codec, Span in, size_t out_size) {
  std::string out(out_size, '\0');
  switch (codec) {
    case kUncompressed:
      if (in.size != out_size) corrupt("uncompressed page: compressed and uncompressed sizes differ");
      if (out_size) std::memcpy(out.data(), in.data, out_size);
      return out;
    case kSnappy: {
      size_t len = 0;
      const char* src = reinterpret_cast<const char*>(in.data);
      if (!snappy::GetUncompressedLength(src, in.size, &len) || len != out_size)
        corrupt("snappy page: bad header or size mismatch (header " + std::to_string(len) + ", page header " +
                std::to_string(out_size) + ")");
      if (!snappy::RawUncompress(src, in.size, out.data())) corrupt("snappy page: corrupt data");
      return out;
    }
    case kGzip: {
      z_stream zs{};
      if (inflateInit2(&zs, 15 + 32) != Z_OK) corrupt("gzip: inflateInit failed");
      zs.next_in = const_cast<Bytef*>(in.data);
      zs.avail_in = static_cast<uInt>(in.size);
      zs.next_out = reinterpret_cast<Bytef*>(out.data());
      zs.avail_out = static_cast<uInt>(out_size);
      int rc = Z_OK;
      while (rc == Z_OK) {
        rc = inflate(&zs, Z_FINISH);
        // A gzip stream may hold several members; continue after each one.
        if (rc == Z_STREAM_END && zs.avail_in > 0 && zs.avail_out > 0) rc = inflateReset(&zs);
        if (rc == Z_BUF_ERROR) break;
      }
      size_t produced = out_size - zs.avail_out;
      inflateEnd(&zs);
      if ((rc != Z_STREAM_END && rc != Z_BUF_ERROR) || produced != out_size)
        corrupt("gzip page: corrupt data or size mismatch (" + std::to_string(produced) + " of " +
                std::to_string(out_size) + " bytes)");
      return out;
    }
    case kZstd: {
      size_t n = ZSTD_decompress(out.data(), out_size, in.data, in.size);
      if (ZSTD_isError(n)) corrupt(std::string("zstd page: ") + ZSTD_getErrorName(n));
      if (n != out_size)
        corrupt("zstd page: " + std::to_string(n) + " bytes, page header says " + std::to_string(out_size));
      return out;
    }
    case kBrotli: {
      size_t n = out_size;
      if (BrotliDecoderDecompress(in.size, in.data, &n, reinterpret_cast<uint8_t*>(out.data())) !=
              BROTLI_DECODER_RESULT_SUCCESS ||
          n != out_size)
        corrupt("brotli page: corrupt data or size mismatch (page header says " + std::to_string(out_size) +
                " bytes)");
      return out;
    }
    case kLz4Raw:
      if (!lz4_block(in, out))
        corrupt("LZ4_RAW page: corrupt data or size mismatch (page header says " + std::to_string(out_size) +
                " bytes)");
      return out;
    case kLz4:
      // Hadoop framing first; early parquet-cpp wrote a bare block under the same codec id.
      if (!lz4_hadoop(in, out) && !lz4_block(in, out))
        corrupt("LZ4 page: neither Hadoop-framed nor a raw LZ4 block of " + std::to_string(out_size) +
                " bytes");
      return out;
    default:
      corrupt("codec " + codec_name(codec) +
              " is not supported (supported: UNCOMPRESSED, SNAPPY, GZIP, BROTLI, LZ4, ZSTD, LZ4_RAW)");
  }
}

// Byte source: a whole in-memory image or a file read with pread (thread-safe).
struct Source {
  std::string mem;
  int fd = -1;
  uint64_t size = 0;
  bool in_memory = false;
  Source() = default;
  Source(const Source&) = delete;  // owns fd: a copy would close it twice
  Source& operator=(const Source&) = delete;
  ~Source() {
    if (fd >= 0) ::close(fd);
  }
  std::string read(uint64_t offset, uint64_t len, const char* what) const {
    if (offset > size || len > size - offset)
      corrupt(std::string(what) + ": range [" + std::to_string(offset) + ", +" + std::to_string(len) +
              ") lies outside the file of " + std::to_string(size) + " bytes");
    if (in_memory) return mem.substr(static_cast<size_t>(offset), static_cast<size_t>(len));
    std::string out(static_cast<size_t>(len), '\0');
    uint64_t done = 0;
    while (done < len) {
      ssize_t n =
          ::pread(fd, out.data() + done, static_cast<size_t>(len - done), static_cast<off_t>(offset + done));
      if (n <= 0) corrupt(std::string(what) + ": read failed");
      done += static_cast<uint64_t>(n);
    }
    return out;
  }
};

template <class T>
std::vector<T>& vec(ParquetValues& v) {
  return std::get<std::vector<T>>(v);
}

}  // namespace

struct ParquetFile::Impl {
  std::string path;
  ParquetLimits limits;
  Source src;
  FileMeta meta;
  std::vector<ParquetColumn> columns;

  void open();
  void build_schema();
  void read_chunk(const ParquetColumn& col, const ColumnChunkMeta& cm, int64_t rg_rows, ColumnData& out,
                  int64_t& total_values) const;
};

// ------------------------------------------------------------------ footer and schema

void ParquetFile::Impl::open() {
  if (src.size < 12) corrupt("file of " + std::to_string(src.size) + " bytes is too small for Parquet");
  std::string head = src.read(0, 4, "magic");
  std::string tail = src.read(src.size - 8, 8, "footer");
  if (head != "PAR1" || tail.compare(4, 4, "PAR1") != 0)
    corrupt("missing PAR1 magic (not a Parquet file, or an encrypted one)");
  Cursor c{Span(tail)};
  uint32_t footer_len = c.u32le("footer length");
  if (footer_len > src.size - 12 || static_cast<int64_t>(footer_len) > limits.max_footer_bytes)
    corrupt("footer length " + std::to_string(footer_len) + " is out of range");
  std::string footer = src.read(src.size - 8 - footer_len, footer_len, "footer");
  meta = parse_file_metadata(Span(footer), limits.max_thrift_depth);
  if (meta.num_rows < 0) corrupt("negative num_rows");
  build_schema();
  int64_t rows = 0;
  for (size_t g = 0; g < meta.row_groups.size(); ++g) {
    const RowGroupMeta& rg = meta.row_groups[g];
    if (rg.num_rows < 0) corrupt("row group " + std::to_string(g) + " has negative num_rows");
    if (rg.columns.size() != columns.size())
      corrupt("row group " + std::to_string(g) + " has " + std::to_string(rg.columns.size()) +
              " column chunks, the schema has " + std::to_string(columns.size()) + " leaves");
    rows += rg.num_rows;
    if (rows > (int64_t{1} << 48)) corrupt("row count overflows");
  }
  if (rows != meta.num_rows)
    corrupt("row groups hold " + std::to_string(rows) + " rows, footer says " +
            std::to_string(meta.num_rows));
}

namespace {

// The logical type of a leaf from its LogicalType, or its ConvertedType in files that have only
// that (older writers); fills decimal/integer/time details and checks them.
void apply_logical_type(const SchemaElement& e, ParquetColumn& col) {
  static const char* const from_converted[] = {
      "STRING",  "MAP",       "MAP_KEY_VALUE", "LIST",    "ENUM",    "DECIMAL", "DATE",    "TIME",
      "TIME",    "TIMESTAMP", "TIMESTAMP",     "INTEGER", "INTEGER", "INTEGER", "INTEGER", "INTEGER",
      "INTEGER", "INTEGER",   "INTEGER",       "JSON",    "BSON",    "INTERVAL"};
  const int ct = e.converted_type;
  col.logical_type = e.logical_type;
  if (col.logical_type.empty() && ct >= 0 && ct <= 21) col.logical_type = from_converted[ct];
  if (col.logical_type == "DECIMAL") {
    col.decimal_scale = e.logical_scale >= 0 ? e.logical_scale : e.scale;
    col.decimal_precision = e.logical_scale >= 0 ? e.logical_precision : e.precision;
    if (col.decimal_scale < 0 || col.decimal_scale > 38)
      corrupt("schema: DECIMAL '" + col.path + "' has scale " + std::to_string(col.decimal_scale) +
              " (0 to 38 are supported)");
    const bool physical_ok = col.type == ParquetType::Int32 || col.type == ParquetType::Int64 ||
                             col.type == ParquetType::FixedLenByteArray || col.type == ParquetType::ByteArray;
    if (!physical_ok) corrupt("schema: DECIMAL '" + col.path + "' stored as " + parquet_type_name(col.type));
  } else if (col.logical_type == "INTEGER") {
    const bool logical = e.logical_type == "INTEGER";
    col.is_unsigned = logical ? !e.logical_signed : (ct >= 11 && ct <= 14);
    col.integer_bits = logical && e.logical_bit_width > 0 ? e.logical_bit_width
                       : ct >= 11 && ct <= 18             ? 8 << ((ct - 11) % 4)
                       : col.type == ParquetType::Int64   ? 64
                                                          : 32;
  } else if (col.logical_type == "TIME" || col.logical_type == "TIMESTAMP") {
    col.time_unit = !e.logical_unit.empty() ? e.logical_unit : (ct == 7 || ct == 9) ? "MILLIS" : "MICROS";
  }
}

}  // namespace

std::string ParquetColumn::type_name() const {
  std::string t = parquet_type_name(type);
  if (decimal_scale >= 0)
    return t + " DECIMAL(" + std::to_string(decimal_precision) + "," + std::to_string(decimal_scale) + ")";
  if (logical_type == "INTEGER") {  // shown when it says more than the physical type
    const int physical_bits = type == ParquetType::Int64 ? 64 : 32;
    if (!is_unsigned && integer_bits == physical_bits) return t;
    return t + (is_unsigned ? " UINT" : " INT") + std::to_string(integer_bits);
  }
  if (!time_unit.empty()) return t + " " + logical_type + "(" + time_unit + ")";
  if (!logical_type.empty()) return t + " " + logical_type;
  return t;
}

void ParquetFile::Impl::build_schema() {
  const auto& s = meta.schema;
  if (s.empty()) corrupt("empty schema");
  struct Frame {
    std::vector<std::string> parts, name_parts;
    int def = 0, rep = 0, repeated_def = 0;
  };
  auto add_leaf = [&](const SchemaElement& e, const Frame& f) {
    ParquetColumn col;
    col.path_parts = f.parts;
    for (size_t k = 0; k < f.parts.size(); ++k) col.path += (k ? "." : "") + f.parts[k];
    for (size_t k = 0; k < f.name_parts.size(); ++k) col.name += (k ? "." : "") + f.name_parts[k];
    if (e.type < 0 || e.type > 7) corrupt("schema: bad physical type for '" + col.path + "'");
    col.type = static_cast<ParquetType>(e.type);
    col.type_length = e.type_length;
    col.max_def = f.def;
    col.max_rep = f.rep;
    col.repeated_def = f.repeated_def;
    col.converted_type = e.converted_type;
    if (col.type == ParquetType::FixedLenByteArray && col.type_length <= 0)
      corrupt("schema: FIXED_LEN_BYTE_ARRAY '" + col.path + "' without a positive type_length");
    apply_logical_type(e, col);
    columns.push_back(std::move(col));
  };
  size_t next = 1;
  // Depth-first walk; `drop_name` hides list wrapper levels from the user-facing name.
  std::function<void(const Frame&, int, bool, int)> walk = [&](const Frame& parent, int count,
                                                               bool parent_is_list, int depth) {
    if (depth > 64) corrupt("schema nested deeper than 64 levels");
    for (int i = 0; i < count; ++i) {
      if (next >= s.size()) corrupt("schema: children counts exceed the element list");
      const SchemaElement& e = s[next++];
      Frame f = parent;
      f.parts.push_back(e.name);
      bool wrapper = false;
      if (e.repetition == 1) f.def++;
      if (e.repetition == 2) {
        f.def++;
        f.rep++;
        if (f.rep == 1) f.repeated_def = f.def;
        // The repeated child of a LIST group (and its single element child) is a wrapper.
        wrapper = parent_is_list;
      }
      if (e.repetition < 0 || e.repetition > 2) corrupt("schema: bad repetition type for '" + e.name + "'");
      if (!wrapper) f.name_parts.push_back(e.name);
      if (e.num_children > 0) {
        if (static_cast<size_t>(e.num_children) > s.size()) corrupt("schema: bad num_children");
        bool is_list = e.logical_type == "LIST" || e.converted_type == 3 /* LIST */;
        if (wrapper && e.num_children == 1) {
          // 3-level list: repeated group list { element } — element is a wrapper level too.
          Frame g = f;
          if (next >= s.size()) corrupt("schema: children counts exceed the element list");
          const SchemaElement& child = s[next];
          if (child.num_children <= 0) {
            ++next;
            g.parts.push_back(child.name);
            if (child.repetition == 1) g.def++;
            if (child.repetition == 2) corrupt("schema: nested repeated element '" + child.name + "'");
            add_leaf(child, g);
            continue;
          }
        }
        walk(f, e.num_children, is_list, depth + 1);
      } else {
        add_leaf(e, f);
      }
    }
  };
  if (s[0].num_children < 0) corrupt("schema root has a negative child count");
  walk(Frame{}, s[0].num_children, false, 0);
  if (next != s.size())
    corrupt("schema: " + std::to_string(s.size() - next) + " elements are not reachable from the root");
}

// ------------------------------------------------------------------ column chunks

namespace {

// Running state of one column while pages are appended.
struct Assembly {
  ColumnData& out;
  int64_t elements = 0;  // list columns: elements appended so far
  int64_t rows = 0;      // rows started in the current row group
};

template <class T>
void append_levels(const ParquetColumn& col, const std::vector<uint32_t>& rep,
                   const std::vector<uint32_t>& def, int64_t num_levels, const std::vector<T>& page_values,
                   Assembly& a) {
  auto& dst = vec<T>(a.out.values);
  size_t vi = 0;
  const uint32_t max_def = static_cast<uint32_t>(col.max_def);
  for (int64_t i = 0; i < num_levels; ++i) {
    uint32_t d = col.max_def ? def[static_cast<size_t>(i)] : 0;
    if (d > max_def) corrupt("definition level " + std::to_string(d) + " > max " + std::to_string(max_def));
    const bool present = d == max_def;
    if (present && vi >= page_values.size()) corrupt("page has fewer values than its levels say");
    if (!col.is_list()) {
      dst.push_back(present ? page_values[vi++] : T{});
      a.out.valid.push_back(present);
      ++a.rows;
      continue;
    }
    uint32_t r = rep[static_cast<size_t>(i)];
    if (r > static_cast<uint32_t>(col.max_rep)) corrupt("repetition level out of range");
    if (r == 0) {  // a new row
      a.out.offsets.push_back(a.elements);
      a.out.valid.push_back(d + 1 >= static_cast<uint32_t>(col.repeated_def));
      ++a.rows;
    } else if (a.out.offsets.empty()) {
      corrupt("column chunk starts in the middle of a list (repetition level > 0)");
    }
    if (d >= static_cast<uint32_t>(col.repeated_def)) {  // an element (maybe NULL)
      dst.push_back(present ? page_values[vi++] : T{});
      a.out.element_valid.push_back(present);
      ++a.elements;
    }
  }
}

}  // namespace

void ParquetFile::Impl::read_chunk(const ParquetColumn& col, const ColumnChunkMeta& cm, int64_t rg_rows,
                                   ColumnData& out, int64_t& total_values) const {
  if (!cm.has_meta) corrupt("column chunk has no metadata");
  if (!cm.file_path.empty())
    corrupt("column chunk lives in another file ('" + cm.file_path + "'): unsupported");
  if (cm.type != static_cast<int>(col.type)) corrupt("column chunk type differs from the schema type");
  if (cm.num_values < 0 || cm.total_compressed_size < 0) corrupt("negative num_values or size");
  if (cm.num_values > limits.max_column_values - total_values) corrupt("too many values in column");
  int64_t start = cm.data_page_offset;
  if (cm.dictionary_page_offset >= 4 && cm.dictionary_page_offset < start) start = cm.dictionary_page_offset;
  if (start < 4) corrupt("bad data page offset " + std::to_string(start));
  std::string chunk =
      src.read(static_cast<uint64_t>(start), static_cast<uint64_t>(cm.total_compressed_size), "column chunk");
  Cursor c{Span(chunk)};
  ParquetValues dict = make_values(col.type);
  bool have_dict = false;
  Assembly a{out};
  a.elements = static_cast<int64_t>(out.element_valid.size());
  int64_t levels_seen = 0;
  const int rep_bw = bit_width_for(static_cast<uint32_t>(col.max_rep));
  const int def_bw = bit_width_for(static_cast<uint32_t>(col.max_def));
  while (levels_seen < cm.num_values) {
    if (c.at_end())
      corrupt("column chunk ends after " + std::to_string(levels_seen) + " of " +
              std::to_string(cm.num_values) + " values");
    PageHeader h = parse_page_header(c, limits.max_thrift_depth);
    if (h.compressed_size > limits.max_page_bytes || h.uncompressed_size > limits.max_page_bytes)
      corrupt("page of " + std::to_string(std::max(h.compressed_size, h.uncompressed_size)) +
              " bytes exceeds the limit of " + std::to_string(limits.max_page_bytes));
    Span raw = c.span.sub(c.pos, static_cast<size_t>(h.compressed_size), "page data");
    c.pos += static_cast<size_t>(h.compressed_size);

    if (h.type == kDictionaryPage) {
      if (!h.has_dict_header) corrupt("dictionary page without its header");
      if (have_dict) corrupt("second dictionary page in one column chunk");
      if (h.encoding != kPlain && h.encoding != kPlainDictionary)
        corrupt(std::string("dictionary page encoding ") + encoding_name(h.encoding));
      if (h.num_values < 0 || h.num_values > limits.max_page_values) corrupt("bad dictionary size");
      std::string page = decompress(cm.codec, raw, static_cast<size_t>(h.uncompressed_size));
      decode_plain(Span(page), col.type, col.type_length, h.num_values, dict);
      have_dict = true;
      continue;
    }
    if (h.type != kDataPage && h.type != kDataPageV2) continue;  // index pages etc.
    if (h.type == kDataPage && !h.has_data_header) corrupt("data page without its header");
    if (h.type == kDataPageV2 && !h.has_v2_header) corrupt("data page v2 without its header");
    if (h.num_values < 0 || h.num_values > limits.max_page_values)
      corrupt("page claims " + std::to_string(h.num_values) + " values (limit " +
              std::to_string(limits.max_page_values) + ")");
    if (h.num_values > cm.num_values - levels_seen) corrupt("pages hold more values than the column chunk");
    const int64_t n = h.num_values;

    std::vector<uint32_t> rep, def;
    std::string page;  // owns decompressed bytes
    Span values_span;
    if (h.type == kDataPage) {
      page = decompress(cm.codec, raw, static_cast<size_t>(h.uncompressed_size));
      Cursor pc{Span(page)};
      if (col.max_rep > 0) {
        uint32_t len = pc.u32le("repetition levels length");
        decode_rle_hybrid(pc.span.sub(pc.pos, len, "repetition levels"), rep_bw, n, rep);
        pc.pos += len;
      }
      if (col.max_def > 0) {
        uint32_t len = pc.u32le("definition levels length");
        decode_rle_hybrid(pc.span.sub(pc.pos, len, "definition levels"), def_bw, n, def);
        pc.pos += len;
      }
      values_span = pc.span.sub(pc.pos, pc.remaining(), "values");
    } else {
      if (h.rep_levels_bytes < 0 || h.def_levels_bytes < 0 ||
          int64_t{h.rep_levels_bytes} + h.def_levels_bytes > h.compressed_size ||
          int64_t{h.rep_levels_bytes} + h.def_levels_bytes > h.uncompressed_size)
        corrupt("data page v2: level lengths exceed the page");
      size_t rl = static_cast<size_t>(h.rep_levels_bytes), dl = static_cast<size_t>(h.def_levels_bytes);
      if (col.max_rep > 0) decode_rle_hybrid(raw.sub(0, rl, "repetition levels"), rep_bw, n, rep);
      if (col.max_def > 0) decode_rle_hybrid(raw.sub(rl, dl, "definition levels"), def_bw, n, def);
      Span body = raw.sub(rl + dl, raw.size - rl - dl, "values");
      size_t body_size = static_cast<size_t>(h.uncompressed_size) - rl - dl;
      if (h.is_compressed && cm.codec != kUncompressed) {
        page = decompress(cm.codec, body, body_size);
        values_span = Span(page);
      } else {
        if (body.size != body_size) corrupt("data page v2: size mismatch");
        values_span = body;
      }
    }

    int64_t present = n;
    if (col.max_def > 0) present = std::count(def.begin(), def.end(), static_cast<uint32_t>(col.max_def));

    ParquetValues vals = make_values(col.type);
    switch (h.encoding) {
      case kPlain:
        decode_plain(values_span, col.type, col.type_length, present, vals);
        break;
      case kPlainDictionary:
      case kRleDictionary: {
        if (!have_dict) corrupt("dictionary-encoded page without a dictionary page");
        std::vector<uint32_t> idx;
        if (present > 0) {
          Cursor vc{values_span};
          int bw = vc.byte("dictionary index bit width");
          decode_rle_hybrid(values_span.sub(1, values_span.size - 1, "dictionary indices"), bw, present, idx);
        }
        std::visit(
            [&](auto& d) {
              using V = std::decay_t<decltype(d)>;
              auto& dst = std::get<V>(vals);
              dst.reserve(idx.size());
              for (uint32_t k : idx) {
                if (k >= d.size())
                  corrupt("dictionary index " + std::to_string(k) + " >= dictionary size " +
                          std::to_string(d.size()));
                dst.push_back(d[k]);
              }
            },
            dict);
        break;
      }
      case kRle: {
        if (col.type != ParquetType::Boolean) corrupt("RLE value encoding is only defined for BOOLEAN");
        Cursor vc{values_span};
        uint32_t len = vc.u32le("RLE boolean length");
        std::vector<uint32_t> bits;
        decode_rle_hybrid(values_span.sub(4, len, "RLE booleans"), 1, present, bits);
        auto& dst = vec<uint8_t>(vals);
        for (uint32_t b : bits) dst.push_back(static_cast<uint8_t>(b & 1));
        break;
      }
      case kDeltaBinaryPacked: {
        if (col.type != ParquetType::Int32 && col.type != ParquetType::Int64)
          corrupt("DELTA_BINARY_PACKED on a non-integer column");
        std::vector<int64_t> tmp;
        decode_delta_binary_packed(values_span, present, tmp, col.type == ParquetType::Int32);
        if (col.type == ParquetType::Int64) {
          vec<int64_t>(vals) = std::move(tmp);
        } else {
          auto& dst = vec<int32_t>(vals);
          for (int64_t v : tmp) dst.push_back(static_cast<int32_t>(v));
        }
        break;
      }
      case kDeltaLengthByteArray:
        if (col.type != ParquetType::ByteArray) corrupt("DELTA_LENGTH_BYTE_ARRAY on a non-BYTE_ARRAY column");
        decode_delta_length_byte_array(values_span, present, vec<std::string>(vals));
        break;
      case kDeltaByteArray:
        if (col.type != ParquetType::ByteArray && col.type != ParquetType::FixedLenByteArray)
          corrupt("DELTA_BYTE_ARRAY on a non-byte-array column");
        decode_delta_byte_array(values_span, present, vec<std::string>(vals));
        break;
      case kByteStreamSplit:
        decode_byte_stream_split(values_span, col.type, col.type_length, present, vals);
        break;
      default:
        corrupt(std::string("unsupported value encoding ") + encoding_name(h.encoding) + " (" +
                std::to_string(h.encoding) + ")");
    }
    std::visit(
        [&](auto& pv) {
          using V = typename std::decay_t<decltype(pv)>::value_type;
          append_levels<V>(col, rep, def, n, pv, a);
        },
        vals);
    levels_seen += n;
    ++out.data_pages;
  }
  total_values += levels_seen;
  if (a.rows != rg_rows)
    corrupt("column chunk holds " + std::to_string(a.rows) + " rows, row group says " +
            std::to_string(rg_rows));
}

// ------------------------------------------------------------------ ParquetFile

ParquetFile::ParquetFile() : impl_(std::make_unique<Impl>()) {}
ParquetFile::~ParquetFile() = default;
ParquetFile::ParquetFile(ParquetFile&&) noexcept = default;
ParquetFile& ParquetFile::operator=(ParquetFile&&) noexcept = default;

ParquetFile::ParquetFile(const std::string& path, ParquetLimits limits) : ParquetFile() {
  impl_->path = path;
  impl_->limits = limits;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(path, std::string("cannot open: ") + std::strerror(errno));
  impl_->src.fd = fd;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw FormatError(path, "not a regular file");
  impl_->src.size = static_cast<uint64_t>(st.st_size);
  try {
    impl_->open();
  } catch (const ParquetCorrupt& e) {
    throw FormatError(path, e.what());
  }
}

ParquetFile ParquetFile::from_memory(std::string bytes, const std::string& name, ParquetLimits limits) {
  ParquetFile f;
  f.impl_->path = name;
  f.impl_->limits = limits;
  f.impl_->src.size = bytes.size();
  f.impl_->src.mem = std::move(bytes);
  f.impl_->src.in_memory = true;
  try {
    f.impl_->open();
  } catch (const ParquetCorrupt& e) {
    throw FormatError(name, e.what());
  }
  return f;
}

const std::string& ParquetFile::path() const { return impl_->path; }
int64_t ParquetFile::num_rows() const { return impl_->meta.num_rows; }
int ParquetFile::num_row_groups() const { return static_cast<int>(impl_->meta.row_groups.size()); }
const std::vector<ParquetColumn>& ParquetFile::schema() const { return impl_->columns; }
std::string ParquetFile::created_by() const { return impl_->meta.created_by; }

std::vector<std::string> ParquetFile::column_names() const {
  std::vector<std::string> names;
  for (const auto& c : impl_->columns) names.push_back(c.name);
  return names;
}

const std::vector<std::pair<std::string, std::string>>& ParquetFile::key_value_metadata() const {
  return impl_->meta.key_value;
}

std::optional<std::string> ParquetFile::metadata(const std::string& key) const {
  for (const auto& kv : impl_->meta.key_value)
    if (kv.first == key) return kv.second;
  return std::nullopt;
}

const ParquetColumn* ParquetFile::find_column(const std::string& name) const {
  for (const auto& c : impl_->columns)
    if (c.name == name) return &c;
  for (const auto& c : impl_->columns)
    if (c.path == name) return &c;
  return nullptr;
}

ColumnData ParquetFile::read_column(const std::string& name) const {
  const ParquetColumn* col = find_column(name);
  if (!col) {
    std::string known;
    for (const auto& c : impl_->columns) known += (known.empty() ? "" : ", ") + c.name;
    throw Error(impl_->path + ": no column '" + name + "' (columns: " + known + ")");
  }
  if (col->max_rep > 1)
    throw Error(impl_->path + ": column '" + col->name + "' is a nested list (repetition level " +
                std::to_string(col->max_rep) + "); only one list level is supported");
  const size_t idx = static_cast<size_t>(col - impl_->columns.data());
  ColumnData out;
  out.column = *col;
  out.file = impl_->path;
  out.values = make_values(col->type);
  for (const RowGroupMeta& rg : impl_->meta.row_groups) out.row_group_rows.push_back(rg.num_rows);
  int64_t total_values = 0;
  for (size_t g = 0; g < impl_->meta.row_groups.size(); ++g) {
    const RowGroupMeta& rg = impl_->meta.row_groups[g];
    try {
      impl_->read_chunk(*col, rg.columns[idx], rg.num_rows, out, total_values);
    } catch (const ParquetCorrupt& e) {
      throw FormatError(impl_->path,
                        "column '" + col->name + "', row group " + std::to_string(g) + ": " + e.what());
    }
  }
  out.num_rows = static_cast<int64_t>(out.valid.size());
  if (col->is_list()) out.offsets.push_back(static_cast<int64_t>(out.element_valid.size()));
  return out;
}

// ------------------------------------------------------------------ ColumnData getters

namespace {

__extension__ typedef __int128 int128;
__extension__ typedef unsigned __int128 uint128;

// "row 5 (row group 1, row 2 of the group)": with many shards and groups, where a bad value is.
std::string row_text(const ColumnData& c, size_t row) {
  int64_t start = 0;
  const int64_t r = static_cast<int64_t>(row);
  for (size_t g = 0; g < c.row_group_rows.size(); ++g) {
    if (r < start + c.row_group_rows[g])
      return "row " + std::to_string(r) + " (row group " + std::to_string(g) + ", row " +
             std::to_string(r - start) + " of the group)";
    start += c.row_group_rows[g];
  }
  return "row " + std::to_string(r);
}

[[noreturn]] void shape_error(const ColumnData& c, const std::string& what) {
  throw FormatError(c.file.empty() ? std::string("<parquet>") : c.file,
                    "parquet column '" + c.column.name + "' (" + c.column.type_name() +
                        (c.is_list() ? ", list" : "") + "): " + what);
}

// A value that cannot be converted; the getter adds file, column and row.
struct BadValue {
  std::string what;
};

std::string int128_text(int128 v) {
  if (v == 0) return "0";
  const bool neg = v < 0;
  uint128 u = neg ? uint128(0) - uint128(v) : uint128(v);
  std::string s;
  for (; u; u /= 10) s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
  return neg ? "-" + s : s;
}

std::string decimal_text(int128 unscaled, int scale) {
  std::string digits = int128_text(unscaled);
  const bool negative = digits[0] == '-';
  if (negative) digits.erase(0, 1);
  if (scale > 0) {
    if (digits.size() <= static_cast<size_t>(scale))
      digits.insert(0, static_cast<size_t>(scale) + 1 - digits.size(), '0');
    digits.insert(digits.size() - static_cast<size_t>(scale), ".");
  }
  return (negative ? "-" : "") + digits;
}

int128 pow10_int(int scale) {
  int128 p = 1;
  for (int i = 0; i < scale; ++i) p *= 10;
  return p;
}

double pow10_double(int scale) {
  static const std::vector<double> table = [] {
    std::vector<double> t;
    for (int i = 0; i <= 22; ++i) t.push_back(std::pow(10.0, i));  // exact doubles
    return t;
  }();
  return table.at(static_cast<size_t>(scale));
}

// DECIMAL → the nearest double. One division is exact-then-rounded when both the unscaled
// value and 10^scale are exact doubles; otherwise the decimal text is parsed (strtod rounds
// correctly), which splitting into whole and fraction would not.
double decimal_to_double(int128 unscaled, int scale) {
  const int128 exact = int128(1) << 53;
  if (scale <= 22 && unscaled > -exact && unscaled < exact)
    return static_cast<double>(static_cast<int64_t>(unscaled)) / pow10_double(scale);
  return std::strtod(decimal_text(unscaled, scale).c_str(), nullptr);
}

bool is_temporal(const ParquetColumn& col) {
  return col.type == ParquetType::Int96 || col.logical_type == "DATE" || col.logical_type == "TIME" ||
         col.logical_type == "TIMESTAMP" || col.logical_type == "INTERVAL";
}

bool holds_bytes(const ColumnData& c) { return std::holds_alternative<std::vector<std::string>>(c.values); }

// Column-level checks of the numeric getters: dates and times are not plain numbers, and
// bytes are numbers only as a DECIMAL.
void require_numbers(const ColumnData& c, bool integers) {
  if (is_temporal(c.column))
    shape_error(c, "holds " +
                       (c.column.type == ParquetType::Int96 ? std::string("INT96 timestamps")
                                                            : c.column.logical_type + " values") +
                       ", not plain numbers (store seconds as a FLOAT, DOUBLE or DECIMAL column)");
  if (holds_bytes(c) && c.column.decimal_scale < 0) shape_error(c, "is not a numeric column");
  if (integers && (std::holds_alternative<std::vector<float>>(c.values) ||
                   std::holds_alternative<std::vector<double>>(c.values)))
    shape_error(c, "is not an integer column");
}

// The stored value as an exact integer: unsigned types reinterpreted, DECIMAL unscaled.
template <class T>
int128 exact_integer(const ParquetColumn& col, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {  // big-endian two's complement DECIMAL
    if (v.empty() || v.size() > 16)
      throw BadValue{"DECIMAL value of " + std::to_string(v.size()) + " bytes (1 to 16 are supported)"};
    uint128 u = (static_cast<unsigned char>(v[0]) & 0x80) ? ~uint128(0) : uint128(0);
    for (unsigned char b : v) u = (u << 8) | b;
    return static_cast<int128>(u);
  } else if constexpr (std::is_same_v<T, int32_t>) {
    return col.is_unsigned ? int128(static_cast<uint32_t>(v)) : int128(v);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return col.is_unsigned ? int128(static_cast<uint64_t>(v)) : int128(v);
  } else {
    return int128(v);  // BOOLEAN
  }
}

struct ToString {
  const ColumnData& c;
  template <class T>
  std::string operator()(const T&) const {
    shape_error(c, "is not a string column");
  }
  std::string operator()(const std::string& s) const { return s; }
};
struct ToInt {
  const ColumnData& c;
  template <class T>
  int64_t operator()(const T& v) const {
    if constexpr (std::is_floating_point_v<T>) {
      shape_error(c, "is not an integer column");
    } else {
      int128 x = exact_integer(c.column, v);
      if (c.column.decimal_scale > 0) {
        const int128 p = pow10_int(c.column.decimal_scale);
        if (x % p != 0)
          throw BadValue{"DECIMAL value " + decimal_text(x, c.column.decimal_scale) +
                         " is not a whole number"};
        x /= p;
      }
      if (x > INT64_MAX || x < INT64_MIN)
        throw BadValue{"value " + int128_text(x) + " does not fit in a signed 64-bit integer"};
      return static_cast<int64_t>(x);
    }
  }
};
struct ToDouble {
  const ColumnData& c;
  template <class T>
  double operator()(const T& v) const {
    if constexpr (std::is_floating_point_v<T>) {
      return static_cast<double>(v);
    } else {
      const int128 x = exact_integer(c.column, v);
      return c.column.decimal_scale >= 0 ? decimal_to_double(x, c.column.decimal_scale)
                                         : static_cast<double>(x);
    }
  }
};

template <class Out, class F>
std::vector<std::optional<Out>> optional_flat(const ColumnData& c, const char* want, F&& convert) {
  if (c.is_list()) shape_error(c, std::string("is a list column, not ") + want);
  std::vector<std::optional<Out>> out;
  out.reserve(c.valid.size());
  std::visit(
      [&](const auto& v) {
        for (size_t i = 0; i < v.size(); ++i) {
          if (!c.valid[i]) {
            out.emplace_back(std::nullopt);
            continue;
          }
          try {
            out.emplace_back(convert(v[i]));
          } catch (const BadValue& e) {
            shape_error(c, row_text(c, i) + ": " + e.what);
          }
        }
      },
      c.values);
  return out;
}

template <class Out>
std::vector<Out> required(const ColumnData& c, std::vector<std::optional<Out>> opt) {
  std::vector<Out> out;
  out.reserve(opt.size());
  for (size_t i = 0; i < opt.size(); ++i) {
    if (!opt[i]) shape_error(c, row_text(c, i) + " is NULL");
    out.push_back(std::move(*opt[i]));
  }
  return out;
}

}  // namespace

std::vector<std::optional<std::string>> ColumnData::optional_strings() const {
  if (column.decimal_scale >= 0) shape_error(*this, "is not a string column");
  return optional_flat<std::string>(*this, "strings", ToString{*this});
}
std::vector<std::optional<int64_t>> ColumnData::optional_int64s() const {
  require_numbers(*this, true);
  return optional_flat<int64_t>(*this, "integers", ToInt{*this});
}
std::vector<std::optional<double>> ColumnData::optional_doubles() const {
  require_numbers(*this, false);
  return optional_flat<double>(*this, "numbers", ToDouble{*this});
}
std::vector<std::string> ColumnData::strings() const { return required(*this, optional_strings()); }
std::vector<int64_t> ColumnData::int64s() const { return required(*this, optional_int64s()); }
std::vector<double> ColumnData::doubles() const { return required(*this, optional_doubles()); }

std::vector<std::vector<double>> ColumnData::double_lists() const {
  if (!is_list()) shape_error(*this, "is not a list column");
  require_numbers(*this, false);
  std::vector<std::vector<double>> out(static_cast<size_t>(num_rows));
  const ToDouble convert{*this};
  std::visit(
      [&](const auto& v) {
        for (size_t r = 0; r < out.size(); ++r) {
          for (int64_t k = offsets[r]; k < offsets[r + 1]; ++k) {
            if (!element_valid[static_cast<size_t>(k)])
              shape_error(*this, row_text(*this, r) + " holds a NULL element");
            try {
              out[r].push_back(convert(v[static_cast<size_t>(k)]));
            } catch (const BadValue& e) {
              shape_error(*this, row_text(*this, r) + ": " + e.what);
            }
          }
        }
      },
      values);
  return out;
}

std::vector<std::vector<float>> ColumnData::float_lists() const {
  std::vector<std::vector<float>> out;
  for (const auto& row : double_lists()) out.emplace_back(row.begin(), row.end());
  return out;
}

}  // namespace robometer::io
