// Every way a safetensors header can be malformed gets its own test: the error must be a
// FormatError naming the file and the problem, never a crash.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/io/safetensors.h"

namespace {

using robometer::FormatError;
using robometer::io::parse_safetensors_image;
using robometer::io::SafetensorsHeader;

// 8-byte little-endian length + header + data, with an explicit (possibly lying) length.
std::vector<uint8_t> image_with_length(uint64_t length, const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes, 0);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(length >> (8 * i));
  std::memcpy(out.data() + 8, header.data(), header.size());
  return out;
}
std::vector<uint8_t> image(const std::string& header, size_t data_bytes) {
  return image_with_length(header.size(), header, data_bytes);
}

// Parses and returns the error message; fails the test if no FormatError is thrown.
std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors_image("bad.safetensors", bytes.data(), bytes.size());
  } catch (const FormatError& e) {
    EXPECT_EQ(e.path(), "bad.safetensors");
    return e.what();
  }
  ADD_FAILURE() << "no FormatError thrown";
  return "";
}

#define EXPECT_REJECTED(bytes, needle)                                        \
  do {                                                                        \
    std::string msg = error_of(bytes);                                        \
    EXPECT_NE(msg.find(needle), std::string::npos) << "message was: " << msg; \
    EXPECT_EQ(msg.rfind("bad.safetensors: ", 0), 0u) << msg;                  \
  } while (0)

const std::string kF32x2 = R"("dtype":"F32","shape":[2])";

TEST(SafetensorsHeader, AcceptsValidHeaderAndReportsLayout) {
  std::string h = R"({"b":{"dtype":"I8","shape":[3],"data_offsets":[8,11]},)"
                  R"("a":{)" +
                  kF32x2 + R"(,"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}    )";
  auto bytes = image(h, 11);
  SafetensorsHeader header = parse_safetensors_image("ok", bytes.data(), bytes.size());
  ASSERT_EQ(header.tensors.size(), 2u);
  EXPECT_EQ(header.tensors[0].name, "a");  // sorted by offset, not by JSON order
  EXPECT_EQ(header.tensors[1].name, "b");
  EXPECT_EQ(header.tensors[1].begin, 8u);
  EXPECT_EQ(header.tensors[1].end, 11u);
  EXPECT_EQ(header.data_start, 8 + h.size());
  EXPECT_EQ(header.data_size, 11u);
  EXPECT_EQ(header.metadata.at("format"), "pt");
}

TEST(SafetensorsHeader, AcceptsEmptyAndScalarTensorsAndNullMetadata) {
  std::string h = R"({"e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},)"
                  R"("e2":{"dtype":"BF16","shape":[3,0],"data_offsets":[0,0]},)"
                  R"("s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"__metadata__":null})";
  auto bytes = image(h, 8);
  EXPECT_EQ(parse_safetensors_image("ok", bytes.data(), bytes.size()).tensors.size(), 3u);
  auto none = image("{}", 0);
  EXPECT_TRUE(parse_safetensors_image("ok", none.data(), none.size()).tensors.empty());
}

TEST(SafetensorsHeader, ValidateHeaderEntryPoint) {
  std::string h = R"({"a":{)" + kF32x2 + R"(,"data_offsets":[0,8]}})";
  EXPECT_NO_THROW(robometer::io::validate_safetensors_header("x", h.data(), h.size(), 8));
  EXPECT_THROW(robometer::io::validate_safetensors_header("x", h.data(), h.size(), 9), FormatError);
}

TEST(SafetensorsHeader, RejectsFileShorterThanLengthField) {
  EXPECT_REJECTED(std::vector<uint8_t>{}, "shorter than the 8-byte");
  EXPECT_REJECTED(std::vector<uint8_t>(7, 0), "7 bytes, shorter than the 8-byte");
}

TEST(SafetensorsHeader, RejectsHeaderLengthAboveCap) {
  EXPECT_REJECTED(image_with_length(100'000'001, "{}", 0), "exceeds the limit of 100000000 bytes");
  EXPECT_REJECTED(image_with_length(~0ull, "{}", 0), "exceeds the limit");
}

TEST(SafetensorsHeader, RejectsHeaderLengthPastEndOfFile) {
  EXPECT_REJECTED(image_with_length(3, "{}", 0), "header length 3 runs past the end of the file (2 bytes");
}

