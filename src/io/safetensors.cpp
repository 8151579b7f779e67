// safetensors reading (mmap, zero-copy views) and writing (atomic, HF-compatible layout,
// sharded sets with model.safetensors.index.json). Header validation lives in
// safetensors_header.cpp (torch-free).
#include "robometer/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>

#include "robometer/core/error.h"
#include "robometer/io/atomic_file.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; this reader maps it without byte swapping");

namespace robometer::io {
namespace fs = std::filesystem;
using nlohmann::json;

// ------------------------------------------------------------------ dtypes

namespace {
struct DtypeName {
  const char* name;
  at::ScalarType type;
};
constexpr DtypeName kDtypes[] = {{"F64", at::kDouble},    {"F32", at::kFloat}, {"F16", at::kHalf},
                                 {"BF16", at::kBFloat16}, {"I64", at::kLong},  {"I32", at::kInt},
                                 {"I16", at::kShort},     {"I8", at::kChar},   {"U8", at::kByte},
                                 {"BOOL", at::kBool}};
}  // namespace

at::ScalarType safetensors_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  if (safetensors_dtype_size(name) != 0)
    throw Error("safetensors dtype " + name + " has no LibTorch equivalent here");
  throw Error("unknown safetensors dtype '" + name + "'");
}

std::string safetensors_dtype_name(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.type) return d.name;
  throw Error(std::string("tensor dtype ") + c10::toString(t) + " cannot be stored in safetensors");
}

// ------------------------------------------------------------------ reading

namespace {

// A read-only file mapped private/copy-on-write: views handed out may be written to without
// touching the file. MAP_NORESERVE: no swap is reserved for a multi-GB weight file.
struct Mapping {
  void* addr = nullptr;
  size_t size = 0;
  Mapping() = default;
  Mapping(const Mapping&) = delete;  // one munmap per mapping
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    if (addr) ::munmap(addr, size);
  }
};

std::shared_ptr<Mapping> map_file(const std::string& path, std::vector<uint8_t>& small_file) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FormatError(path, "not a regular file");
  }
  auto mapping = std::make_shared<Mapping>();
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < 8) {  // too small to map usefully; read it so the validator reports the problem
    small_file.resize(size);
    ssize_t n = ::read(fd, small_file.data(), size);
    ::close(fd);
    if (n < 0) throw Error(path + ": read failed: " + std::strerror(errno));
    small_file.resize(static_cast<size_t>(n));
    return mapping;
  }
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps its own reference to the file
  if (addr == MAP_FAILED) throw Error(path + ": mmap failed: " + std::strerror(err));
  mapping->addr = addr;
  mapping->size = size;
  return mapping;
}

}  // namespace

struct SafetensorsFile::Impl {
  std::string path;
  std::shared_ptr<Mapping> mapping;
  SafetensorsHeader header;
  std::unordered_map<std::string, size_t> index;  // name -> header.tensors position

  const SafetensorsTensorInfo& info(const std::string& name) const {
    auto it = index.find(name);
    if (it == index.end()) throw Error(path + ": no tensor named '" + name + "'");
    return header.tensors[it->second];
  }
  at::ScalarType torch_dtype(const SafetensorsTensorInfo& t) const {
    try {
      return safetensors_dtype(t.dtype);
    } catch (const Error& e) {
      throw FormatError(path, "tensor '" + t.name + "': " + e.what());
    }
  }
};

