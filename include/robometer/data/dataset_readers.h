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

DatasetScan scan_lerobot(const std::string& root, const IngestOptions& opts = {});
DatasetScan scan_rbm(const std::string& root, const IngestOptions& opts = {});
DatasetScan scan_folder(const std::string& root, const IngestOptions& opts = {});
// Moves every trajectory whose id, task, data_source or video path is not valid UTF-8 (it could
// not be written to the manifest) to scan.problems, naming the field.
void move_invalid_utf8_to_problems(DatasetScan& scan);

// format: "lerobot" | "rbm" | "folder". Throws ConfigError for another name. Applies
// move_invalid_utf8_to_problems to the result.
DatasetScan scan_dataset(const std::string& format, const std::string& root, const IngestOptions& opts = {});

struct ProbeOptions {
  int threads = 1;
  // Called after each video file with (files done, files total); may be empty.
  std::function<void(size_t, size_t)> progress;
};

struct ProbeSummary {
  size_t files = 0;         // distinct video files opened (each once, however many episodes share it)
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

}  // namespace robometer::data
