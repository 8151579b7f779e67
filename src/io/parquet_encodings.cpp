// Parquet value and level encodings (https://parquet.apache.org/docs/file-format/data-pages/encodings/).
// Every function checks the claimed counts against the bytes at hand before allocating.
#include <algorithm>

#include "parquet_internal.h"

namespace robometer::io::parquet {

const char* encoding_name(int e) {
  switch (e) {
    case kPlain:
      return "PLAIN";
    case kPlainDictionary:
      return "PLAIN_DICTIONARY";
    case kRle:
      return "RLE";
    case kBitPacked:
      return "BIT_PACKED";
    case kDeltaBinaryPacked:
      return "DELTA_BINARY_PACKED";
    case kDeltaLengthByteArray:
      return "DELTA_LENGTH_BYTE_ARRAY";
    case kDeltaByteArray:
      return "DELTA_BYTE_ARRAY";
    case kRleDictionary:
      return "RLE_DICTIONARY";
    case kByteStreamSplit:
      return "BYTE_STREAM_SPLIT";
    default:
      return "unknown encoding";
  }
}

int bit_width_for(uint32_t max_value) {
  int w = 0;
  while (max_value) {
    ++w;
    max_value >>= 1;
  }
  return w;
}

ParquetValues make_values(ParquetType type) {
  switch (type) {
    case ParquetType::Boolean:
      return std::vector<uint8_t>{};
    case ParquetType::Int32:
      return std::vector<int32_t>{};
    case ParquetType::Int64:
      return std::vector<int64_t>{};
    case ParquetType::Float:
      return std::vector<float>{};
    case ParquetType::Double:
      return std::vector<double>{};
    default:
      return std::vector<std::string>{};
  }
}

namespace {

// `n` values of `bw` (0..64) bits each, packed LSB first, starting at p (which holds at least
// ceil(n * bw / 8) bytes).
template <class F>
void unpack_bits(const uint8_t* p, int bw, int64_t n, F&& emit) {
  if (bw == 0) {
    for (int64_t i = 0; i < n; ++i) emit(uint64_t{0});
    return;
  }
  const uint64_t mask = bw == 64 ? ~uint64_t{0} : (uint64_t{1} << bw) - 1;
  uint64_t bitpos = 0;
  for (int64_t i = 0; i < n; ++i, bitpos += static_cast<uint64_t>(bw)) {
    uint64_t byte = bitpos >> 3;
    int shift = static_cast<int>(bitpos & 7);
    // Gather up to 9 bytes covering [shift, shift + bw).
    uint64_t v = 0;
    int need_bits = shift + bw;
    int nbytes = (need_bits + 7) / 8;
    for (int k = 0; k < nbytes && k < 8; ++k) v |= uint64_t(p[byte + k]) << (8 * k);
    v >>= shift;
    if (nbytes == 9) v |= uint64_t(p[byte + 8]) << (64 - shift);
    emit(v & mask);
  }
}

template <class T>
std::vector<T>& as(ParquetValues& v) {
  return std::get<std::vector<T>>(v);
}

template <class T>
size_t plain_fixed(Span data, int64_t count, std::vector<T>& out) {
  if (count < 0 || static_cast<uint64_t>(count) > data.size / sizeof(T))
    corrupt("PLAIN: " + std::to_string(count) + " values of " + std::to_string(sizeof(T)) +
            " bytes do not fit in " + std::to_string(data.size) + " bytes");
  size_t old = out.size();
  out.resize(old + static_cast<size_t>(count));
  std::memcpy(out.data() + old, data.data, static_cast<size_t>(count) * sizeof(T));
  return static_cast<size_t>(count) * sizeof(T);
}

}  // namespace

void decode_rle_hybrid(Span data, int bit_width, int64_t count, std::vector<uint32_t>& out) {
  if (bit_width < 0 || bit_width > 32) corrupt("RLE: bit width " + std::to_string(bit_width) + " > 32");
  if (bit_width == 0) {
    out.insert(out.end(), static_cast<size_t>(count), 0u);
    return;
  }
  Cursor c(data);
  int64_t produced = 0;
  const int value_bytes = (bit_width + 7) / 8;
  while (produced < count) {
    uint64_t header = c.uleb("RLE run header");
    if (header & 1) {  // bit-packed run of groups of 8
      uint64_t groups = header >> 1;
      if (groups == 0) corrupt("RLE: empty bit-packed run");
      uint64_t avail_groups = c.remaining() / static_cast<uint64_t>(bit_width);
      // Writers pad the last run; be lenient about a truncated final run if it covers `count`.
      uint64_t usable = std::min(groups, avail_groups);
      int64_t want = count - produced;
      int64_t n = static_cast<int64_t>(std::min<uint64_t>(usable * 8, static_cast<uint64_t>(want)));
      if (n == 0) corrupt("RLE: bit-packed run truncated");
      const uint8_t* p = c.span.data + c.pos;
      unpack_bits(p, bit_width, n, [&](uint64_t v) { out.push_back(static_cast<uint32_t>(v)); });
      produced += n;
      c.pos += static_cast<size_t>(usable * static_cast<uint64_t>(bit_width));
      if (usable < groups && produced < count) corrupt("RLE: bit-packed run truncated");
    } else {  // repeated value
      uint64_t run = header >> 1;
      const uint8_t* p = c.take(static_cast<size_t>(value_bytes), "RLE run value");
      uint32_t v = 0;
      for (int k = 0; k < value_bytes; ++k) v |= uint32_t(p[k]) << (8 * k);
      if (run == 0) continue;
      int64_t n = static_cast<int64_t>(std::min<uint64_t>(run, static_cast<uint64_t>(count - produced)));
      out.insert(out.end(), static_cast<size_t>(n), v);
      produced += n;
    }
  }
}

size_t decode_plain(Span data, ParquetType type, int type_length, int64_t count, ParquetValues& out) {
  if (count < 0) corrupt("PLAIN: negative value count");
  switch (type) {
    case ParquetType::Boolean: {
      uint64_t bytes = (static_cast<uint64_t>(count) + 7) / 8;
      if (bytes > data.size) corrupt("PLAIN: " + std::to_string(count) + " booleans exceed the page");
      auto& v = as<uint8_t>(out);
      for (int64_t i = 0; i < count; ++i) v.push_back((data.data[i >> 3] >> (i & 7)) & 1);
      return static_cast<size_t>(bytes);
    }
    case ParquetType::Int32:
      return plain_fixed(data, count, as<int32_t>(out));
    case ParquetType::Int64:
      return plain_fixed(data, count, as<int64_t>(out));
    case ParquetType::Float:
      return plain_fixed(data, count, as<float>(out));
    case ParquetType::Double:
      return plain_fixed(data, count, as<double>(out));
    case ParquetType::Int96:
    case ParquetType::FixedLenByteArray: {
      uint64_t w = type == ParquetType::Int96 ? 12 : static_cast<uint64_t>(type_length);
      if (w == 0) corrupt("FIXED_LEN_BYTE_ARRAY with type_length <= 0");
      if (static_cast<uint64_t>(count) > data.size / w)
        corrupt("PLAIN: " + std::to_string(count) + " fixed-length values exceed the page");
      auto& v = as<std::string>(out);
      for (int64_t i = 0; i < count; ++i) v.emplace_back(reinterpret_cast<const char*>(data.data) + i * w, w);
      return static_cast<size_t>(count * w);
    }
    case ParquetType::ByteArray: {
      if (static_cast<uint64_t>(count) > data.size / 4)
        corrupt("PLAIN: " + std::to_string(count) + " byte arrays exceed the page");
      Cursor c(data);
      auto& v = as<std::string>(out);
      for (int64_t i = 0; i < count; ++i) {
        uint32_t len = c.u32le("PLAIN byte array length");
        const uint8_t* p = c.take(len, "PLAIN byte array");
        v.emplace_back(reinterpret_cast<const char*>(p), len);
      }
      return c.pos;
    }
  }
  corrupt("PLAIN: unknown physical type");
}

size_t decode_delta_binary_packed(Span data, int64_t count, std::vector<int64_t>& out, bool is_int32) {
  Cursor c(data);
  uint64_t block_size = c.uleb("DELTA_BINARY_PACKED block size");
  uint64_t minis = c.uleb("DELTA_BINARY_PACKED miniblock count");
  uint64_t total = c.uleb("DELTA_BINARY_PACKED value count");
  int64_t first = c.zigzag("DELTA_BINARY_PACKED first value");
  if (block_size == 0 || block_size % 128 != 0 || block_size > (1u << 20) || minis == 0 ||
      block_size % minis != 0 || (block_size / minis) % 32 != 0)
    corrupt("DELTA_BINARY_PACKED: bad block size " + std::to_string(block_size) + " / " +
            std::to_string(minis) + " miniblocks");
  if (total != static_cast<uint64_t>(count))
    corrupt("DELTA_BINARY_PACKED: header holds " + std::to_string(total) + " values, page needs " +
            std::to_string(count));
  const uint64_t per_mini = block_size / minis;
  if (total == 0) return c.pos;
  auto wrap = [is_int32](uint64_t v) -> int64_t {
    return is_int32 ? static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(v)))
                    : static_cast<int64_t>(v);
  };
  uint64_t prev = static_cast<uint64_t>(first);
  out.push_back(wrap(prev));
  uint64_t produced = 1;
  while (produced < total) {
    uint64_t min_delta = static_cast<uint64_t>(c.zigzag("DELTA_BINARY_PACKED min delta"));
    const uint8_t* widths = c.take(static_cast<size_t>(minis), "DELTA_BINARY_PACKED bit widths");
    for (uint64_t m = 0; m < minis && produced < total; ++m) {
      int bw = widths[m];
      if (bw > 64) corrupt("DELTA_BINARY_PACKED: bit width " + std::to_string(bw) + " > 64");
      const uint8_t* p = c.take(static_cast<size_t>(per_mini * bw / 8), "DELTA_BINARY_PACKED miniblock");
      int64_t n = static_cast<int64_t>(std::min(per_mini, total - produced));
      unpack_bits(p, bw, n, [&](uint64_t d) {
        prev = prev + min_delta + d;  // wrapping arithmetic, as the writers do
        out.push_back(wrap(prev));
      });
      produced += static_cast<uint64_t>(n);
    }
  }
  return c.pos;
}