SafetensorsFile::SafetensorsFile(const std::string& path) : impl_(std::make_shared<Impl>()) {
  impl_->path = path;
  std::vector<uint8_t> small_file;
  impl_->mapping = map_file(path, small_file);
  if (!impl_->mapping->addr) {
    parse_safetensors_image(path, small_file.data(), small_file.size());  // throws: < 8 bytes
    throw FormatError(path, "file too small");                            // not reached
  }
  impl_->header =
      parse_safetensors_image(path, static_cast<const uint8_t*>(impl_->mapping->addr), impl_->mapping->size);
  for (size_t i = 0; i < impl_->header.tensors.size(); ++i) impl_->index[impl_->header.tensors[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() = default;
SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;

const std::string& SafetensorsFile::path() const { return impl_->path; }
const Metadata& SafetensorsFile::metadata() const { return impl_->header.metadata; }
const SafetensorsHeader& SafetensorsFile::header() const { return impl_->header; }
const uint8_t* SafetensorsFile::mapped_bytes() const {
  return static_cast<const uint8_t*>(impl_->mapping->addr);
}
size_t SafetensorsFile::mapped_size() const { return impl_->mapping->size; }

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  for (const auto& t : impl_->header.tensors) out.push_back(t.name);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return impl_->index.count(name) > 0; }

std::vector<int64_t> SafetensorsFile::shape(const std::string& name) const { return impl_->info(name).shape; }

at::ScalarType SafetensorsFile::dtype(const std::string& name) const {
  return impl_->torch_dtype(impl_->info(name));
}

at::Tensor SafetensorsFile::get(const std::string& name) const {
  const SafetensorsTensorInfo& t = impl_->info(name);
  const at::ScalarType type = impl_->torch_dtype(t);
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  const size_t nbytes = static_cast<size_t>(t.end - t.begin);
  if (nbytes == 0) return at::empty(t.shape, options);
  uint8_t* bytes = static_cast<uint8_t*>(impl_->mapping->addr) + impl_->header.data_start + t.begin;

  if (type == at::kBool) {  // a byte other than 0/1 is not a valid bool (undefined behaviour in torch)
    for (size_t i = 0; i < nbytes; ++i)
      if (bytes[i] > 1)
        throw FormatError(impl_->path, "BOOL tensor '" + name + "' holds byte value " +
                                           std::to_string(bytes[i]) + " at element " + std::to_string(i) +
                                           " (must be 0 or 1)");
  }

  const size_t elem_size = c10::elementSize(type);
  if (reinterpret_cast<uintptr_t>(bytes) % elem_size == 0) {
    std::shared_ptr<Mapping> keep_alive = impl_->mapping;
    return at::from_blob(
        bytes, t.shape, [keep_alive](void*) {}, options);
  }
  at::Tensor copy = at::empty(t.shape, options);  // misaligned for the dtype: copy out
  std::memcpy(copy.data_ptr(), bytes, nbytes);
  return copy;
}

NamedTensors load_safetensors(const std::string& path) {
  SafetensorsFile file(path);
  NamedTensors out;
  for (const auto& name : file.names()) out.emplace_back(name, file.get(name).clone());
  return out;
}

// ------------------------------------------------------------------ writing

namespace {

struct Prepared {
  std::string name;
  at::Tensor tensor;  // contiguous CPU
  std::string dtype;
  size_t nbytes = 0;
};

std::vector<Prepared> prepare(const std::string& path, const NamedTensors& tensors) {
  std::vector<Prepared> out;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw Error(path + ": '__metadata__' is reserved and cannot name a tensor");
    if (!seen.insert(name).second) throw Error(path + ": duplicate tensor name '" + name + "'");
    if (!tensor.defined()) throw Error(path + ": tensor '" + name + "' is undefined");
    if (tensor.layout() != at::kStrided) throw Error(path + ": tensor '" + name + "' is not a dense tensor");
    Prepared p;
    p.name = name;
    try {
      p.dtype = safetensors_dtype_name(tensor.scalar_type());
    } catch (const Error& e) {
      throw Error(path + ": tensor '" + name + "': " + e.what());
    }
    p.tensor = tensor.detach().to(at::kCPU).contiguous();
    p.nbytes = static_cast<size_t>(p.tensor.numel()) * p.tensor.element_size();
    out.push_back(std::move(p));
  }
  return out;
}

void write_prepared(const std::string& path, std::vector<Prepared> tensors, const Metadata& metadata) {
  // Largest elements first keeps every tensor aligned to its element size (the data buffer
  // starts 8-aligned), so readers can map it without copies. Stable: caller order otherwise.
  std::stable_sort(tensors.begin(), tensors.end(), [](const Prepared& a, const Prepared& b) {
    return a.tensor.element_size() > b.tensor.element_size();
  });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    auto& meta = header["__metadata__"];
    meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.tensor.sizes().vec()}, {"data_offsets", {offset, offset + t.nbytes}}};
    offset += t.nbytes;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": a tensor name or metadata string is not valid UTF-8 (" + e.what() + ")");
  }
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');

  uint8_t length[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));

  AtomicFileWriter out(path);
  out.write(length, sizeof(length));
  out.write(text);
  for (const auto& t : tensors) out.write(t.tensor.data_ptr(), t.nbytes);
  out.commit();
}

