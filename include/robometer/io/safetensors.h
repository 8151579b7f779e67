// safetensors (https://huggingface.co/docs/safetensors) reading and writing: the weight format
// shared with Python. Reads mmap the file and hand out zero-copy views where dtype and
// alignment allow; writes go to a temp file in the same directory, fsync, then rename.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace robometer::io {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;  // order is kept on write
using Metadata = std::map<std::string, std::string>;                    // "__metadata__"

// One .safetensors file, validated on open (header length cap, JSON shape, dtype names,
// offsets in range / non-overlapping / covering the data, duplicate names). Any violation
// throws FormatError naming the file and the problem.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::string& path() const;
  std::vector<std::string> names() const;           // in file order (by offset)
  bool contains(const std::string& name) const;
  const Metadata& metadata() const;
  std::vector<int64_t> shape(const std::string& name) const;
  at::ScalarType dtype(const std::string& name) const;

  // A CPU tensor viewing the mapped bytes (kept alive by the tensor); copied when the data is
  // misaligned for its dtype. Throws Error on an unknown name.
  at::Tensor get(const std::string& name) const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// Validates a header (the JSON bytes after the 8-byte length) against a data section of
// `data_size` bytes; used by SafetensorsFile and by the fuzz target. Throws FormatError.
void validate_safetensors_header(const std::string& path, const char* json, size_t json_len,
                                 uint64_t data_size);

// All tensors of a file (owning copies, independent of the mapping).
NamedTensors load_safetensors(const std::string& path);

// Writes contiguous CPU copies of `tensors` atomically. Throws Error on duplicate names or
// an unsupported dtype.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const Metadata& metadata = {});

// Sharded sets (HF layout): <dir>/<stem>.safetensors when everything fits in one shard, else
// <stem>-00001-of-0000N.safetensors + <stem>.safetensors.index.json {"metadata":{"total_size"},
// "weight_map":{name: shard}}. max_shard_bytes <= 0 means one shard.
void save_sharded_safetensors(const std::string& dir, const NamedTensors& tensors,
                              int64_t max_shard_bytes, const std::string& stem = "model",
                              const Metadata& metadata = {});

// Reads a directory holding either <stem>.safetensors.index.json (+ shards) or
// <stem>.safetensors, or a single file path. Views stay valid while the object lives.
class SafetensorsSet {
 public:
  explicit SafetensorsSet(const std::string& dir_or_file, const std::string& stem = "model");
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  at::Tensor get(const std::string& name) const;
  std::vector<int64_t> shape(const std::string& name) const;
  at::ScalarType dtype(const std::string& name) const;

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;
};

// "F32" <-> at::kFloat, etc. Throws FormatError/Error on an unknown name/type.
at::ScalarType safetensors_dtype(const std::string& name);
std::string safetensors_dtype_name(at::ScalarType t);

}  // namespace robometer::io
