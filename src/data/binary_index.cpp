// The binary trajectory index: layout, builder, validated memory-mapped reader, freshness.
#include "robometer/data/binary_index.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "robometer/core/error.h"
#include "robometer/data/manifest.h"
#include "robometer/io/atomic_file.h"

namespace robometer::data {
namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'R', 'B', 'M', 'I', 'N', 'D', 'E', 'X'};
constexpr uint32_t kByteOrderMark = 0x01020304;

struct FileHeader {  // 128 bytes
  char magic[8];
  uint32_t version;
  uint32_t byte_order;  // kByteOrderMark as the writer saw it
  uint64_t file_size;
  uint64_t num_trajectories, num_tasks, num_sources;
  uint64_t header_size, header_mtime_ns, records_size, records_mtime_ns, content_hash;
  uint64_t body_hash;  // every byte after this header
  uint64_t name_off;
  uint32_t name_len, num_sections;
  uint64_t reserved[2];
};
static_assert(sizeof(FileHeader) == 128, "FileHeader is a file format");

struct SectionEntry {
  uint32_t id, elem_size;
  uint64_t offset, count;
};

enum Section : uint32_t {
  kRecords = 1,
  kStrings,
  kTaskNames,
  kSourceNames,
  kOffsetsBase = 10,  // + Table: CSR offsets
  kTablesBase = 20,   // + Table: CSR positions
  kSourceTasksOff = 30,
  kSourceTasks,
  kTasksWithSuccessful,
  kById,
  kSourceFlags,
  kSourceFrames,
  kTaskFrames,
  kQualityStats,
};