std::string shard_name(const std::string& stem, size_t index, size_t count) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "-%05zu-of-%05zu.safetensors", index, count);
  return stem + buf;
}

// "<stem>-DDDDD-of-DDDDD.safetensors" (the HF shard pattern), any counts.
bool is_shard_name(const std::string& file, const std::string& stem) {
  const std::string suffix = ".safetensors";
  if (file.size() != stem.size() + 1 + 5 + 4 + 5 + suffix.size()) return false;
  if (file.compare(0, stem.size() + 1, stem + "-") != 0) return false;
  if (file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  const std::string mid = file.substr(stem.size() + 1, 14);  // DDDDD-of-DDDDD
  for (size_t i = 0; i < mid.size(); ++i) {
    bool digit_pos = i < 5 || i >= 9;
    if (digit_pos ? !std::isdigit(static_cast<unsigned char>(mid[i])) : mid[i] != "-of-"[i - 5]) return false;
  }
  return true;
}

void remove_stale(const fs::path& dir, const std::string& stem, const std::set<std::string>& keep) {
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    bool ours = is_shard_name(file, stem) || file == stem + ".safetensors" ||
                file == stem + ".safetensors.index.json";
    if (ours && !keep.count(file)) stale.push_back(entry.path());
  }
  // The index first: a reader must never meet an index that names a shard already removed.
  std::stable_partition(stale.begin(), stale.end(),
                        [&](const fs::path& p) { return p.filename() == stem + ".safetensors.index.json"; });
  for (const auto& p : stale) fs::remove(p);
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  write_prepared(path, prepare(path, tensors), metadata);
}

