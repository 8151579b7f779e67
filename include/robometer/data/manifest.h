// The project's own dataset manifest (format "robometer-manifest", version 1), written by
// `robometer ingest` / `robometer synth` and read by the trainer:
//   <dir>/manifest.json      {"format":"robometer-manifest","version":1,"name":..,"created":..,
//                             "source":{...how it was made...},"num_trajectories":N}
//   <dir>/trajectories.jsonl one JSON object per trajectory:
//     {"id","task","data_source","video":{"path" (relative to <dir>),"from_s","to_s"},
//      "num_frames","fps","quality_label","partial_success"(null|float),"is_robot",
//      "video_size","video_mtime"}
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "robometer/data/trajectory.h"

namespace robometer::data {

constexpr int kManifestVersion = 1;

// The implicit move is noexcept; clang-tidy 14 reaches a throw inside nlohmann::json's move, which
// cannot throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Manifest {
  std::string dir;  // absolute directory of the manifest
  std::string name;
  nlohmann::json source;                 // free-form provenance
  std::vector<Trajectory> trajectories;  // video paths resolved to absolute paths
};

// Throws FormatError naming the file and line of the first bad record.
Manifest read_manifest(const std::string& dir);

// manifest.json alone (checked as read_manifest does).
// NOLINTNEXTLINE(bugprone-exception-escape): as Manifest
struct ManifestHeader {
  std::string dir;  // absolute
  std::string name;
  nlohmann::json source;
  int64_t num_trajectories = 0;
};
ManifestHeader read_manifest_header(const std::string& dir);

// Streams trajectories.jsonl one record at a time (bounded memory): fn(trajectory, the raw
// record, its line number). Checks every record as read_manifest does, and the count at the end.
// With `on_bad`, a bad record is passed to it ("<file>:<line>: what") and reading goes on, instead
// of the FormatError (`data validate` lists every bad record).
using RecordFn = std::function<void(Trajectory&&, const nlohmann::json&, int64_t line)>;
using BadRecordFn = std::function<void(const std::string& message)>;
void for_each_record(const ManifestHeader& header, const RecordFn& fn, const BadRecordFn& on_bad = {});

// Writes trajectories.jsonl record by record into a temp file (bounded memory), and on commit()
// renames it into place and writes manifest.json: nothing at `dir` changes until then, so a
// failed write never leaves a half manifest that looks complete.
class ManifestWriter {
 public:
  explicit ManifestWriter(const std::string& dir);
  ~ManifestWriter();
  ManifestWriter(const ManifestWriter&) = delete;
  ManifestWriter& operator=(const ManifestWriter&) = delete;
  // Throws Error when the video does not exist.
  void add(const Trajectory& t);
  size_t size() const { return n_; }
  void commit(const std::string& name, const nlohmann::json& source);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t n_ = 0;
};

// Writes manifest.json + trajectories.jsonl atomically (temp + rename). Video paths under
// `dir` are stored relative to it; size and mtime of each video are recorded.
void write_manifest(const std::string& dir, const std::string& name,
                    const std::vector<Trajectory>& trajectories,
                    const nlohmann::json& source = nlohmann::json::object());

}  // namespace robometer::data