// 64-bit hash, 8 bytes per step (a multiply-xorshift mix; fast, not cryptographic).
struct Hasher {
  uint64_t h = 0x243F6A8885A308D3ULL, n = 0;
  uint64_t tail = 0;
  int tail_len = 0;
  static uint64_t mix(uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ULL;
    x ^= x >> 32;
    return x;
  }
  void word(uint64_t w) { h = (h ^ mix(w + 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL; }
  void update(const char* p, size_t len) {
    n += len;
    while (len && tail_len) {  // finish a partial word first
      tail |= static_cast<uint64_t>(static_cast<unsigned char>(*p++)) << (8 * tail_len);
      --len;
      if (++tail_len == 8) {
        word(tail);
        tail = 0;
        tail_len = 0;
      }
    }
    for (; len >= 8; p += 8, len -= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      word(w);
    }
    for (; len; --len) tail |= static_cast<uint64_t>(static_cast<unsigned char>(*p++)) << (8 * tail_len++);
  }
  uint64_t final() const {
    uint64_t x = h;
    if (tail_len) x = (x ^ mix(tail)) * 0xBF58476D1CE4E5B9ULL;
    return mix(x ^ n);
  }
};

uint64_t hash_bytes(const char* p, size_t n) {
  Hasher h;
  h.update(p, n);
  return h.final();
}

uint64_t mtime_ns(const struct stat& st) {
  return static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ULL + static_cast<uint64_t>(st.st_mtim.tv_nsec);
}

// Counting sort of positions into groups: CSR offsets + positions, ascending within a group.
void csr(const std::vector<uint32_t>& group_of, uint32_t groups, std::vector<uint64_t>& off,
         std::vector<int64_t>& pos, uint32_t skip = UINT32_MAX) {
  off.assign(groups + 1, 0);
  for (uint32_t g : group_of)
    if (g != skip) off[g + 1]++;
  for (uint32_t g = 0; g < groups; ++g) off[g + 1] += off[g];
  pos.assign(off[groups], 0);
  std::vector<uint64_t> fill(off.begin(), off.end() - 1);
  for (size_t i = 0; i < group_of.size(); ++i)
    if (group_of[i] != skip) pos[fill[group_of[i]]++] = static_cast<int64_t>(i);
}

// The section table and the pieces of the body, 8-byte aligned. The pieces point into the
// builder's buffers: nothing is copied until they are written (a 1M-trajectory index is 160 MB,
// and a second copy of it was most of `data index`'s peak memory).
struct Layout {
  std::vector<SectionEntry> sections;
  std::vector<std::pair<const char*, size_t>> pieces;
  uint64_t body_size = 0;  // offsets are relative to the body until written
  void pad() {
    static const char zeros[8] = {};
    if (body_size % 8) {
      const size_t n = 8 - body_size % 8;
      pieces.emplace_back(zeros, n);
      body_size += n;
    }
  }
  template <class T>
  void add(uint32_t id, const T* data, size_t count) {
    pad();
    sections.push_back({id, static_cast<uint32_t>(sizeof(T)), body_size, count});
    pieces.emplace_back(reinterpret_cast<const char*>(data), count * sizeof(T));
    body_size += count * sizeof(T);
  }
  template <class T>
  void add(uint32_t id, const std::vector<T>& v) {
    add(id, v.data(), v.size());
  }
};

}  // namespace

uint64_t hash_files(const std::vector<std::string>& paths) {
  Hasher h;
  std::vector<char> buf(1 << 20);
  for (const auto& p : paths) {
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw FormatError(p, std::string("cannot open: ") + std::strerror(errno));
    ssize_t n;
    while ((n = ::read(fd, buf.data(), buf.size())) > 0) h.update(buf.data(), static_cast<size_t>(n));
    const int err = errno;
    ::close(fd);
    if (n < 0) throw FormatError(p, std::string("read failed: ") + std::strerror(err));
  }
  return h.final();
}

ManifestStamp stamp_manifest(const std::string& dir, bool with_hash) {
  const std::string header = (fs::path(dir) / "manifest.json").string();
  const std::string records = (fs::path(dir) / "trajectories.jsonl").string();
  ManifestStamp s;
  struct stat st {};
  if (::stat(header.c_str(), &st) != 0)
    throw FormatError(header, "cannot open (is this a robometer manifest directory?)");
  s.header_size = static_cast<uint64_t>(st.st_size);
  s.header_mtime_ns = mtime_ns(st);
  if (::stat(records.c_str(), &st) != 0) throw FormatError(records, "cannot open");
  s.records_size = static_cast<uint64_t>(st.st_size);
  s.records_mtime_ns = mtime_ns(st);
  if (with_hash) s.content_hash = hash_files({header, records});
  return s;
}

// ------------------------------------------------------------------------------------ builder

IndexBuilder::IndexBuilder(std::string base_dir) : base_dir_(std::move(base_dir)) {}

void IndexBuilder::reserve(int64_t trajectories) {
  if (trajectories <= 0) return;
  records_.reserve(static_cast<size_t>(trajectories));
  lines_.reserve(static_cast<size_t>(trajectories));
}

uint64_t IndexBuilder::put(std::string_view s) {
  const uint64_t off = strings_.size();
  strings_.append(s.data(), s.size());
  return off;
}

uint32_t IndexBuilder::intern(std::unordered_map<std::string, uint32_t>& m, std::vector<std::string>& names,
                              const std::string& s) {
  auto [it, inserted] = m.emplace(s, static_cast<uint32_t>(names.size()));
  if (inserted) names.push_back(s);
  return it->second;
}

void IndexBuilder::add(const Trajectory& t, int64_t line) {
  if (records_.size() >= static_cast<size_t>(INT32_MAX)) throw Error("index: more than 2^31 trajectories");
  IndexRecord r{};
  r.id_off = put(t.id);
  r.id_len = static_cast<uint32_t>(t.id.size());
  std::string path = t.video.path;
  r.path_is_relative = 0;
  if (!base_dir_.empty()) {
    const fs::path rel = fs::path(path).lexically_relative(base_dir_);
    if (!rel.empty() && *rel.begin() != ".." && fs::path(path).is_absolute()) {
      path = rel.string();
      r.path_is_relative = 1;
    }
  }
  r.path_off = put(path);
  r.path_len = static_cast<uint32_t>(path.size());
  r.task = intern(task_ids_, task_names_, t.task);
  r.source = intern(source_ids_, source_names_, t.data_source);
  r.from_s = t.video.from_s;
  r.to_s = t.video.to_s;
  r.num_frames = t.num_frames;
  r.fps = t.fps;
  r.has_partial = t.partial_success.has_value() ? 1 : 0;
  r.partial_success = t.partial_success.value_or(0.f);
  r.quality = static_cast<uint8_t>(t.quality);
  r.is_robot = t.is_robot ? 1 : 0;
  records_.push_back(r);
  lines_.push_back(line);
}

std::string IndexBuilder::finish(const std::string& name, const ManifestStamp& stamp,
                                 const std::string& where) {
  std::string out;
  finish(name, stamp, where, [&out](const char* p, size_t n) {
    if (out.empty()) out.reserve(reinterpret_cast<const FileHeader*>(p)->file_size);
    out.append(p, n);
  });
  return out;
}

void IndexBuilder::finish(const std::string& name, const ManifestStamp& stamp, const std::string& where,
                          const std::function<void(const char*, size_t)>& write) {
  const size_t n = records_.size();
  // Tasks and sources get their rank by name as id (the order the samplers iterate them in).
  auto ranks = [](const std::vector<std::string>& names) {
    std::vector<uint32_t> order(names.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return names[a] < names[b]; });
    std::vector<uint32_t> rank(names.size());
    for (uint32_t r = 0; r < order.size(); ++r) rank[order[r]] = r;
    return std::make_pair(order, rank);
  };
  const auto [task_order, task_rank] = ranks(task_names_);
  const auto [source_order, source_rank] = ranks(source_names_);
  const uint32_t T = static_cast<uint32_t>(task_names_.size()),
                 S = static_cast<uint32_t>(source_names_.size());
  std::vector<StrRef> task_refs(T), source_refs(S);
  for (uint32_t r = 0; r < T; ++r) {
    const auto& s = task_names_[task_order[r]];
    task_refs[r] = {put(s), static_cast<uint32_t>(s.size()), 0};
  }
  for (uint32_t r = 0; r < S; ++r) {
    const auto& s = source_names_[source_order[r]];
    source_refs[r] = {put(s), static_cast<uint32_t>(s.size()), 0};
  }
  std::vector<uint32_t> task(n), source(n);
  for (size_t i = 0; i < n; ++i) {
    records_[i].task = task[i] = task_rank[records_[i].task];
    records_[i].source = source[i] = source_rank[records_[i].source];
  }
  auto id_of = [&](int64_t i) {
    const auto& r = records_[static_cast<size_t>(i)];
    return std::string_view(strings_.data() + r.id_off, r.id_len);
  };

