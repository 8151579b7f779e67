// Readers for external dataset layouts, turning them into Trajectory records for the manifest
// (`robometer ingest`):
//   lerobot  LeRobot v2.1 (one mp4 per episode and camera, meta/episodes.jsonl) and v3.0
//            (episodes share mp4 files; meta/episodes/chunk-*/file-*.parquet holds each
//            episode's [from_timestamp, to_timestamp) window per camera)
//   rbm      Robometer "RBM format" parquet shards: id, task, lang_vector, data_source,
//            frames (mp4 path relative to the dataset root), is_robot, quality_label,
//            partial_success (nullable)
//   folder   a directory of videos plus videos.jsonl or videos.csv with columns
//            path, task, quality_label, [partial_success], [data_source], [id]
// Episodes that cannot be used (video missing, bad metadata) are returned as problems, never
// dropped silently.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "robometer/core/utf8.h"
#include "robometer/data/trajectory.h"

namespace robometer::data {

struct IngestOptions {
  std::vector<std::string> cameras;       // LeRobot video keys; empty: every camera, one trajectory each
  Quality quality = Quality::Successful;  // label given to demonstration datasets (LeRobot)
  std::vector<int64_t> episodes;          // LeRobot episode indices to keep; empty: all
  std::string data_source;                // default: the dataset directory's name
};

// Parses "3", "0-9", "0-9,12,20-22" into a sorted list. Throws ConfigError.
std::vector<int64_t> parse_episode_list(const std::string& spec);

struct IngestProblem {
  std::string id;    // trajectory id (or episode) concerned
  std::string path;  // file concerned
  std::string reason;
  // Text that is not valid UTF-8 (a bad id or path is often why the problem exists) is
  // written with \xHH escapes, so the report itself can always be written.
  nlohmann::json to_json() const {
    return {{"id", printable_utf8(id)}, {"path", printable_utf8(path)}, {"reason", printable_utf8(reason)}};
  }
};

struct DatasetScan {
  std::string format;  // "lerobot-v2.1", "lerobot-v3.0", "rbm", "folder"
  std::string root;
  std::vector<Trajectory> trajectories;  // video paths absolute; num_frames from metadata until probed
  std::vector<IngestProblem> problems;
  std::vector<std::string> notes;  // metadata inconsistencies worth reporting
};

// What a reader finds, pushed in metadata order, so that a million episodes need not be held
// in memory (`ingest` streams them to disk; DatasetScan collects them).
class TrajectorySink {
 public:
  virtual ~TrajectorySink() = default;
  // First call: the format ("lerobot-v3.0", ...), the dataset root, and the number of metadata
  // rows the reader will go through (-1: unknown), for progress.
  virtual void begin(const std::string& format, const std::string& root, int64_t rows) = 0;
  virtual void trajectory(Trajectory&& t) = 0;
  virtual void problem(IngestProblem&& p) = 0;
  virtual void note(std::string note) = 0;
  // After each metadata row (an episode, whatever the number of cameras).
  virtual void row_done() {}
};

// The in-memory sink.
class ScanSink : public TrajectorySink {
 public:
  DatasetScan scan;
  void begin(const std::string& format, const std::string& root, int64_t) override;
  void trajectory(Trajectory&& t) override { scan.trajectories.push_back(std::move(t)); }
  void problem(IngestProblem&& p) override { scan.problems.push_back(std::move(p)); }
  void note(std::string n) override { scan.notes.push_back(std::move(n)); }
};

// The readers hold one metadata file's columns at a time (one parquet file, or one line).
void read_lerobot(const std::string& root, const IngestOptions& opts, TrajectorySink& sink);
void read_rbm(const std::string& root, const IngestOptions& opts, TrajectorySink& sink);
void read_folder(const std::string& root, const IngestOptions& opts, TrajectorySink& sink);
// format: "lerobot" | "rbm" | "folder". Throws ConfigError for another name.
void read_dataset(const std::string& format, const std::string& root, const IngestOptions& opts,
                  TrajectorySink& sink);

DatasetScan scan_lerobot(const std::string& root, const IngestOptions& opts = {});
DatasetScan scan_rbm(const std::string& root, const IngestOptions& opts = {});
DatasetScan scan_folder(const std::string& root, const IngestOptions& opts = {});
// Moves every trajectory whose id, task, data_source or video path is not valid UTF-8 (it could
// not be written to the manifest) to scan.problems, naming the field.
void move_invalid_utf8_to_problems(DatasetScan& scan);

// format: "lerobot" | "rbm" | "folder". Throws ConfigError for another name. Applies
// move_invalid_utf8_to_problems to the result. The whole dataset in memory: `ingest` streams
// instead (IngestWriter).
DatasetScan scan_dataset(const std::string& format, const std::string& root, const IngestOptions& opts = {});

// The last few probed videos, so that a file whose episodes straddle two chunks of a streamed
// ingest is opened once (LeRobot v3.0 episodes of one file are adjacent in the metadata).
class ProbeCache {
 public:
  struct Video {
    bool ok = false;
    std::string error;
    std::vector<double> ts;
    double fps = 0, end_s = 0;
  };
  explicit ProbeCache(size_t capacity = 16) : capacity_(capacity) {}
  const Video* find(const std::string& path) const;
  void put(const std::string& path, Video v);  // evicts the oldest beyond capacity

