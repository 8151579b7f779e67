// The binary trajectory index, `<manifest dir>/trajectories.rbmidx`: everything the samplers and
// `data stats` need from trajectories.jsonl, in fixed-width tables that are memory-mapped
// read-only, so the ranks of one node share the pages and opening a million trajectories costs
// a header check instead of a JSON parse. trajectories.jsonl stays the source of truth; the index
// records the manifest's sizes, mtimes and content hash and is rebuilt or refused when stale.
//
// Layout (little-endian, every section 8-byte aligned; see README "Binary index"):
//   FileHeader | SectionEntry[num_sections] | sections...
// Sections: fixed-width records (IndexRecord), one string table (ids, paths, task and source
// names), sorted task and source name tables (a task's id is its rank by name), and CSR lookup
// tables (offsets[n+1] + positions) by task, successful/unsuccessful by task, by source,
// successful by source, "task has both outcomes" by source, tasks per source, trajectories
// sorted by id, per-source flags and frame counts.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "robometer/data/trajectory.h"

namespace robometer::data {

constexpr const char* kIndexFileName = "trajectories.rbmidx";
constexpr uint32_t kIndexVersion = 1;

// The manifest files an index was built from. Sizes and mtimes are compared on every open;
// the content hash settles a changed mtime with unchanged content (a copy, a checkout).
struct ManifestStamp {
  uint64_t header_size = 0, header_mtime_ns = 0;    // manifest.json
  uint64_t records_size = 0, records_mtime_ns = 0;  // trajectories.jsonl
  uint64_t content_hash = 0;                        // of both files, in that order
  bool same_files(const ManifestStamp& o) const {
    return header_size == o.header_size && header_mtime_ns == o.header_mtime_ns &&
           records_size == o.records_size && records_mtime_ns == o.records_mtime_ns;
  }
};
// Throws FormatError when a manifest file is missing.
ManifestStamp stamp_manifest(const std::string& dir, bool with_hash);
// A fast 64-bit hash of the files' bytes, streamed (not a cryptographic hash).
uint64_t hash_files(const std::vector<std::string>& paths);

#pragma pack(push, 1)
struct IndexRecord {  // 72 bytes
  uint64_t id_off, path_off;
  uint32_t id_len, path_len;
  uint32_t task, source;  // ids into the task / source name tables
  double from_s, to_s;
  int64_t num_frames;
  double fps;
  float partial_success;                                     // valid when has_partial
  uint8_t has_partial, quality, is_robot, path_is_relative;  // relative: to the manifest dir
};
#pragma pack(pop)
static_assert(sizeof(IndexRecord) == 72, "IndexRecord is a file format");

struct StrRef {
  uint64_t off;
  uint32_t len, pad;
};

template <class T>
struct Span {
  const T* p = nullptr;
  size_t n = 0;
  const T* begin() const { return p; }
  const T* end() const { return p + n; }
  size_t size() const { return n; }
  bool empty() const { return n == 0; }
  const T& operator[](size_t i) const { return p[i]; }
};

// Collects trajectories and lays out an index image (bytes). Memory: the compact records and
// strings, not one C++ object per trajectory.
class IndexBuilder {
 public:
  // Video paths under base_dir are stored relative to it ("": every path as given).
  explicit IndexBuilder(std::string base_dir = "");
  // `line` (the record's line in trajectories.jsonl, 0 when unknown) names duplicates.
  void add(const Trajectory& t, int64_t line = 0);
  int64_t size() const { return static_cast<int64_t>(records_.size()); }
  void reserve(int64_t trajectories);  // the manifest header's count: no regrowth while adding
  // Throws ConfigError on a duplicated trajectory id, naming `where` and the lines.
  std::string finish(const std::string& name, const ManifestStamp& stamp, const std::string& where);
  // The same bytes handed to `write` in pieces, without building the image in memory.
  void finish(const std::string& name, const ManifestStamp& stamp, const std::string& where,
              const std::function<void(const char*, size_t)>& write);

 private:
  uint64_t put(std::string_view s);
  uint32_t intern(std::unordered_map<std::string, uint32_t>& m, std::vector<std::string>& names,
                  const std::string& s);
  std::string base_dir_;
  std::vector<IndexRecord> records_;
  std::vector<int64_t> lines_;
  std::string strings_;
  std::unordered_map<std::string, uint32_t> task_ids_, source_ids_;
  std::vector<std::string> task_names_, source_names_;
};

// A validated, read-only index image: a mapped file or an owned buffer. The header, section
// table, name tables and CSR offsets are checked when it is opened (O(tasks + sources));
// positions, record fields and string references are checked where they are read, so a corrupt
// file raises FormatError naming it instead of reading out of bounds.
class IndexImage {
 public:
  // Throws FormatError naming `path` (missing, truncated, bad magic/version/endianness/offsets).
  static std::shared_ptr<const IndexImage> map_file(const std::string& path, const std::string& base_dir);
  // `what` names the image in errors.
  static std::shared_ptr<const IndexImage> from_bytes(std::string bytes, const std::string& base_dir,
                                                      const std::string& what);
  ~IndexImage();
  IndexImage(const IndexImage&) = delete;
  IndexImage& operator=(const IndexImage&) = delete;