  // Ids sorted (binary search by id) and checked for duplicates.
  std::vector<int64_t> by_id(n);
  std::iota(by_id.begin(), by_id.end(), int64_t{0});
  std::sort(by_id.begin(), by_id.end(), [&](int64_t a, int64_t b) {
    const auto x = id_of(a), y = id_of(b);
    return x < y || (x == y && a < b);
  });
  for (size_t k = 1; k < n; ++k)
    if (id_of(by_id[k]) == id_of(by_id[k - 1])) {
      std::string msg = "duplicate trajectory id '" + std::string(id_of(by_id[k])) + "'";
      const int64_t l0 = lines_[static_cast<size_t>(by_id[k - 1])],
                    l1 = lines_[static_cast<size_t>(by_id[k])];
      if (l0 > 0 && l1 > 0)
        msg += " (" + where + " lines " + std::to_string(l0) + " and " + std::to_string(l1) + ")";
      else if (!where.empty())
        msg += " in " + where;
      throw ConfigError(msg);
    }

  std::vector<uint64_t> off[IndexImage::kNumTables];
  std::vector<int64_t> pos[IndexImage::kNumTables];
  std::vector<uint32_t> succ_task(n), unsucc_task(n), succ_source(n);
  std::vector<int64_t> task_success(T, 0), task_failure(T, 0), source_frames(S, 0), task_frames(T, 0);
  std::vector<int64_t> quality_stats(6, 0);
  std::vector<uint8_t> source_flags(S, 0);
  for (size_t i = 0; i < n; ++i) {
    const auto& r = records_[i];
    const bool ok = r.quality == static_cast<uint8_t>(Quality::Successful);
    succ_task[i] = ok ? task[i] : UINT32_MAX;
    unsucc_task[i] = ok ? UINT32_MAX : task[i];
    succ_source[i] = ok ? source[i] : UINT32_MAX;
    (ok ? task_success : task_failure)[task[i]]++;
    source_flags[source[i]] |= static_cast<uint8_t>((ok ? 0 : 1) | (r.has_partial ? 2 : 0));
    source_frames[source[i]] += r.num_frames;
    task_frames[task[i]] += r.num_frames;
    const size_t q = 2 * static_cast<size_t>(r.quality);
    quality_stats[q] += 1;
    quality_stats[q + 1] += r.num_frames;
  }
  std::vector<uint32_t> both_source(n);
  for (size_t i = 0; i < n; ++i)
    both_source[i] = task_success[task[i]] > 0 && task_failure[task[i]] > 0 ? source[i] : UINT32_MAX;
  csr(task, T, off[IndexImage::ByTask], pos[IndexImage::ByTask]);
  csr(succ_task, T, off[IndexImage::SuccessfulByTask], pos[IndexImage::SuccessfulByTask], UINT32_MAX);
  csr(unsucc_task, T, off[IndexImage::UnsuccessfulByTask], pos[IndexImage::UnsuccessfulByTask], UINT32_MAX);
  csr(source, S, off[IndexImage::BySource], pos[IndexImage::BySource]);
  csr(succ_source, S, off[IndexImage::SuccessfulBySource], pos[IndexImage::SuccessfulBySource], UINT32_MAX);
  csr(both_source, S, off[IndexImage::BothOutcomesBySource], pos[IndexImage::BothOutcomesBySource],
      UINT32_MAX);

