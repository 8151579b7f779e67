// safetensors round trips (every dtype, bit-exact), zero-copy reads, metadata, sharded sets, and
// interoperability with an independent writer/reader (a Python script following the published
// format, using only struct + json).
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/io/safetensors.h"

namespace {

namespace fs = std::filesystem;
using namespace robometer::io;
using robometer::Error;
using robometer::FormatError;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Bit-exact comparison (NaN payloads, -0.0 and bf16/f16 patterns included).
void expect_same_bits(const at::Tensor& expected, const at::Tensor& actual, const std::string& what) {
  ASSERT_EQ(expected.scalar_type(), actual.scalar_type()) << what;
  ASSERT_EQ(expected.sizes(), actual.sizes()) << what;
  at::Tensor e = expected.contiguous(), a = actual.contiguous();
  const size_t n = static_cast<size_t>(e.numel()) * e.element_size();
  EXPECT_EQ(std::memcmp(e.data_ptr(), a.data_ptr(), n), 0) << what;
}

template <typename T>
at::Tensor from_values(std::vector<T> values, at::ScalarType type, std::vector<int64_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(values.size())};
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(type));
  EXPECT_EQ(static_cast<size_t>(t.numel()) * t.element_size(), values.size() * sizeof(T));
  std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(T));
  return t;
}

// One tensor per dtype with edge-case values; 16-bit floats are given as raw bit patterns.
NamedTensors every_dtype() {
  const double inf = std::numeric_limits<double>::infinity();
  return {
      {"f64", from_values<double>({0.0, -0.0, 1.5, -1e308, 4.9e-324, inf, std::nan("7")}, at::kDouble)},
      {"f32", from_values<float>({3.25f, -0.0f, 1e-45f, -3.4e38f, 0.1f, 2.0f}, at::kFloat, {2, 3})},
      // f16: 1.0, -2.0, smallest subnormal, max 65504, +inf, a NaN with payload
      {"f16", from_values<uint16_t>({0x3C00, 0xC000, 0x0001, 0x7BFF, 0x7C00, 0x7E01}, at::kHalf, {3, 2})},
      // bf16: 1.0, -0.0, a subnormal, 3.140625, -inf, a NaN with payload
      {"bf16", from_values<uint16_t>({0x3F80, 0x8000, 0x0001, 0x4049, 0xFF80, 0x7FC1}, at::kBFloat16)},
      {"i64",
       from_values<int64_t>({std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()},
                            at::kLong)},
      {"i32", from_values<int32_t>(
                  {std::numeric_limits<int32_t>::min(), -7, 42, std::numeric_limits<int32_t>::max()},
                  at::kInt, {2, 2})},
      {"i16", from_values<int16_t>({-32768, -1, 1, 32767}, at::kShort)},
      {"i8", from_values<int8_t>({-128, -1, 0, 127, 5}, at::kChar)},
      {"u8", from_values<uint8_t>({0, 1, 128, 255}, at::kByte)},
      {"bool", from_values<uint8_t>({1, 0, 0, 1, 1}, at::kBool)},
      {"scalar", at::scalar_tensor(2.5, at::kFloat)},
      {"empty", at::empty({0, 4}, at::kFloat)},
  };
}

TEST(Safetensors, DtypeNames) {
  EXPECT_EQ(safetensors_dtype("BF16"), at::kBFloat16);
  EXPECT_EQ(safetensors_dtype_name(at::kBool), "BOOL");
  EXPECT_THROW(safetensors_dtype("X"), Error);
  EXPECT_THROW(safetensors_dtype("U16"), Error);  // valid safetensors, no LibTorch 1.13 type
  EXPECT_THROW(safetensors_dtype_name(at::kComplexFloat), Error);
}

