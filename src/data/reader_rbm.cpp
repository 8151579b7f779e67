// Robometer "RBM format" parquet shards → Trajectory records (spec §3.2): one row per
// trajectory with id, task, lang_vector, data_source, frames (mp4 path relative to the dataset
// root), is_robot, quality_label, partial_success (nullable).
#include <algorithm>
#include <filesystem>

#include "robometer/core/error.h"
#include "robometer/core/utf8.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/io/parquet.h"

namespace robometer::data {
namespace fs = std::filesystem;

void read_rbm(const std::string& root_arg, const IngestOptions& opts, TrajectorySink& sink) {
  const fs::path root = fs::absolute(root_arg).lexically_normal();
  fs::path base = root;
  std::vector<fs::path> shards;
  if (fs::is_regular_file(root)) {
    shards.push_back(root);
    base = root.parent_path();
  } else if (fs::is_directory(root)) {
    for (const auto& e : fs::recursive_directory_iterator(root))
      if (e.is_regular_file() && e.path().extension() == ".parquet") shards.push_back(e.path());
  }
  std::sort(shards.begin(), shards.end());
  if (shards.empty()) throw FormatError(root.string(), "no .parquet shards found (RBM format)");
  int64_t rows_total = 0;  // from the footers, for progress
  for (const auto& shard : shards) rows_total += io::ParquetFile(shard.string()).num_rows();
  sink.begin("rbm", base.string(), rows_total);

  for (const auto& shard : shards) {
    io::ParquetFile pf(shard.string());
    for (const char* c : {"id", "task", "frames", "quality_label"})
      if (!pf.has_column(c)) throw FormatError(shard.string(), std::string("missing RBM column '") + c + "'");
    auto id = pf.read_column("id").optional_strings();
    auto task = pf.read_column("task").optional_strings();
    auto frames = pf.read_column("frames").optional_strings();
    auto quality = pf.read_column("quality_label").optional_strings();
    const size_t n = id.size();
    std::vector<std::optional<std::string>> source(n);
    std::vector<std::optional<int64_t>> is_robot(n);
    std::vector<std::optional<double>> partial(n);
    if (pf.has_column("data_source")) source = pf.read_column("data_source").optional_strings();
    if (pf.has_column("is_robot")) is_robot = pf.read_column("is_robot").optional_int64s();
    if (pf.has_column("partial_success")) partial = pf.read_column("partial_success").optional_doubles();
    // One row; returns early when it is a problem.
    auto add_row = [&](size_t r) {
      const std::string where = shard.string() + " row " + std::to_string(r);
      // The manifest is JSON: text from a BLOB column may hold any bytes.
      std::string bad_text;
      for (const auto& [column, value] :
           {std::pair<const char*, const std::optional<std::string>*>{"id", &id[r]},
            {"task", &task[r]},
            {"frames", &frames[r]},
            {"data_source", &source[r]}}) {
        if (value->has_value() && bad_text.empty()) {
          const std::string why = utf8_problem(**value);
          if (!why.empty()) bad_text = "row " + std::to_string(r) + ": column '" + column + "' " + why;
        }
      }
      if (!bad_text.empty()) {
        const bool id_usable = id[r] && !id[r]->empty() && is_valid_utf8(*id[r]);
        sink.problem({id_usable ? *id[r] : where, shard.string(), bad_text});
        return;
      }
      Trajectory t;
      t.id = id[r].value_or("");
      if (t.id.empty()) {
        sink.problem({where, shard.string(), "empty or NULL id"});
        return;
      }
      if (!task[r] || task[r]->empty()) {
        sink.problem({t.id, shard.string(), "empty or NULL task"});
        return;
      }
      if (!frames[r] || frames[r]->empty()) {
        sink.problem({t.id, shard.string(), "empty or NULL frames path"});
        return;
      }
      t.task = *task[r];
      t.data_source =
          source[r].value_or(opts.data_source.empty() ? base.filename().string() : opts.data_source);
      fs::path video = fs::path(*frames[r]);
      t.video.path = (video.is_absolute() ? video : base / video).lexically_normal().string();
      t.is_robot = is_robot[r].value_or(1) != 0;
      try {
        t.quality = parse_quality(quality[r].value_or(""));
      } catch (const Error& e) {
        sink.problem({t.id, shard.string(), e.what()});
        return;
      }
      if (partial[r]) {
        if (!(*partial[r] >= 0.0 && *partial[r] <= 1.0)) {
          sink.problem({t.id, shard.string(),
                        "partial_success " + std::to_string(*partial[r]) + " is outside [0, 1]"});
          return;
        }
        t.partial_success = static_cast<float>(*partial[r]);
      }
      if (fs::path(t.video.path).extension() != ".mp4" && !fs::is_regular_file(t.video.path)) {
        sink.problem({t.id, t.video.path, "frames is not an mp4 file (frame-sequence mode is unsupported)"});
      } else if (!fs::is_regular_file(t.video.path)) {
        sink.problem({t.id, t.video.path, "video file is missing"});
      } else {
        sink.trajectory(std::move(t));
      }
    };
    for (size_t r = 0; r < n; ++r) {
      add_row(r);
      sink.row_done();
    }
  }
}

DatasetScan scan_rbm(const std::string& root, const IngestOptions& opts) {
  ScanSink sink;
  read_rbm(root, opts, sink);
  return std::move(sink.scan);
}

}  // namespace robometer::data
