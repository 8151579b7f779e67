// A dependency-free TensorBoard scalar writer: event files in TFRecord framing with
// hand-encoded Event/Summary protobufs, readable by TensorBoard's event loader.
//
// Record: uint64 length (LE) | masked crc32c(length bytes) | data | masked crc32c(data),
// masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
// Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace robometer::train {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). crc32c("123456789") = 0xE3069283.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
uint32_t masked_crc32c(const void* data, size_t n);

class TensorBoardWriter {
 public:
  // Creates <log_dir>/events.out.tfevents.<unix time>.<hostname> and writes the
  // "brain.Event:2" file_version record. Throws Error when it cannot be created.
  explicit TensorBoardWriter(const std::filesystem::path& log_dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // wall_time < 0: now. Each call writes one Event and flushes the file.
  void add_scalar(const std::string& tag, float value, int64_t step, double wall_time = -1);
  void add_scalars(const std::map<std::string, double>& values, int64_t step,
                   double wall_time = -1);  // one Event holding all values
  const std::filesystem::path& path() const { return path_; }

 private:
  void write_record(const std::string& data);
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
};

// Reading back (tests, tools). Verifies both CRCs of every record; throws FormatError naming
// the file and byte offset on a bad CRC or a truncated record.
struct TensorBoardEvent {
  double wall_time = 0;
  int64_t step = 0;
  std::string file_version;
  std::vector<std::pair<std::string, float>> scalars;  // (tag, simple_value)
};
std::vector<TensorBoardEvent> read_tensorboard_events(const std::filesystem::path& file);

}  // namespace robometer::train