TEST(Safetensors, RoundTripEveryDtypeBitExact) {
  robometer::test::TempDir dir;
  const std::string path = (dir / "all.safetensors").string();
  NamedTensors tensors = every_dtype();
  save_safetensors(path, tensors);

  SafetensorsFile file(path);
  EXPECT_EQ(file.names().size(), tensors.size());
  for (const auto& [name, expected] : tensors) {
    ASSERT_TRUE(file.contains(name)) << name;
    EXPECT_EQ(file.dtype(name), expected.scalar_type()) << name;
    EXPECT_EQ(file.shape(name), expected.sizes().vec()) << name;
    expect_same_bits(expected, file.get(name), name);
  }
  NamedTensors loaded = load_safetensors(path);
  ASSERT_EQ(loaded.size(), tensors.size());
  for (const auto& [name, t] : loaded) {
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, tensors.end());
    expect_same_bits(it->second, t, name);
  }
  EXPECT_TRUE(file.get("bool").equal(from_values<uint8_t>({1, 0, 0, 1, 1}, at::kBool)));
  EXPECT_EQ(file.get("f32")[0][0].item<float>(), 3.25f);
}

TEST(Safetensors, NonContiguousAndNonCpuInputsAreWrittenAsValues) {
  robometer::test::TempDir dir;
  at::Tensor base = at::arange(12, at::kFloat).reshape({3, 4});
  at::Tensor transposed = base.t();       // non-contiguous view
  at::Tensor sliced = base.select(1, 2);  // strided view
  save_safetensors((dir / "v.safetensors").string(), {{"t", transposed}, {"s", sliced}});
  SafetensorsFile f((dir / "v.safetensors").string());
  EXPECT_TRUE(f.get("t").equal(transposed));
  EXPECT_TRUE(f.get("s").equal(sliced));
}

TEST(Safetensors, HeaderIsPaddedWithSpacesTo8Bytes) {
  robometer::test::TempDir dir;
  const auto path = dir / "p.safetensors";
  save_safetensors(path.string(), {{"x", at::ones({3}, at::kByte)}});
  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + 3);
  const std::string header = bytes.substr(8, n);
  const size_t close = header.rfind('}');
  EXPECT_EQ(header.find_first_not_of(' ', close + 1), std::string::npos) << "padding must be spaces";
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["x"]["dtype"], "U8");
  EXPECT_EQ(j["x"]["data_offsets"], nlohmann::json::array({0, 3}));
}

TEST(Safetensors, LayoutIsLargestElementFirstKeepingCallerOrder) {
  robometer::test::TempDir dir;
  const std::string path = (dir / "o.safetensors").string();
  save_safetensors(path, {{"u8", at::ones({3}, at::kByte)},
                          {"z_f32", at::ones({2}, at::kFloat)},
                          {"f16", at::ones({1}, at::kHalf)},
                          {"a_f32", at::ones({2}, at::kFloat)},
                          {"f64", at::ones({1}, at::kDouble)}});
  SafetensorsFile f(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"f64", "z_f32", "a_f32", "f16", "u8"}));
}

TEST(Safetensors, AlignedTensorsAreZeroCopyViewsOfTheMapping) {
  robometer::test::TempDir dir;
  const std::string path = (dir / "z.safetensors").string();
  save_safetensors(path, every_dtype());
  at::Tensor kept;
  {
    SafetensorsFile f(path);
    const uint8_t* begin = f.mapped_bytes() + f.header().data_start;
    const uint8_t* end = f.mapped_bytes() + f.mapped_size();
    for (const auto& name : f.names()) {
      if (name == "empty") continue;
      at::Tensor t = f.get(name);
      const auto* p = static_cast<const uint8_t*>(t.data_ptr());
      EXPECT_GE(p, begin) << name;
      EXPECT_LT(p, end) << name;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % t.element_size(), 0u) << name;
    }
    kept = f.get("f32");
    EXPECT_EQ(kept.data_ptr(), f.get("f32").data_ptr());
  }
  // The view keeps the mapping alive after the file object is gone.
  EXPECT_EQ(kept[1][2].item<float>(), 2.0f);
  // Writing into a view changes private pages only, never the file.
  kept.fill_(-1.0f);
  SafetensorsFile again(path);
  EXPECT_EQ(again.get("f32")[0][0].item<float>(), 3.25f);
}