TEST(SafetensorsHeader, RejectsGarbageJson) {
  EXPECT_REJECTED(image("{\"a\": nope}", 0), "invalid JSON");
  EXPECT_REJECTED(image("", 0), "invalid JSON");
  EXPECT_REJECTED(image(std::string("{}\0\0", 4), 0), "NUL byte at offset 2");  // NUL padding is not JSON
  EXPECT_REJECTED(image(std::string("{}\0{\"x\":1}", 9), 0), "NUL byte");
  EXPECT_REJECTED(image("{\"a\":{}", 0), "invalid JSON");  // truncated
}

TEST(SafetensorsHeader, RejectsNonUtf8) {
  EXPECT_REJECTED(image("{\"\xff\xfe\":{}}", 0), "UTF-8");
  EXPECT_REJECTED(image("\xef\xbb\xbf\x80{}", 0), "invalid JSON");
}

TEST(SafetensorsHeader, RejectsNonObjectRoot) {
  EXPECT_REJECTED(image("[1,2]", 0), "header must be a JSON object, got array");
  EXPECT_REJECTED(image("\"str\"", 0), "header must be a JSON object, got string");
}

TEST(SafetensorsHeader, RejectsEntryThatIsNotAnObject) {
  EXPECT_REJECTED(image(R"({"w":[1]})", 0), "tensor 'w': entry must be a JSON object, got array");
}

TEST(SafetensorsHeader, RejectsMissingDtype) {
  EXPECT_REJECTED(image(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8), "tensor 'w': missing \"dtype\"");
}

TEST(SafetensorsHeader, RejectsDtypeNotString) {
  EXPECT_REJECTED(image(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8),
                  "\"dtype\" must be a string");
}

TEST(SafetensorsHeader, RejectsUnknownDtype) {
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", 8),
                  "unknown dtype 'F128'");
}

TEST(SafetensorsHeader, RejectsMissingShape) {
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8), "missing \"shape\"");
}

TEST(SafetensorsHeader, RejectsShapeNotArray) {
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8),
                  "\"shape\" must be an array");
}

TEST(SafetensorsHeader, RejectsNegativeDim) {
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                  "shape[0] must be a non-negative integer, got -2");
}

TEST(SafetensorsHeader, RejectsNonIntegerDims) {
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8),
                  "shape[0] must be a non-negative integer");
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F32","shape":[1,"2"],"data_offsets":[0,8]}})", 8),
                  "shape[1] must be a non-negative integer");
}

TEST(SafetensorsHeader, RejectsDimAboveInt64) {
  EXPECT_REJECTED(image(R"({"w":{"dtype":"U8","shape":[9223372036854775808],"data_offsets":[0,8]}})", 8),
                  "does not fit a signed 64-bit integer");
}

TEST(SafetensorsHeader, RejectsElementCountOverflow) {
  // 2^32 * 2^32 wraps to 0 in 64 bits; a zero dim elsewhere must not hide it either.
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0),
                  "overflows");
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})", 0),
                  "overflows");
  // The element count fits but count * 8 bytes does not.
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}})", 0),
                  "overflows");
}

TEST(SafetensorsHeader, RejectsMissingDataOffsets) {
  EXPECT_REJECTED(image(R"({"w":{)" + kF32x2 + "}}", 8), "missing \"data_offsets\"");
}

TEST(SafetensorsHeader, RejectsDataOffsetsWithWrongArity) {
  EXPECT_REJECTED(image(R"({"w":{)" + kF32x2 + R"(,"data_offsets":[0,4,8]}})", 8),
                  "must be an array [begin, end]");
  EXPECT_REJECTED(image(R"({"w":{)" + kF32x2 + R"(,"data_offsets":{"a":0}}})", 8),
                  "must be an array [begin, end]");
}

TEST(SafetensorsHeader, RejectsNegativeOrFractionalOffsets) {
  EXPECT_REJECTED(image(R"({"w":{)" + kF32x2 + R"(,"data_offsets":[-8,0]}})", 8),
                  "two non-negative integers");
  EXPECT_REJECTED(image(R"({"w":{)" + kF32x2 + R"(,"data_offsets":[0,8.5]}})", 8),
                  "two non-negative integers");
}

TEST(SafetensorsHeader, RejectsBeginAfterEnd) {
  EXPECT_REJECTED(image(R"({"w":{)" + kF32x2 + R"(,"data_offsets":[8,0]}})", 8), "begin 8 is after end 0");
}

TEST(SafetensorsHeader, RejectsOffsetsOutOfRange) {
  EXPECT_REJECTED(image(R"({"w":{)" + kF32x2 + R"(,"data_offsets":[0,8]}})", 4),
                  "end 8 is out of range: the data buffer has 4 bytes");
  EXPECT_REJECTED(
      image(R"({"w":{)" + kF32x2 + R"(,"data_offsets":[18446744073709551608,18446744073709551615]}})", 4),
      "out of range");
}