size_t decode_delta_length_byte_array(Span data, int64_t count, std::vector<std::string>& out) {
  std::vector<int64_t> lengths;
  size_t pos = decode_delta_binary_packed(data, count, lengths, true);
  Cursor c(data);
  c.pos = pos;
  for (int64_t len : lengths) {
    if (len < 0) corrupt("DELTA_LENGTH_BYTE_ARRAY: negative length");
    const uint8_t* p = c.take(static_cast<size_t>(len), "DELTA_LENGTH_BYTE_ARRAY data");
    out.emplace_back(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  }
  return c.pos;
}

size_t decode_delta_byte_array(Span data, int64_t count, std::vector<std::string>& out) {
  std::vector<int64_t> prefixes;
  size_t pos = decode_delta_binary_packed(data, count, prefixes, true);
  std::vector<std::string> suffixes;
  pos += decode_delta_length_byte_array(data.sub(pos, data.size - pos, "DELTA_BYTE_ARRAY"), count, suffixes);
  std::string prev;
  for (int64_t i = 0; i < count; ++i) {
    int64_t pre = prefixes[static_cast<size_t>(i)];
    if (pre < 0 || static_cast<uint64_t>(pre) > prev.size())
      corrupt("DELTA_BYTE_ARRAY: prefix length " + std::to_string(pre) +
              " exceeds the previous value's length " + std::to_string(prev.size()));
    std::string v = prev.substr(0, static_cast<size_t>(pre)) + suffixes[static_cast<size_t>(i)];
    out.push_back(v);
    prev = std::move(v);
  }
  return pos;
}

void decode_byte_stream_split(Span data, ParquetType type, int type_length, int64_t count,
                              ParquetValues& out) {
  size_t k = 0;
  switch (type) {
    case ParquetType::Int32:
    case ParquetType::Float:
      k = 4;
      break;
    case ParquetType::Int64:
    case ParquetType::Double:
      k = 8;
      break;
    case ParquetType::FixedLenByteArray:
      k = static_cast<size_t>(std::max(type_length, 0));
      break;
    default:
      corrupt("BYTE_STREAM_SPLIT is not defined for this physical type");
  }
  if (k == 0 || count < 0 || static_cast<uint64_t>(count) > data.size / k)
    corrupt("BYTE_STREAM_SPLIT: " + std::to_string(count) + " values exceed the page");
  const size_t n = static_cast<size_t>(count);
  std::string joined(n * k, '\0');
  for (size_t i = 0; i < n; ++i)
    for (size_t b = 0; b < k; ++b) joined[i * k + b] = static_cast<char>(data.data[b * n + i]);
  decode_plain(Span(joined), type, type_length, count, out);
}

}  // namespace robometer::io::parquet