  // Tasks per source: the sorted distinct (source, task) pairs.
  std::vector<uint64_t> pairs(n);
  for (size_t i = 0; i < n; ++i) pairs[i] = (static_cast<uint64_t>(source[i]) << 32) | task[i];
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  std::vector<uint64_t> st_off(S + 1, 0);
  std::vector<uint32_t> st(pairs.size());
  for (size_t k = 0; k < pairs.size(); ++k) {
    st_off[(pairs[k] >> 32) + 1]++;
    st[k] = static_cast<uint32_t>(pairs[k] & 0xFFFFFFFFu);
  }
  for (uint32_t s = 0; s < S; ++s) st_off[s + 1] += st_off[s];
  std::vector<uint32_t> with_success;
  for (uint32_t t = 0; t < T; ++t)
    if (task_success[t] > 0) with_success.push_back(t);

  FileHeader h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kIndexVersion;
  h.byte_order = kByteOrderMark;
  h.num_trajectories = n;
  h.num_tasks = T;
  h.num_sources = S;
  h.header_size = stamp.header_size;
  h.header_mtime_ns = stamp.header_mtime_ns;
  h.records_size = stamp.records_size;
  h.records_mtime_ns = stamp.records_mtime_ns;
  h.content_hash = stamp.content_hash;
  h.name_off = put(name);
  h.name_len = static_cast<uint32_t>(name.size());

  Layout L;
  L.add(kRecords, records_);
  L.add(kStrings, strings_.data(), strings_.size());
  L.add(kTaskNames, task_refs);
  L.add(kSourceNames, source_refs);
  for (int t = 0; t < IndexImage::kNumTables; ++t) {
    L.add(kOffsetsBase + t, off[t]);
    L.add(kTablesBase + t, pos[t]);
  }
  L.add(kSourceTasksOff, st_off);
  L.add(kSourceTasks, st);
  L.add(kTasksWithSuccessful, with_success);
  L.add(kById, by_id);
  L.add(kSourceFlags, source_flags);
  L.add(kSourceFrames, source_frames);
  L.add(kTaskFrames, task_frames);
  L.add(kQualityStats, quality_stats);
  L.pad();

  h.num_sections = static_cast<uint32_t>(L.sections.size());
  const uint64_t body_start = sizeof(FileHeader) + L.sections.size() * sizeof(SectionEntry);
  for (auto& sec : L.sections) sec.offset += body_start;
  h.file_size = body_start + L.body_size;
  // The body hash covers everything after the header: hashed piece by piece, then written.
  const auto* table = reinterpret_cast<const char*>(L.sections.data());
  const size_t table_size = L.sections.size() * sizeof(SectionEntry);
  Hasher hasher;
  hasher.update(table, table_size);
  for (const auto& [p, len] : L.pieces) hasher.update(p, len);
  h.body_hash = hasher.final();
  write(reinterpret_cast<const char*>(&h), sizeof h);
  write(table, table_size);
  for (const auto& [p, len] : L.pieces) write(p, len);
}

// ------------------------------------------------------------------------------------ reader

std::shared_ptr<const IndexImage> IndexImage::map_file(const std::string& path, const std::string& base_dir) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FormatError(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw FormatError(path, "cannot stat");
  }
  std::shared_ptr<IndexImage> img(new IndexImage());
  img->what_ = path;
  img->base_dir_ = base_dir;
  img->size_ = static_cast<size_t>(st.st_size);
  if (img->size_ > 0) {
    void* m = ::mmap(nullptr, img->size_, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw FormatError(path, std::string("mmap failed: ") + std::strerror(err));
    }
    img->map_ = m;
    img->data_ = static_cast<const char*>(m);
  }
  ::close(fd);  // the mapping stays valid
  img->parse();
  return img;
}