// Writes a file whose F32 tensor starts at an odd offset (legal, if unusual).
TEST(Safetensors, MisalignedTensorIsCopied) {
  robometer::test::TempDir dir;
  const auto path = dir / "m.safetensors";
  std::string header = R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[3,11]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  bytes += std::string("\x01\x02\x03", 3);
  const float values[2] = {1.5f, -4.0f};
  bytes.append(reinterpret_cast<const char*>(values), sizeof(values));
  std::ofstream(path, std::ios::binary) << bytes;

  SafetensorsFile f(path.string());
  at::Tensor b = f.get("b");
  const auto* p = static_cast<const uint8_t*>(b.data_ptr());
  EXPECT_FALSE(p >= f.mapped_bytes() && p < f.mapped_bytes() + f.mapped_size()) << "expected a copy";
  EXPECT_EQ(b[0].item<float>(), 1.5f);
  EXPECT_EQ(b[1].item<float>(), -4.0f);
  EXPECT_EQ(f.get("a")[2].item<uint8_t>(), 3);
}

TEST(Safetensors, MetadataRoundTrip) {
  robometer::test::TempDir dir;
  const std::string path = (dir / "meta.safetensors").string();
  Metadata meta{{"format", "pt"}, {"step", "1200"}, {"note", "ünïcode \"quoted\" \n newline"}, {"empty", ""}};
  save_safetensors(path, {{"w", at::ones({2})}}, meta);
  EXPECT_EQ(SafetensorsFile(path).metadata(), meta);
  save_safetensors(path, {{"w", at::ones({2})}});  // overwrite: no metadata key at all
  EXPECT_TRUE(SafetensorsFile(path).metadata().empty());
  EXPECT_EQ(read_bytes(path).find("__metadata__"), std::string::npos);
}

TEST(Safetensors, InvalidBoolBytesAreRejected) {
  robometer::test::TempDir dir;
  const std::string path = (dir / "b.safetensors").string();
  // A BOOL tensor whose second byte is 2 (our writer cannot produce one).
  std::string header = R"({"flags":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}})";
  std::string file(8, '\0');
  uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header + std::string("\x01\x02\x00\x01", 4);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << file;
  SafetensorsFile f(path);
  try {
    f.get("flags");
    ADD_FAILURE() << "accepted a BOOL byte of 2";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("byte value 2 at element 1"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, DtypeWithoutLibTorchTypeOpensButCannotBeRead) {
  robometer::test::TempDir dir;
  const auto path = dir / "u16.safetensors";
  std::string header =
      R"({"a":{"dtype":"U16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}})";
  std::string file(8, '\0');
  uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  file += header + std::string(8, '\x07');
  std::ofstream(path, std::ios::binary) << file;
  SafetensorsFile f(path.string());
  EXPECT_EQ(f.get("b")[0].item<uint8_t>(), 7);
  try {
    f.get("a");
    ADD_FAILURE();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'a': safetensors dtype U16 has no LibTorch"),
              std::string::npos)
        << e.what();
  }
}

TEST(Safetensors, WriterRejectsBadInput) {
  robometer::test::TempDir dir;
  const std::string path = (dir / "w.safetensors").string();
  auto expect_error = [&](const NamedTensors& t, const std::string& needle) {
    try {
      save_safetensors(path, t);
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({{"a", at::ones({1})}, {"a", at::ones({1})}}, "duplicate tensor name 'a'");
  expect_error({{"__metadata__", at::ones({1})}}, "reserved");
  expect_error({{"c", at::ones({1}, at::kComplexFloat)}}, "cannot be stored in safetensors");
  expect_error({{"u", at::Tensor()}}, "undefined");
  expect_error({{std::string("bad\xff"), at::ones({1})}}, "not valid UTF-8");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(dir.path())) << "no temp files may be left behind";
  EXPECT_THROW(SafetensorsFile((dir / "missing.safetensors").string()), Error);
}

NamedTensors ten_tensors() {
  NamedTensors out;
  for (int i = 0; i < 10; ++i)
    out.emplace_back("layer." + std::to_string(i) + ".weight",
                     at::full({100}, static_cast<float>(i), at::kFloat));
  return out;
}

TEST(Safetensors, ShardedSetRoundTripWithIndex) {
  robometer::test::TempDir dir;
  const NamedTensors tensors = ten_tensors();  // 10 x 400 bytes
  save_sharded_safetensors(dir.path().string(), tensors, 1000, "model", {{"format", "pt"}});

  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir.path())) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files,
            (std::vector<std::string>{"model-00001-of-00005.safetensors", "model-00002-of-00005.safetensors",
                                      "model-00003-of-00005.safetensors", "model-00004-of-00005.safetensors",
                                      "model-00005-of-00005.safetensors", "model.safetensors.index.json"}));

  auto index = nlohmann::json::parse(read_bytes(dir / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 4000);
  ASSERT_EQ(index["weight_map"].size(), 10u);
  for (int i = 0; i < 10; ++i) {
    char expect[64];
    std::snprintf(expect, sizeof(expect), "model-%05d-of-00005.safetensors", i / 2 + 1);
    EXPECT_EQ(index["weight_map"]["layer." + std::to_string(i) + ".weight"], expect) << i;
  }
  EXPECT_EQ(SafetensorsFile((dir / "model-00003-of-00005.safetensors").string()).metadata().at("format"),
            "pt");

  SafetensorsSet set(dir.path().string());
  const std::vector<std::string> names = set.names();
  EXPECT_EQ(names.size(), 10u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const auto& [name, t] : tensors) {
    EXPECT_TRUE(set.get(name).equal(t)) << name;
    EXPECT_EQ(set.shape(name), std::vector<int64_t>{100});
    EXPECT_EQ(set.dtype(name), at::kFloat);
  }
  EXPECT_FALSE(set.contains("nope"));
  EXPECT_THROW(set.get("nope"), Error);
}