namespace {
void save_sharded_impl(const std::string& dir, const NamedTensors& tensors, int64_t max_shard_bytes,
                       const std::string& stem, const Metadata& metadata) {
  if (stem.empty() || stem.find('/') != std::string::npos)
    throw Error(dir + ": invalid file stem '" + stem + "'");
  fs::create_directories(dir);
  std::vector<Prepared> all = prepare(dir, tensors);
  size_t total = 0;
  for (const auto& t : all) total += t.nbytes;

  if (max_shard_bytes <= 0 || total <= static_cast<size_t>(max_shard_bytes)) {
    const std::string file = stem + ".safetensors";
    write_prepared((fs::path(dir) / file).string(), std::move(all), metadata);
    remove_stale(dir, stem, {file});
    return;
  }

  // Greedy split in the given order, as huggingface_hub's split_torch_state_dict_into_shards.
  std::vector<std::vector<Prepared>> shards(1);
  size_t current = 0;
  for (auto& t : all) {
    if (!shards.back().empty() && current + t.nbytes > static_cast<size_t>(max_shard_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    current += t.nbytes;
    shards.back().push_back(std::move(t));
  }

  // New shards may reuse the names of a previous set in this directory: take its index away
  // first, so that a crash half-way leaves no index (a clear "no weights" error) rather than
  // the old index over a mix of old and new shards, which would load without complaint.
  const std::string index_file = stem + ".safetensors.index.json";
  std::error_code ec;
  fs::remove(fs::path(dir) / index_file, ec);
  if (ec)
    throw Error((fs::path(dir) / index_file).string() +
                ": cannot remove the previous index: " + ec.message());
  json weight_map = json::object();
  std::set<std::string> written;
  for (size_t i = 0; i < shards.size(); ++i) {
    const std::string file = shard_name(stem, i + 1, shards.size());
    for (const auto& t : shards[i]) weight_map[t.name] = file;
    write_prepared((fs::path(dir) / file).string(), std::move(shards[i]), metadata);
    written.insert(file);
  }
  // The index goes last: only a complete set of shards is ever indexed.
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic((fs::path(dir) / index_file).string(), index.dump(2) + "\n");
  written.insert(index_file);
  remove_stale(dir, stem, written);
}
}  // namespace

void save_sharded_safetensors(const std::string& dir, const NamedTensors& tensors, int64_t max_shard_bytes,
                              const std::string& stem, const Metadata& metadata) {
  try {
    save_sharded_impl(dir, tensors, max_shard_bytes, stem, metadata);
  } catch (const fs::filesystem_error& e) {
    throw Error(dir + ": " + e.what());
  }
}

// ------------------------------------------------------------------ sharded reading

SafetensorsSet::SafetensorsSet(const std::string& dir_or_file, const std::string& stem) : path_(dir_or_file) {
  try {
    open(stem);
  } catch (const fs::filesystem_error& e) {
    throw Error(dir_or_file + ": " + e.what());
  }
}

void SafetensorsSet::open(const std::string& stem) {
  const fs::path p(path_);
  const std::string& dir_or_file = path_;
  if (fs::is_regular_file(p)) {
    files_.emplace_back(p.string());
    for (const auto& name : files_[0].names()) where_[name] = 0;
    return;
  }
  if (!fs::is_directory(p)) throw Error(dir_or_file + ": no such file or directory");

  const fs::path index_path = p / (stem + ".safetensors.index.json");
  if (!fs::exists(index_path)) {
    const fs::path single = p / (stem + ".safetensors");
    if (!fs::exists(single))
      throw Error(dir_or_file + ": holds neither " + single.filename().string() + " nor " +
                  index_path.filename().string());
    files_.emplace_back(single.string());
    for (const auto& name : files_[0].names()) where_[name] = 0;
    return;
  }

  const std::string ipath = index_path.string();
  if (!fs::is_regular_file(index_path)) throw FormatError(ipath, "not a regular file");
  if (fs::file_size(index_path) > kSafetensorsMaxHeaderBytes)
    throw FormatError(ipath,
                      "index file larger than " + std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");
  std::ifstream in(index_path, std::ios::binary);
  if (!in) throw Error(ipath + ": cannot open: " + std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  json index = parse_json_strict(ipath, text.data(), text.size());
  if (!index.is_object()) throw FormatError(ipath, "index must be a JSON object");
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object())
    throw FormatError(ipath, "missing \"weight_map\" object (tensor name -> shard file)");

  std::map<std::string, size_t> shard_slot;
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string())
      throw FormatError(ipath, "weight_map entry '" + name + "' is not a file name string");
    const std::string file = shard.get<std::string>();
    if (file.empty() || file == "." || file == ".." ||
        file.find_first_of(std::string("/\0", 2)) != std::string::npos) {
      std::string shown = file;  // keep the message printable (the name may hold a NUL)
      std::replace_if(
          shown.begin(), shown.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }, '?');
      throw FormatError(ipath, "weight_map entry '" + name + "' names '" + shown +
                                   "', which is not a plain file name in the index's directory");
    }
    auto slot = shard_slot.find(file);
    if (slot == shard_slot.end()) {
      const fs::path shard_path = p / file;
      if (!fs::exists(shard_path))
        throw FormatError(ipath, "shard '" + file + "' (for tensor '" + name + "') does not exist");
      files_.emplace_back(shard_path.string());
      slot = shard_slot.emplace(file, files_.size() - 1).first;
    }
    if (!files_[slot->second].contains(name))
      throw FormatError(ipath,
                        "weight_map puts tensor '" + name + "' in '" + file + "', which has no such tensor");
    where_[name] = slot->second;
  }
}

std::vector<std::string> SafetensorsSet::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : where_) out.push_back(name);
  return out;
}

bool SafetensorsSet::contains(const std::string& name) const { return where_.count(name) > 0; }

namespace {
size_t locate(const std::map<std::string, size_t>& where, const std::string& path, const std::string& name) {
  auto it = where.find(name);
  if (it == where.end()) throw Error(path + ": no tensor named '" + name + "'");
  return it->second;
}
}  // namespace

at::Tensor SafetensorsSet::get(const std::string& name) const {
  return files_[locate(where_, path_, name)].get(name);
}
std::vector<int64_t> SafetensorsSet::shape(const std::string& name) const {
  return files_[locate(where_, path_, name)].shape(name);
}
at::ScalarType SafetensorsSet::dtype(const std::string& name) const {
  return files_[locate(where_, path_, name)].dtype(name);
}

}  // namespace robometer::io