std::shared_ptr<const IndexImage> IndexImage::from_bytes(std::string bytes, const std::string& base_dir,
                                                         const std::string& what) {
  std::shared_ptr<IndexImage> img(new IndexImage());
  img->what_ = what;
  img->base_dir_ = base_dir;
  img->owned_ = std::move(bytes);
  img->data_ = img->owned_.data();
  img->size_ = img->owned_.size();
  img->parse();
  return img;
}

IndexImage::~IndexImage() {
  if (map_) ::munmap(map_, size_);
}

void IndexImage::corrupt(const std::string& what) const {
  throw FormatError(what_, "corrupt trajectory index: " + what +
                               " (delete it, or rebuild it with `robometer data index DIR`)");
}

void IndexImage::parse() {
  if (size_ < sizeof(FileHeader))
    corrupt("truncated: " + std::to_string(size_) + " bytes, shorter than its header");
  FileHeader h;
  std::memcpy(&h, data_, sizeof h);
  if (std::memcmp(h.magic, kMagic, 8) != 0) corrupt("bad magic (not a robometer trajectory index)");
  if (h.byte_order != kByteOrderMark)
    throw FormatError(what_,
                      "trajectory index written with the other byte order; rebuild it on this machine "
                      "with `robometer data index DIR`");
  if (h.version != kIndexVersion)
    throw FormatError(what_, "trajectory index version " + std::to_string(h.version) +
                                 ", this build reads version " + std::to_string(kIndexVersion) +
                                 "; rebuild it with `robometer data index DIR`");
  if (h.file_size != size_)
    corrupt("truncated or extended: header says " + std::to_string(h.file_size) + " bytes, file has " +
            std::to_string(size_));
  stamp_ = {h.header_size, h.header_mtime_ns, h.records_size, h.records_mtime_ns, h.content_hash};
  body_hash_ = h.body_hash;
  if (h.num_sections > 1024) corrupt("implausible section count " + std::to_string(h.num_sections));
  const uint64_t table_end = sizeof(FileHeader) + uint64_t{h.num_sections} * sizeof(SectionEntry);
  if (table_end > size_) corrupt("section table runs past the end of the file");
  std::vector<SectionEntry> sections(h.num_sections);
  std::memcpy(sections.data(), data_ + sizeof(FileHeader), sections.size() * sizeof(SectionEntry));

  auto section = [&](uint32_t id, auto* tag, uint64_t expect_count) {
    using T = std::remove_pointer_t<decltype(tag)>;
    for (const auto& s : sections) {
      if (s.id != id) continue;
      if (s.elem_size != sizeof(T))
        corrupt("section " + std::to_string(id) + " has element size " + std::to_string(s.elem_size));
      if (s.offset % 8 || s.offset < table_end || s.offset > size_ ||
          s.count > (size_ - s.offset) / sizeof(T))
        corrupt("section " + std::to_string(id) + " lies outside the file (offset " +
                std::to_string(s.offset) + ", " + std::to_string(s.count) + " entries)");
      if (expect_count != UINT64_MAX && s.count != expect_count)
        corrupt("section " + std::to_string(id) + " has " + std::to_string(s.count) + " entries, expected " +
                std::to_string(expect_count));
      return Span<T>{reinterpret_cast<const T*>(data_ + s.offset), static_cast<size_t>(s.count)};
    }
    corrupt("section " + std::to_string(id) + " is missing");
  };
  const uint64_t N = h.num_trajectories, T = h.num_tasks, S = h.num_sources;
  records_ = section(kRecords, (IndexRecord*)nullptr, N);
  strings_ = section(kStrings, (char*)nullptr, UINT64_MAX);
  task_names_ = section(kTaskNames, (StrRef*)nullptr, T);
  source_names_ = section(kSourceNames, (StrRef*)nullptr, S);
  name_ = str(h.name_off, h.name_len);
  for (const auto* names : {&task_names_, &source_names_})
    for (const auto& r : *names) str(r.off, r.len);  // bounds
  auto check_csr = [&](Span<uint64_t> off, uint64_t count, const std::string& what) {
    if (off.n == 0 || off[0] != 0 || off[off.n - 1] != count)
      corrupt(what + " offsets do not span the table");
    for (size_t g = 1; g < off.n; ++g)
      if (off[g] < off[g - 1]) corrupt(what + " offsets decrease at group " + std::to_string(g));
  };
  for (int t = 0; t < kNumTables; ++t) {
    const uint64_t groups = t <= UnsuccessfulByTask ? T : S;
    offsets_[t] = section(kOffsetsBase + t, (uint64_t*)nullptr, groups + 1);
    tables_[t] = section(kTablesBase + t, (int64_t*)nullptr, UINT64_MAX);
    check_csr(offsets_[t], tables_[t].n, "lookup table " + std::to_string(t));
  }
  source_tasks_off_ = section(kSourceTasksOff, (uint64_t*)nullptr, S + 1);
  source_tasks_ = section(kSourceTasks, (uint32_t*)nullptr, UINT64_MAX);
  check_csr(source_tasks_off_, source_tasks_.n, "tasks-per-source");
  for (uint32_t t : source_tasks_)
    if (t >= T) corrupt("tasks-per-source names task " + std::to_string(t) + " of " + std::to_string(T));
  tasks_with_successful_ = section(kTasksWithSuccessful, (uint32_t*)nullptr, UINT64_MAX);
  for (uint32_t t : tasks_with_successful_)
    if (t >= T) corrupt("successful-task list names task " + std::to_string(t) + " of " + std::to_string(T));
  by_id_ = section(kById, (int64_t*)nullptr, N);
  source_flags_ = section(kSourceFlags, (uint8_t*)nullptr, S);
  source_frames_ = section(kSourceFrames, (int64_t*)nullptr, S);
  task_frames_ = section(kTaskFrames, (int64_t*)nullptr, T);
  quality_stats_ = section(kQualityStats, (int64_t*)nullptr, 6);
}