  const std::string& what() const { return what_; }
  const std::string& base_dir() const { return base_dir_; }
  bool is_mapped() const { return map_ != nullptr; }
  size_t byte_size() const { return size_; }
  const ManifestStamp& stamp() const { return stamp_; }
  std::string_view name() const { return name_; }
  int64_t num_trajectories() const { return static_cast<int64_t>(records_.n); }
  uint32_t num_tasks() const { return static_cast<uint32_t>(task_names_.n); }
  uint32_t num_sources() const { return static_cast<uint32_t>(source_names_.n); }
  // Hash of every byte after the header (checked by `data validate`, not on open).
  bool body_hash_ok() const;

  const IndexRecord& record(int64_t i) const;  // throws FormatError when i is out of range
  // A scan over every record (the training filters, data stats) calls this behind its cursor so
  // that a million 72-byte records do not all stay in this process's resident set: the pages of
  // records [begin, end) leave the mapping (MADV_DONTNEED; the page cache keeps them, a later read
  // maps them again). No effect on an image in memory.
  void release_records(int64_t begin, int64_t end) const;
  std::string_view str(uint64_t off, uint32_t len) const;
  uint32_t task_of(const IndexRecord& r) const;    // checked
  uint32_t source_of(const IndexRecord& r) const;  // checked
  std::string_view task_name(uint32_t t) const { return str(task_names_[t].off, task_names_[t].len); }
  std::string_view source_name(uint32_t s) const { return str(source_names_[s].off, source_names_[s].len); }

  // CSR groups: positions (ascending) of group g.
  enum Table {
    ByTask,
    SuccessfulByTask,
    UnsuccessfulByTask,
    BySource,
    SuccessfulBySource,
    BothOutcomesBySource,
    kNumTables
  };
  Span<int64_t> group(Table t, uint32_t g) const;
  Span<uint32_t> tasks_of_source(uint32_t s) const;  // task ids, ascending
  Span<uint32_t> tasks_with_successful() const { return tasks_with_successful_; }
  Span<int64_t> by_id() const { return by_id_; }                       // positions sorted by id
  uint8_t source_flags(uint32_t s) const { return source_flags_[s]; }  // 1: unsuccessful, 2: partial
  int64_t source_frames(uint32_t s) const { return source_frames_[s]; }
  int64_t task_frames(uint32_t t) const { return task_frames_[t]; }
  // [quality] → {trajectories, frames}
  std::pair<int64_t, int64_t> quality_stats(Quality q) const;

  [[noreturn]] void corrupt(const std::string& what) const;

 private:
  IndexImage() = default;
  void parse();
  std::string what_, base_dir_, owned_;
  void* map_ = nullptr;
  const char* data_ = nullptr;
  size_t size_ = 0;
  ManifestStamp stamp_;
  uint64_t body_hash_ = 0;
  std::string_view name_;
  Span<IndexRecord> records_;
  Span<char> strings_;
  Span<StrRef> task_names_, source_names_;
  Span<uint64_t> offsets_[kNumTables];
  Span<int64_t> tables_[kNumTables];
  Span<uint64_t> source_tasks_off_;
  Span<uint32_t> source_tasks_, tasks_with_successful_;
  Span<int64_t> by_id_, source_frames_, task_frames_, quality_stats_;
  Span<uint8_t> source_flags_;
};

// data.index: how the trainer and `data stats` get at a manifest's trajectories.
//   auto    use DIR/trajectories.rbmidx; build it when missing, rebuild it when stale (a log line)
//   require use it; a missing or stale index is an error (read-only datasets, large runs)
//   off     parse trajectories.jsonl (no index file is read or written)
enum class IndexPolicy { Auto, Require, Off };
IndexPolicy parse_index_policy(const std::string& s);  // throws ConfigError

// Why an index is not usable as it is: "" when fresh.
std::string index_staleness(const std::string& dir, const IndexImage& image);

// Builds DIR/trajectories.rbmidx from the manifest, streaming trajectories.jsonl (atomic
// replace). Returns the number of trajectories. Throws FormatError / ConfigError on bad records.
int64_t build_index(const std::string& dir);

// The fresh index image of manifest DIR under `policy` (Auto or Require). Rebuilds take a lock
// file so that the ranks of a node build it once.
std::shared_ptr<const IndexImage> open_index(const std::string& dir, IndexPolicy policy);

}  // namespace robometer::data
