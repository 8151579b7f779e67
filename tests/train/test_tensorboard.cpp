// TensorBoard event files: CRC-32C check values, hand-encoded protobuf bytes, read-back with
// CRC verification, corruption detection.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/train/tensorboard.h"

using namespace robometer;
using namespace robometer::train;
using robometer::test::TempDir;

namespace {
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST(TensorBoard, Crc32cCheckValues) {
  // The standard check value and the iSCSI (RFC 3720 B.4) vectors.
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  uint8_t zeros[32] = {}, ones[32], inc[32];
  std::memset(ones, 0xFF, 32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c(zeros, 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones, 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc, 32), 0x46DD794Eu);
  // Incremental use equals one pass.
  EXPECT_EQ(crc32c("56789", 5, crc32c("1234", 4)), 0xE3069283u);
}

TEST(TensorBoard, EventBytesMatchHandEncoding) {
  TempDir d;
  std::filesystem::path path;
  {
    TensorBoardWriter w(d.path());
    path = w.path();
    w.add_scalar("a", 2.0f, 3, 1.5);
  }
  EXPECT_EQ(path.filename().string().rfind("events.out.tfevents.", 0), 0u);
  const std::string buf = slurp(path);
  // Skip the file_version record: 8 (len) + 4 + len + 4.
  uint64_t len0;
  std::memcpy(&len0, buf.data(), 8);
  const size_t off = 16 + len0;
  // Event{wall_time=1.5, step=3, summary{value{tag="a", simple_value=2}}}:
  //   09 <1.5 as LE double: 00 00 00 00 00 00 F8 3F>   field 1, wire 1
  //   10 03                                            field 2, varint 3
  //   2A 0A                                            field 5, 10 bytes of Summary
  //     0A 08                                          Summary.value, 8 bytes
  //       0A 01 61                                     Value.tag = "a"
  //       15 <2.0f LE: 00 00 00 40>                    Value.simple_value (fixed32)
  const unsigned char want[] = {0x09, 0,    0,    0,    0,    0,    0,    0xF8, 0x3F, 0x10, 0x03, 0x2A,
                                0x0A, 0x0A, 0x08, 0x0A, 0x01, 0x61, 0x15, 0,    0,    0,    0x40};
  uint64_t len1;
  std::memcpy(&len1, buf.data() + off, 8);
  ASSERT_EQ(len1, sizeof(want));
  EXPECT_EQ(std::memcmp(buf.data() + off + 12, want, sizeof(want)), 0);
  uint32_t crc;
  std::memcpy(&crc, buf.data() + off + 12 + len1, 4);
  EXPECT_EQ(crc, masked_crc32c(want, sizeof(want)));
  EXPECT_EQ(buf.size(), off + 12 + len1 + 4);
}

TEST(TensorBoard, ReadBackScalars) {
  TempDir d;
  std::filesystem::path path;
  {
    TensorBoardWriter w(d.path());
    path = w.path();
    w.add_scalars({{"train/loss", 0.25}, {"train/lr", 2e-5}}, 1);
    w.add_scalar("train/loss", 0.125f, 300);  // multi-byte varint step
  }
  auto ev = read_tensorboard_events(path);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].file_version, "brain.Event:2");
  EXPECT_GT(ev[0].wall_time, 1.6e9);
  EXPECT_EQ(ev[1].step, 1);
  ASSERT_EQ(ev[1].scalars.size(), 2u);
  EXPECT_EQ(ev[1].scalars[0].first, "train/loss");
  EXPECT_EQ(ev[1].scalars[0].second, 0.25f);
  EXPECT_EQ(ev[1].scalars[1].first, "train/lr");
  EXPECT_EQ(ev[1].scalars[1].second, 2e-5f);
  EXPECT_EQ(ev[2].step, 300);
  EXPECT_EQ(ev[2].scalars[0].second, 0.125f);
}

TEST(TensorBoard, CorruptionIsDetected) {
  TempDir d;
  std::filesystem::path path;
  {
    TensorBoardWriter w(d.path());
    path = w.path();
    w.add_scalar("x", 1.0f, 1);
  }
  std::string buf = slurp(path);
  std::string flipped = buf;
  flipped[flipped.size() - 6] ^= 0x01;  // inside the last record's data
  std::ofstream(path, std::ios::binary | std::ios::trunc) << flipped;
  EXPECT_THROW(read_tensorboard_events(path), FormatError);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << buf.substr(0, buf.size() - 3);
  EXPECT_THROW(read_tensorboard_events(path), FormatError);
  flipped = buf;
  flipped[3] ^= 0x01;  // the first record's length
  std::ofstream(path, std::ios::binary | std::ios::trunc) << flipped;
  EXPECT_THROW(read_tensorboard_events(path), FormatError);
}