TEST(SafetensorsHeader, RejectsByteRangeNotMatchingShape) {
  EXPECT_REJECTED(image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                  "holds 8 bytes but shape x dtype size (F32) needs 12");
}

TEST(SafetensorsHeader, RejectsOverlappingTensors) {
  EXPECT_REJECTED(
      image(R"({"a":{)" + kF32x2 + R"(,"data_offsets":[0,8]},"b":{)" + kF32x2 + R"(,"data_offsets":[4,12]}})",
            12),
      "overlap tensor 'a'");
  // The same range twice (aliasing) is an overlap as well.
  EXPECT_REJECTED(
      image(R"({"a":{)" + kF32x2 + R"(,"data_offsets":[0,8]},"b":{)" + kF32x2 + R"(,"data_offsets":[0,8]}})",
            8),
      "overlap");
}

TEST(SafetensorsHeader, RejectsGapBetweenTensors) {
  EXPECT_REJECTED(image(R"({"a":{)" + kF32x2 + R"(,"data_offsets":[0,8]},"b":{)" + kF32x2 +
                            R"(,"data_offsets":[12,20]}})",
                        20),
                  "gap in the data buffer: bytes [8, 12)");
  EXPECT_REJECTED(image(R"({"b":{)" + kF32x2 + R"(,"data_offsets":[4,12]}})", 12), "gap");
}

TEST(SafetensorsHeader, RejectsTrailingUncoveredBytes) {
  EXPECT_REJECTED(image(R"({"a":{)" + kF32x2 + R"(,"data_offsets":[0,8]}})", 10),
                  "data buffer has 10 bytes but the tensors cover only 8");
  EXPECT_REJECTED(image("{}", 1), "cover only 0");
}

TEST(SafetensorsHeader, RejectsDuplicateTensorNames) {
  EXPECT_REJECTED(
      image(R"({"a":{)" + kF32x2 + R"(,"data_offsets":[0,8]},"a":{)" + kF32x2 + R"(,"data_offsets":[8,16]}})",
            16),
      "duplicate key 'a'");
}

TEST(SafetensorsHeader, RejectsDuplicateKeysInsideEntryAndMetadata) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"F32","dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8),
                  "duplicate key 'dtype'");
  EXPECT_REJECTED(image(R"({"__metadata__":{"k":"1","k":"2"}})", 0), "duplicate key 'k'");
  EXPECT_REJECTED(image(R"({"__metadata__":{},"__metadata__":{}})", 0), "duplicate key '__metadata__'");
}

TEST(SafetensorsHeader, RejectsMetadataThatIsNotAnObject) {
  EXPECT_REJECTED(image(R"({"__metadata__":["a"]})", 0), "\"__metadata__\" must be an object of strings");
}

TEST(SafetensorsHeader, RejectsMetadataValueThatIsNotAString) {
  EXPECT_REJECTED(image(R"({"__metadata__":{"epoch":3}})", 0),
                  "value for key 'epoch' must be a string, got number");
  EXPECT_REJECTED(image(R"({"__metadata__":{"x":null}})", 0), "must be a string, got null");
}

TEST(SafetensorsHeader, RejectsDeepNesting) {
  EXPECT_REJECTED(image(R"({"a":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", 8),
                  "nesting deeper than 3");
  EXPECT_REJECTED(image(std::string(100000, '[') + std::string(100000, ']'), 0), "nesting deeper");
}

// The on-disk path (mmap) reports the same problems with the file's path.
TEST(SafetensorsHeader, FileOnDiskTooShortOrLyingLength) {
  robometer::test::TempDir dir;
  auto write = [&](const std::string& name, const std::vector<uint8_t>& bytes) {
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return (dir / name).string();
  };
  for (const auto& [name, bytes, needle] :
       std::vector<std::tuple<std::string, std::vector<uint8_t>, std::string>>{
           {"empty.safetensors", {}, "0 bytes, shorter than"},
           {"short.safetensors", {1, 0, 0}, "3 bytes, shorter than"},
           {"long.safetensors", image_with_length(1000, "{}", 0), "runs past the end"},
           {"garbage.safetensors", image("\x01\x02garbage", 0), "invalid JSON"}}) {
    const std::string path = write(name, bytes);
    try {
      robometer::io::SafetensorsFile f(path);
      ADD_FAILURE() << name << " was accepted";
    } catch (const FormatError& e) {
      EXPECT_EQ(e.path(), path);
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
}

}  // namespace