bool IndexImage::body_hash_ok() const {
  return hash_bytes(data_ + sizeof(FileHeader), size_ - sizeof(FileHeader)) == body_hash_;
}

const IndexRecord& IndexImage::record(int64_t i) const {
  if (i < 0 || static_cast<uint64_t>(i) >= records_.n)
    corrupt("trajectory position " + std::to_string(i) + " out of range (" + std::to_string(records_.n) +
            " trajectories)");
  return records_[static_cast<size_t>(i)];
}

void IndexImage::release_records(int64_t begin, int64_t end) const {
  if (!map_ || begin >= end) return;
  static const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  // Whole pages inside the range only: a page shared with the neighbouring records stays.
  const auto lo = reinterpret_cast<uintptr_t>(&record(begin));
  const auto hi = reinterpret_cast<uintptr_t>(&record(end - 1)) + sizeof(IndexRecord);
  const uintptr_t first = (lo + page - 1) / page * page, last = hi / page * page;
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::string_view IndexImage::str(uint64_t off, uint32_t len) const {
  if (off > strings_.n || len > strings_.n - off)
    corrupt("string reference " + std::to_string(off) + "+" + std::to_string(len) +
            " outside the string table");
  return {strings_.p + off, len};
}

uint32_t IndexImage::task_of(const IndexRecord& r) const {
  if (r.task >= task_names_.n) corrupt("record names task " + std::to_string(r.task));
  return r.task;
}

uint32_t IndexImage::source_of(const IndexRecord& r) const {
  if (r.source >= source_names_.n) corrupt("record names data source " + std::to_string(r.source));
  return r.source;
}

Span<int64_t> IndexImage::group(Table t, uint32_t g) const {
  const auto& off = offsets_[t];
  if (g + 1 >= off.n) return {};
  return {tables_[t].p + off[g], static_cast<size_t>(off[g + 1] - off[g])};
}

Span<uint32_t> IndexImage::tasks_of_source(uint32_t s) const {
  if (s + 1 >= source_tasks_off_.n) return {};
  return {source_tasks_.p + source_tasks_off_[s],
          static_cast<size_t>(source_tasks_off_[s + 1] - source_tasks_off_[s])};
}

std::pair<int64_t, int64_t> IndexImage::quality_stats(Quality q) const {
  const size_t k = static_cast<size_t>(q);
  return {quality_stats_[2 * k], quality_stats_[2 * k + 1]};
}

// ------------------------------------------------------------------------------- freshness

IndexPolicy parse_index_policy(const std::string& s) {
  if (s == "auto") return IndexPolicy::Auto;
  if (s == "require") return IndexPolicy::Require;
  if (s == "off") return IndexPolicy::Off;
  throw ConfigError("data.index: '" + s + "' is not one of auto, require, off");
}

std::string index_staleness(const std::string& dir, const IndexImage& image) {
  const ManifestStamp now = stamp_manifest(dir, false);
  const ManifestStamp& then = image.stamp();
  if (now.same_files(then)) return "";
  // A copy or a checkout changes mtimes only: the content hash decides.
  if (now.header_size == then.header_size && now.records_size == then.records_size &&
      stamp_manifest(dir, true).content_hash == then.content_hash)
    return "";
  if (now.records_size != then.records_size)
    return "trajectories.jsonl is " + std::to_string(now.records_size) + " bytes, the index was built from " +
           std::to_string(then.records_size);
  if (now.header_size != then.header_size) return "manifest.json changed size since the index was built";
  return "the manifest's content changed since the index was built (hash differs)";
}

int64_t build_index(const std::string& dir_arg) {
  const ManifestHeader header = read_manifest_header(dir_arg);
  const std::string records = (fs::path(header.dir) / "trajectories.jsonl").string();
  const ManifestStamp before = stamp_manifest(header.dir, true);
  IndexBuilder b(header.dir);
  // The header's count is not trusted for the allocation: a JSONL record is well over 16 bytes.
  b.reserve(std::min<int64_t>(header.num_trajectories, static_cast<int64_t>(before.records_size / 16)));
  for_each_record(header, [&](Trajectory&& t, const nlohmann::json&, int64_t line) { b.add(t, line); });
  // Streamed into place: nothing is visible at the index path before commit().
  io::AtomicFileWriter out((fs::path(header.dir) / kIndexFileName).string());
  b.finish(header.name, before, records, [&out](const char* p, size_t n) { out.write(p, n); });
  if (!stamp_manifest(header.dir, false).same_files(before))
    throw Error(header.dir + ": the manifest changed while it was being indexed; run `robometer data index " +
                header.dir + "` again");
  out.commit();
  return b.size();
}

namespace {

// Holds an flock on <index>.lock for the lifetime of the object (no-op when it cannot be made,
// e.g. a read-only directory: the caller's write then fails with its own message).
struct RebuildLock {
  int fd = -1;
  explicit RebuildLock(const std::string& path) {
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) ::flock(fd, LOCK_EX);
  }
  RebuildLock(const RebuildLock&) = delete;  // one owner of the fd
  RebuildLock& operator=(const RebuildLock&) = delete;
  ~RebuildLock() {
    if (fd >= 0) {
      ::flock(fd, LOCK_UN);
      ::close(fd);
    }
  }
};

}  // namespace