TEST(Safetensors, ShardingPutsOversizedTensorAloneAndCleansStaleFiles) {
  robometer::test::TempDir dir;
  NamedTensors tensors = {{"small1", at::ones({10})}, {"big", at::ones({1000})}, {"small2", at::ones({10})}};
  save_sharded_safetensors(dir.path().string(), tensors, 100, "ft-model");
  auto index = nlohmann::json::parse(read_bytes(dir / "ft-model.safetensors.index.json"));
  EXPECT_EQ(index["weight_map"]["small1"], "ft-model-00001-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["big"], "ft-model-00002-of-00003.safetensors");
  EXPECT_EQ(index["weight_map"]["small2"], "ft-model-00003-of-00003.safetensors");
  EXPECT_TRUE(SafetensorsSet(dir.path().string(), "ft-model").get("big").equal(at::ones({1000})));

  // Saving again with fewer shards removes the old ones.
  save_sharded_safetensors(dir.path().string(), tensors, 4040, "ft-model");  // 40+4000 | 40
  EXPECT_FALSE(fs::exists(dir / "ft-model-00003-of-00003.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "ft-model-00002-of-00002.safetensors"));
  // Everything fits: one file, no index, no shards left.
  save_sharded_safetensors(dir.path().string(), tensors, 0, "ft-model");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir.path())) files.push_back(e.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"ft-model.safetensors"});
  SafetensorsSet single(dir.path().string(), "ft-model");
  EXPECT_EQ(single.names(), (std::vector<std::string>{"big", "small1", "small2"}));
  EXPECT_EQ(SafetensorsSet((dir / "ft-model.safetensors").string()).names().size(), 3u);
}

// Re-saving a set whose shard names are the same (same count): the previous index is taken
// away before the first shard is replaced, and the new set is complete afterwards.
TEST(Safetensors, ResavingASetWithTheSameShardNames) {
  robometer::test::TempDir dir;
  NamedTensors first = ten_tensors(), second;
  for (const auto& [name, t] : first) second.emplace_back(name, t + 1);
  save_sharded_safetensors(dir.path().string(), first, 1000);
  save_sharded_safetensors(dir.path().string(), second, 1000);
  SafetensorsSet set(dir.path().string());
  for (const auto& [name, t] : second) EXPECT_TRUE(set.get(name).equal(t)) << name;
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 6);  // 5 shards + index, no temp files
}