 private:
  size_t capacity_;
  std::vector<std::pair<std::string, Video>> entries_;  // oldest first
};

struct ProbeOptions {
  int threads = 1;
  // Called after each video file with (files done, files total); may be empty.
  std::function<void(size_t, size_t)> progress;
  ProbeCache* cache = nullptr;  // consulted before opening a file, filled after
};

struct ProbeSummary {
  size_t files = 0;         // distinct video files opened (each once, however many episodes share it;
                            // files found in opts.cache are not counted)
  size_t trajectories = 0;  // trajectories kept
  size_t failed = 0;        // trajectories moved to problems
};

// Opens every distinct video once (in parallel), sets each trajectory's exact num_frames inside
// its window (the same rule as VideoReader's window) and fps; trajectories whose video does not
// open or whose window holds no frames move to scan.problems.
ProbeSummary probe_trajectories(DatasetScan& scan, const ProbeOptions& opts = {});

// Frames of a video whose presentation times are `timestamps_s` that fall inside the window
// [from_s, to_s) (to_s < 0: to the end), with VideoReader's half-frame tolerance.
int64_t frames_in_window(const std::vector<double>& timestamps_s, double fps, double from_s, double to_s);

// `ingest` in bounded memory: a TrajectorySink that gathers the reader's output in chunks of
// `chunk` records; each chunk is treated as scan_dataset + probe_trajectories treat the whole
// dataset (invalid UTF-8 to problems, distinct videos probed in parallel through a ProbeCache),
// then its trajectories are appended to trajectories.jsonl (a temp file until commit()) and its
// problems to ingest_report.jsonl as they come; notes follow the problems at the end. A dataset
// of one chunk gives the same files as the in-memory path.
class IngestWriter : public TrajectorySink {
 public:
  struct Options {
    bool probe = true;
    int threads = 1;
    size_t chunk = 8192;
    // (metadata rows done, rows total or -1), after each row; may be empty.
    std::function<void(int64_t, int64_t)> progress;
  };
  IngestWriter(const std::string& out_dir, Options opts);
  ~IngestWriter() override;
  IngestWriter(const IngestWriter&) = delete;  // owns the temp manifest files
  IngestWriter& operator=(const IngestWriter&) = delete;

  void begin(const std::string& format, const std::string& root, int64_t rows) override;
  void trajectory(Trajectory&& t) override;
  void problem(IngestProblem&& p) override;
  void note(std::string note) override;
  void row_done() override;

  // After the reader: the last chunk, then the notes appended to the report.
  void finish();
  // Renames trajectories.jsonl into place, then writes manifest.json (records first, header last).
  void commit(const std::string& name, const nlohmann::json& source);

  const std::string& format() const { return format_; }
  const std::string& root() const { return root_; }
  const std::string& report_path() const { return report_path_; }
  size_t kept() const { return kept_; }  // trajectories written
  size_t problems() const { return problems_; }
  size_t notes() const { return notes_; }
  int64_t frames() const { return frames_; }
  size_t files_probed() const { return files_probed_; }
  // The first notes (for the manifest header and the summary; all of them are in the report).
  const std::vector<std::string>& first_notes() const { return first_notes_; }
  static constexpr size_t kNotesKept = 1000;

 private:
  void flush();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Options opts_;
  DatasetScan chunk_;
  std::string format_, root_, report_path_;
  size_t kept_ = 0, problems_ = 0, notes_ = 0, files_probed_ = 0;
  int64_t frames_ = 0, rows_ = 0, rows_total_ = -1;
  std::vector<std::string> first_notes_;
};

}  // namespace robometer::data