std::shared_ptr<const IndexImage> open_index(const std::string& dir_arg, IndexPolicy policy) {
  const std::string dir = fs::absolute(dir_arg).lexically_normal().string();
  const std::string path = (fs::path(dir) / kIndexFileName).string();
  auto try_open = [&](std::string& why) -> std::shared_ptr<const IndexImage> {
    if (!fs::exists(path)) {
      why = "missing";
      return nullptr;
    }
    auto img = IndexImage::map_file(path, dir);
    why = index_staleness(dir, *img);
    return why.empty() ? img : nullptr;
  };
  std::string why;
  if (auto img = try_open(why)) return img;
  if (policy == IndexPolicy::Require)
    throw FormatError(path, "trajectory index is " + (why == "missing" ? why : "stale: " + why) +
                                " (data.index: require); build it with `robometer data index " + dir + "`");
  RebuildLock lock(path + ".lock");
  if (auto img = try_open(why)) return img;  // another rank rebuilt it while we waited
  spdlog::info("data: {} trajectory index {} ({}); building it", why == "missing" ? "no" : "stale", path,
               why == "missing" ? "first use" : why);
  const int64_t n = build_index(dir);
  spdlog::info("data: indexed {} trajectories into {}", n, path);
  auto img = IndexImage::map_file(path, dir);
  why = index_staleness(dir, *img);
  if (!why.empty()) throw FormatError(path, "trajectory index is stale right after building it: " + why);
  return img;
}

}  // namespace robometer::data