TEST(Safetensors, ShardedSetRejectsBadIndex) {
  robometer::test::TempDir dir;
  save_sharded_safetensors(dir.path().string(), ten_tensors(), 1000);
  const auto index_path = dir / "model.safetensors.index.json";
  auto expect_error = [&](const std::string& index, const std::string& needle) {
    std::ofstream(index_path, std::ios::trunc) << index;
    try {
      SafetensorsSet set(dir.path().string());
      ADD_FAILURE() << "accepted index " << index;
    } catch (const FormatError& e) {
      EXPECT_EQ(e.path(), index_path.string());
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(R"({"weight_map":{"layer.0.weight":"../model-00001-of-00005.safetensors"}})",
               "not a plain file name");
  expect_error(R"({"weight_map":{"layer.0.weight":"model-00001-of-00005.safetensors\u0000x"}})",
               "not a plain file name");
  expect_error(R"({"weight_map":{"layer.0.weight":"missing.safetensors"}})", "does not exist");
  expect_error(R"({"weight_map":{"layer.0.weight":"model-00002-of-00005.safetensors"}})",
               "has no such tensor");
  expect_error(R"({"weight_map":{"layer.0.weight":"model-00001-of-00005.safetensors","layer.0.weight":"x"}})",
               "duplicate key");
  expect_error(R"({"metadata":{}})", "missing \"weight_map\"");
  expect_error(R"({"weight_map":{"layer.0.weight":7}})", "not a file name string");
  expect_error("{not json", "invalid JSON");
  EXPECT_THROW(SafetensorsSet((dir / "nowhere").string()), Error);
  robometer::test::TempDir empty;
  EXPECT_THROW(SafetensorsSet(empty.path().string()), Error);
}

// ---------------------------------------------------------------- another implementation

// Runs `python3 <script> <arg>`; returns the exit status, 127 when python3 is not installed.
int run_python(const robometer::test::TempDir& dir, const char* script, const fs::path& arg) {
  std::ofstream(dir / "script.py") << script;
  const std::string cmd = "python3 -S " + (dir / "script.py").string() + " " + arg.string();
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Independent writer: follows the published format with struct + json only. Tensors are written
// in name order (so some are misaligned), no padding, with metadata.
const char* kPythonWriter = R"PY(
import json, struct, sys
def f16(x): return struct.pack('<e', x)
def bf16(x): return struct.pack('<I', struct.unpack('<I', struct.pack('<f', x))[0])[2:]
tensors = [
  ('a_bool', 'BOOL', [4], bytes([1, 0, 1, 1])),
  ('b_u8',   'U8',   [3], bytes([0, 200, 255])),
  ('c_f32',  'F32',  [2, 2], struct.pack('<4f', 1.0, -2.5, 3.0e-3, 1e20)),
  ('d_i8',   'I8',   [3], struct.pack('<3b', -128, 0, 127)),
  ('e_f16',  'F16',  [3], f16(1.0) + f16(-0.5) + f16(65504.0)),
  ('f_bf16', 'BF16', [3], bf16(1.0) + bf16(-2.0) + bf16(3.140625)),
  ('g_i16',  'I16',  [2], struct.pack('<2h', -300, 301)),
  ('h_i32',  'I32',  [2], struct.pack('<2i', -70000, 2147483647)),
  ('i_i64',  'I64',  [2], struct.pack('<2q', -9007199254740993, 1 << 40)),
  ('j_f64',  'F64',  [2], struct.pack('<2d', 0.1, -1e300)),
  ('k_scalar', 'F32', [], struct.pack('<f', 7.0)),
]
header, data = {'__metadata__': {'format': 'pt', 'writer': 'python'}}, b''
for name, dtype, shape, raw in tensors:
  header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
  data += raw
h = json.dumps(header).encode('utf-8')
with open(sys.argv[1], 'wb') as f:
  f.write(struct.pack('<Q', len(h)) + h + data)
)PY";

TEST(Safetensors, ReadsFileWrittenByIndependentPythonWriter) {
  robometer::test::TempDir dir;
  const auto out = dir / "py.safetensors";
  const int rc = run_python(dir, kPythonWriter, out);
  if (rc == 127) GTEST_SKIP() << "python3 not found";
  ASSERT_EQ(rc, 0) << "the Python writer failed";

  SafetensorsFile f(out.string());
  EXPECT_EQ(f.metadata().at("writer"), "python");
  EXPECT_EQ(f.names().size(), 11u);
  EXPECT_TRUE(f.get("a_bool").equal(from_values<uint8_t>({1, 0, 1, 1}, at::kBool)));
  EXPECT_TRUE(f.get("b_u8").equal(from_values<uint8_t>({0, 200, 255}, at::kByte)));
  expect_same_bits(from_values<float>({1.0f, -2.5f, 3.0e-3f, 1e20f}, at::kFloat, {2, 2}), f.get("c_f32"),
                   "c_f32");
  EXPECT_TRUE(f.get("d_i8").equal(from_values<int8_t>({-128, 0, 127}, at::kChar)));
  expect_same_bits(from_values<uint16_t>({0x3C00, 0xB800, 0x7BFF}, at::kHalf), f.get("e_f16"), "e_f16");
  expect_same_bits(from_values<uint16_t>({0x3F80, 0xC000, 0x4049}, at::kBFloat16), f.get("f_bf16"), "f_bf16");
  EXPECT_TRUE(f.get("g_i16").equal(from_values<int16_t>({-300, 301}, at::kShort)));
  EXPECT_TRUE(f.get("h_i32").equal(from_values<int32_t>({-70000, 2147483647}, at::kInt)));
  EXPECT_TRUE(f.get("i_i64").equal(from_values<int64_t>({-9007199254740993LL, 1LL << 40}, at::kLong)));
  expect_same_bits(from_values<double>({0.1, -1e300}, at::kDouble), f.get("j_f64"), "j_f64");
  EXPECT_EQ(f.get("k_scalar").dim(), 0);
  EXPECT_EQ(f.get("k_scalar").item<float>(), 7.0f);
  EXPECT_EQ(f.get("e_f16")[2].item<float>(), 65504.0f);
}

// Independent reader: parses our file with struct + json and checks layout rules and values.
const char* kPythonReader = R"PY(
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
n, = struct.unpack('<Q', raw[:8])
assert n % 8 == 0, 'header not padded to 8 bytes'
text = raw[8:8 + n].decode('utf-8')
assert text.rstrip(' ') == text.rstrip(), 'padding must be spaces'
header = json.loads(text)
data = raw[8 + n:]
assert header.pop('__metadata__') == {'format': 'pt'}
spans = sorted(tuple(v['data_offsets']) for v in header.values())
pos = 0
for b, e in spans:
  assert b == pos, 'gap or overlap'; pos = e
assert pos == len(data), 'data not fully covered'
def get(name, fmt):
  e = header[name]; b, end = e['data_offsets']
  return list(struct.unpack('<' + fmt * ((end - b) // struct.calcsize(fmt)), data[b:end])), e
v, e = get('w', 'f'); assert e['dtype'] == 'F32' and e['shape'] == [2, 2] and v == [0.5, -1.0, 2.0, 1024.0], v
v, e = get('ids', 'q'); assert e['dtype'] == 'I64' and v == [-5, 1 << 50], v
v, e = get('mask', '?'); assert e['dtype'] == 'BOOL' and v == [True, False, True], v
v, e = get('h', 'e'); assert e['dtype'] == 'F16' and v == [1.5, -0.25], v
v, e = get('b', 'H'); assert e['dtype'] == 'BF16' and v == [0x3FC0, 0xC2C8], v
)PY";

TEST(Safetensors, FileIsReadableByIndependentPythonReader) {
  robometer::test::TempDir dir;
  const auto path = dir / "ours.safetensors";
  save_safetensors(path.string(),
                   {{"mask", from_values<uint8_t>({1, 0, 1}, at::kBool)},
                    {"h", at::tensor({1.5f, -0.25f}).to(at::kHalf)},
                    {"w", at::tensor({0.5f, -1.0f, 2.0f, 1024.0f}).reshape({2, 2})},
                    {"b", at::tensor({1.5f, -100.0f}).to(at::kBFloat16)},  // 0x3FC0, 0xC2C8
                    {"ids", at::tensor(std::vector<int64_t>{-5, 1LL << 50})}},
                   {{"format", "pt"}});
  const int rc = run_python(dir, kPythonReader, path);
  if (rc == 127) GTEST_SKIP() << "python3 not found";
  EXPECT_EQ(rc, 0) << "the Python reader rejected our file (see its assertion above)";
}

}  // namespace
