#include "robometer/train/tensorboard.h"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "robometer/core/error.h"

namespace robometer::train {

// ------------------------------------------------------------------------------- CRC-32C

namespace {

std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}

}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  static const auto table = make_crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

// ------------------------------------------------------------------------------- protobuf

namespace {

// Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void put_tag(std::string& out, int field, int wire) { put_varint(out, (field << 3) | wire); }
template <class T>
void put_fixed(std::string& out, T v) {  // little-endian host (x86/ARM)
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out.append(b, sizeof(T));
}
void put_bytes(std::string& out, int field, const std::string& s) {
  put_tag(out, field, 2);
  put_varint(out, s.size());
  out += s;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string event_header(double wall_time, int64_t step) {
  std::string e;
  put_tag(e, 1, 1);
  put_fixed<double>(e, wall_time);
  put_tag(e, 2, 0);
  put_varint(e, static_cast<uint64_t>(step));
  return e;
}

std::string scalar_value(const std::string& tag, float v) {
  std::string value;
  put_bytes(value, 1, tag);
  put_tag(value, 2, 5);
  put_fixed<float>(value, v);
  return value;
}

}  // namespace

// ------------------------------------------------------------------------------- writer

TensorBoardWriter::TensorBoardWriter(const std::filesystem::path& log_dir) {
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  const double t = now_seconds();
  const std::string base = "events.out.tfevents." + std::to_string(static_cast<int64_t>(t)) + "." + host;
  path_ = log_dir / base;
  for (int n = 1; std::filesystem::exists(path_); ++n) path_ = log_dir / (base + "." + std::to_string(n));
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) throw Error(path_.string() + ": cannot create: " + std::strerror(errno));
  std::string e = event_header(t, 0);
  put_bytes(e, 3, "brain.Event:2");
  write_record(e);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::write_record(const std::string& data) {
  std::string rec;
  const uint64_t len = data.size();
  put_fixed<uint64_t>(rec, len);
  put_fixed<uint32_t>(rec, masked_crc32c(rec.data(), 8));
  rec += data;
  put_fixed<uint32_t>(rec, masked_crc32c(data.data(), data.size()));
  if (std::fwrite(rec.data(), 1, rec.size(), file_) != rec.size() || std::fflush(file_) != 0)
    throw Error(path_.string() + ": write failed: " + std::strerror(errno));
}

void TensorBoardWriter::add_scalar(const std::string& tag, float value, int64_t step, double wall_time) {
  add_scalars({{tag, value}}, step, wall_time);
}

void TensorBoardWriter::add_scalars(const std::map<std::string, double>& values, int64_t step,
                                    double wall_time) {
  if (values.empty()) return;
  std::string summary;
  for (const auto& [tag, v] : values) put_bytes(summary, 1, scalar_value(tag, static_cast<float>(v)));
  std::string e = event_header(wall_time < 0 ? now_seconds() : wall_time, step);
  put_bytes(e, 5, summary);
  write_record(e);
}

// ------------------------------------------------------------------------------- reader

namespace {

struct Cursor {
  const uint8_t* p;
  const uint8_t* end;
  const std::string& file;
  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) throw FormatError(file, "truncated varint in event");
      const uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw FormatError(file, "varint longer than 10 bytes in event");
  }
  template <class T>
  T fixed() {
    if (end - p < static_cast<ptrdiff_t>(sizeof(T))) throw FormatError(file, "truncated field");
    T v;
    std::memcpy(&v, p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  std::string bytes() {
    const uint64_t n = varint();
    if (static_cast<uint64_t>(end - p) < n) throw FormatError(file, "truncated length field");
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
  void skip(int wire) {
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        fixed<uint64_t>();
        break;
      case 2:
        bytes();
        break;
      case 5:
        fixed<uint32_t>();
        break;
      default:
        throw FormatError(file, "unsupported protobuf wire type " + std::to_string(wire));
    }
  }
};

Cursor cursor(const std::string& s, const std::string& file) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  return Cursor{p, p + s.size(), file};
}

}  // namespace

std::vector<TensorBoardEvent> read_tensorboard_events(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(file + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string buf = ss.str();
  std::vector<TensorBoardEvent> events;
  size_t off = 0;
  while (off < buf.size()) {
    if (buf.size() - off < 12)
      throw FormatError(file, "truncated record header at byte " + std::to_string(off));
    uint64_t len;
    uint32_t len_crc;
    std::memcpy(&len, buf.data() + off, 8);
    std::memcpy(&len_crc, buf.data() + off + 8, 4);
    if (len_crc != masked_crc32c(buf.data() + off, 8))
      throw FormatError(file, "bad length CRC at byte " + std::to_string(off));
    if (buf.size() - off - 12 < len + 4)
      throw FormatError(file, "truncated record at byte " + std::to_string(off));
    const std::string data = buf.substr(off + 12, len);
    uint32_t data_crc;
    std::memcpy(&data_crc, buf.data() + off + 12 + len, 4);
    if (data_crc != masked_crc32c(data.data(), data.size()))
      throw FormatError(file, "bad data CRC at byte " + std::to_string(off));
    off += 12 + len + 4;

    TensorBoardEvent ev;
    auto c = cursor(data, file);
    while (!c.done()) {
      const uint64_t key = c.varint();
      const int field = static_cast<int>(key >> 3), wire = static_cast<int>(key & 7);
      if (field == 1 && wire == 1)
        ev.wall_time = c.fixed<double>();
      else if (field == 2 && wire == 0)
        ev.step = static_cast<int64_t>(c.varint());
      else if (field == 3 && wire == 2)
        ev.file_version = c.bytes();
      else if (field == 5 && wire == 2) {
        const std::string summary = c.bytes();
        auto cs = cursor(summary, file);
        while (!cs.done()) {
          const uint64_t k = cs.varint();
          if ((k >> 3) != 1 || (k & 7) != 2) {
            cs.skip(static_cast<int>(k & 7));
            continue;
          }
          const std::string value = cs.bytes();
          auto cv = cursor(value, file);
          std::string tag;
          float v = std::nanf("");
          while (!cv.done()) {
            const uint64_t kv = cv.varint();
            if (kv == ((1 << 3) | 2))
              tag = cv.bytes();
            else if (kv == ((2 << 3) | 5))
              v = cv.fixed<float>();
            else
              cv.skip(static_cast<int>(kv & 7));
          }
          ev.scalars.emplace_back(tag, v);
        }
      } else {
        c.skip(wire);
      }
    }
    events.push_back(std::move(ev));
  }
  return events;
}

}  // namespace robometer::train
