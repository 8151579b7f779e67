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

#include "robometer/io/safetensors_header.h"  // validation (torch-free), limits

namespace robometer::io {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;  // write order: see save_safetensors
using Metadata = std::map<std::string, std::string>;                   // "__metadata__"

// One .safetensors file, mmapped and validated on open (header length cap of
// kSafetensorsMaxHeaderBytes, JSON shape, dtype names, offsets in range / non-overlapping /
// covering the data, duplicate names). Any violation throws FormatError naming the file and the
// problem. The mapping is private copy-on-write: writing into a returned view never changes the
// file. (Truncating the file on disk while it is mapped is not detected and may SIGBUS.)
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;  // owns the mapping (Impl)
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  SafetensorsFile(SafetensorsFile&&) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept;

  const std::string& path() const;
  std::vector<std::string> names() const;  // in file order (by offset)
  bool contains(const std::string& name) const;
  const Metadata& metadata() const;
  std::vector<int64_t> shape(const std::string& name) const;
  at::ScalarType dtype(const std::string& name) const;

  // A CPU tensor viewing the mapped bytes (kept alive by the tensor); copied when the data is
  // misaligned for its dtype. Throws Error on an unknown name, FormatError on a dtype LibTorch
  // cannot hold (U16/U32/U64/F8_*).
  at::Tensor get(const std::string& name) const;
  const SafetensorsHeader& header() const;
  // The whole mapped file (for checks such as "is this tensor a view of the mapping").
  const uint8_t* mapped_bytes() const;
  size_t mapped_size() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// validate_safetensors_header(path, json, json_len, data_size) is declared in
// safetensors_header.h (torch-free, linked alone by the fuzz target).

// All tensors of a file (owning copies, independent of the mapping).
NamedTensors load_safetensors(const std::string& path);

// Writes contiguous CPU copies of `tensors` atomically (temp file in the same directory, fsync,
// rename, fsync dir). The header is padded with spaces to a multiple of 8 bytes like the
// reference writer. Tensors are laid out by element size, largest first (stable, so the given
// order is kept within one element size), which keeps every tensor aligned for zero-copy reads.
// Throws Error on duplicate names, the reserved name "__metadata__" or an unsupported
// dtype.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

// Sharded sets (HF layout): <dir>/<stem>.safetensors when everything fits in one shard, else
// <stem>-00001-of-0000N.safetensors + <stem>.safetensors.index.json {"metadata":{"total_size"},
// "weight_map":{name: shard}}. max_shard_bytes <= 0 means one shard. Tensors go into shards in
// the given order; a shard is closed when the next tensor would push it past max_shard_bytes (a
// tensor larger than the limit gets a shard of its own, as in huggingface_hub). Every shard
// carries `metadata`; the index is written last, and stale shards / index of an earlier save with
// the same stem are removed afterwards.
void save_sharded_safetensors(const std::string& dir, const NamedTensors& tensors, int64_t max_shard_bytes,
                              const std::string& stem = "model", const Metadata& metadata = {});

// Reads a directory holding either <stem>.safetensors.index.json (+ shards) or
// <stem>.safetensors, or a single file path. Returned views keep their mapping alive themselves.
// Shard names in the index must be plain file names in the same directory.
class SafetensorsSet {
 public:
  explicit SafetensorsSet(const std::string& dir_or_file, const std::string& stem = "model");
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  at::Tensor get(const std::string& name) const;
  std::vector<int64_t> shape(const std::string& name) const;
  at::ScalarType dtype(const std::string& name) const;

 private:
  void open(const std::string& stem);
  std::string path_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;
};

// "F32" <-> at::kFloat, etc. for F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. Throws Error on an
// unknown name, on a safetensors dtype LibTorch cannot hold (U16, U32, U64, F8_*) and on a
// torch dtype safetensors cannot hold.
at::ScalarType safetensors_dtype(const std::string& name);
std::string safetensors_dtype_name(at::ScalarType t);

}  // namespace robometer::io
