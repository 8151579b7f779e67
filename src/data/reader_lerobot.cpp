// LeRobot datasets (v2.1 and v3.0) → Trajectory records, one per episode and camera.
// Layouts: see /work/shared/reference/anchors.md §B3.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>

#include "robometer/core/error.h"
#include "robometer/core/utf8.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/io/parquet.h"

namespace robometer::data {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json read_json_file(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw FormatError(p.string(), "cannot open");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw FormatError(p.string(), std::string("invalid JSON: ") + e.what());
  }
}

// info[key] as T, `fallback` when absent or null; a value of another type is a FormatError
// naming the file, the key and the value (not nlohmann's bare type_error).
template <class T>
T info_value(const json& info, const char* key, T fallback, const std::string& path) {
  if (!info.contains(key) || info[key].is_null()) return fallback;
  try {
    return info[key].get<T>();
  } catch (const json::exception&) {
    throw FormatError(path, std::string("key '") + key + "' has the value " + info[key].dump() +
                                " of the wrong type (expected a " +
                                (std::is_same_v<T, std::string> ? "string" : "number") + ")");
  }
}

// Python str.format subset used by LeRobot path templates: {name} and {name:03d}.
std::string format_template(const std::string& tpl, const std::map<std::string, std::string>& strs,
                            const std::map<std::string, int64_t>& ints, const std::string& where) {
  std::string out;
  for (size_t i = 0; i < tpl.size();) {
    if (tpl[i] != '{') {
      out += tpl[i++];
      continue;
    }
    size_t close = tpl.find('}', i);
    if (close == std::string::npos)
      throw FormatError(where, "unterminated '{' in path template '" + tpl + "'");
    std::string field = tpl.substr(i + 1, close - i - 1), spec;
    if (size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field = field.substr(0, colon);
    }
    if (auto s = strs.find(field); s != strs.end()) {
      out += s->second;
    } else if (auto n = ints.find(field); n != ints.end()) {
      std::string digits = std::to_string(n->second);
      int width = 0;
      if (!spec.empty() && spec.back() == 'd') width = std::atoi(spec.substr(0, spec.size() - 1).c_str());
      if (static_cast<int>(digits.size()) < width)
        digits.insert(0, static_cast<size_t>(width) - digits.size(), '0');
      out += digits;
    } else {
      throw FormatError(where, "unknown field '{" + field + "}' in path template '" + tpl + "'");
    }
    i = close + 1;
  }
  return out;
}

std::vector<std::string> video_keys(const json& info, const IngestOptions& opts, const std::string& where) {
  std::vector<std::string> keys;
  if (info.contains("features") && info["features"].is_object())
    for (const auto& [k, v] : info["features"].items())
      if (v.is_object() && v.value("dtype", "") == "video") keys.push_back(k);
  if (keys.empty()) throw FormatError(where, "no video features (dtype \"video\") in meta/info.json");
  if (opts.cameras.empty()) return keys;
  for (const auto& c : opts.cameras)
    if (std::find(keys.begin(), keys.end(), c) == keys.end()) {
      std::string known;
      for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
      throw ConfigError(where + ": camera '" + c + "' is not a video feature (have: " + known + ")");
    }
  return opts.cameras;
}

bool wanted(const IngestOptions& opts, int64_t ep) {
  return opts.episodes.empty() || std::binary_search(opts.episodes.begin(), opts.episodes.end(), ep);
}

std::string dataset_name(const fs::path& root, const IngestOptions& opts) {
  if (!opts.data_source.empty()) return opts.data_source;
  fs::path p = root;
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

// Existence checks are cached: v3.0 episodes share a few files.
struct ExistsCache {
  std::map<std::string, bool> seen;
  bool operator()(const std::string& p) {
    auto it = seen.find(p);
    if (it != seen.end()) return it->second;
    return seen[p] = fs::is_regular_file(p);
  }
};

std::string episode_id(const std::string& source, int64_t ep, const std::string& key, size_t n_keys) {
  std::string id = source + "/episode_" + std::to_string(ep);
  if (n_keys > 1) id += "/" + key;
  return id;
}

// ------------------------------------------------------------------ v2.1

void read_v21(const fs::path& root, const json& info, const std::string& format, const IngestOptions& opts,
              TrajectorySink& sink) {
  const std::string info_path = (root / "meta/info.json").string();
  const std::vector<std::string> keys = video_keys(info, opts, info_path);
  const std::string tpl = info_value<std::string>(
      info, "video_path", "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
      info_path);
  const int64_t chunks_size = info_value<int64_t>(info, "chunks_size", 1000, info_path);
  if (chunks_size <= 0) throw FormatError(info_path, "chunks_size must be positive");
  const double fps = info_value<double>(info, "fps", 0.0, info_path);
  const std::string source = dataset_name(root, opts);

  std::map<int64_t, std::string> task_by_index;
  const fs::path tasks_path = root / "meta/tasks.jsonl";
  if (fs::exists(tasks_path)) {
    std::ifstream in(tasks_path);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      try {
        json t = json::parse(line);
        task_by_index[t.at("task_index").get<int64_t>()] = t.at("task").get<std::string>();
      } catch (const json::exception& e) {
        throw FormatError(tasks_path.string() + ":" + std::to_string(n), e.what());
      }
    }
  }

  const fs::path episodes_path = root / "meta/episodes.jsonl";
  sink.begin(format, root.string(), info_value<int64_t>(info, "total_episodes", -1, info_path));
  std::ifstream in(episodes_path);
  if (!in) throw FormatError(episodes_path.string(), "cannot open (LeRobot v2.1 lists episodes there)");
  std::string line;
  int64_t listed = 0, total_length = 0;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = episodes_path.string() + ":" + std::to_string(n);
    int64_t ep = 0, length = 0;
    std::string task;
    try {
      json e = json::parse(line);
      ep = e.at("episode_index").get<int64_t>();
      length = e.value("length", int64_t{0});
      if (e.contains("tasks") && e["tasks"].is_array() && !e["tasks"].empty())
        task = e["tasks"][0].get<std::string>();
      else if (e.contains("task_index"))
        task = task_by_index[e["task_index"].get<int64_t>()];
    } catch (const json::exception& ex) {
      throw FormatError(where, ex.what());
    }
    ++listed;
    total_length += length;
    for (size_t k = 0; wanted(opts, ep) && k < keys.size(); ++k) {
      const std::string& key = keys[k];
      std::string rel = format_template(
          tpl, {{"video_key", key}}, {{"episode_chunk", ep / chunks_size}, {"episode_index", ep}}, info_path);
      Trajectory t;
      t.id = episode_id(source, ep, key, keys.size());
      t.task = task;
      t.data_source = source;
      t.video.path = (root / rel).lexically_normal().string();
      t.num_frames = length;
      t.fps = fps;
      t.quality = opts.quality;
      if (task.empty()) {
        sink.problem({t.id, episodes_path.string(), "episode has no task"});
      } else if (!fs::is_regular_file(t.video.path)) {
        sink.problem({t.id, t.video.path, "video file is missing"});
      } else {
        sink.trajectory(std::move(t));
      }
    }
    sink.row_done();
  }
  if (const int64_t n = info_value<int64_t>(info, "total_episodes", -1, info_path); n >= 0 && n != listed)
    sink.note("meta/info.json total_episodes is " + std::to_string(n) + " but meta/episodes.jsonl lists " +
              std::to_string(listed));
  if (const int64_t n = info_value<int64_t>(info, "total_frames", -1, info_path); n >= 0 && n != total_length)
    sink.note("meta/info.json total_frames is " + std::to_string(n) + " but the episode lengths sum to " +
              std::to_string(total_length));
}

// ------------------------------------------------------------------ v3.0

void read_v30(const fs::path& root, const json& info, const std::string& format, const IngestOptions& opts,
              TrajectorySink& sink) {
  const std::string info_path = (root / "meta/info.json").string();
  const std::vector<std::string> keys = video_keys(info, opts, info_path);
  const std::string tpl = info_value<std::string>(
      info, "video_path", "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4", info_path);
  const double fps = info_value<double>(info, "fps", 0.0, info_path);
  const std::string source = dataset_name(root, opts);

  // Task text by index (fallback when an episode row has no `tasks` list).
  std::map<int64_t, std::string> task_by_index;
  const fs::path tasks_path = root / "meta/tasks.parquet";
  if (fs::exists(tasks_path)) {
    io::ParquetFile tf(tasks_path.string());
    std::string text_col = tf.has_column("task") ? "task" : "__index_level_0__";
    if (tf.has_column(text_col) && tf.has_column("task_index")) {
      auto text = tf.read_column(text_col).strings();
      auto idx = tf.read_column("task_index").int64s();
      for (size_t i = 0; i < text.size(); ++i) task_by_index[idx[i]] = text[i];
    }
  }

  std::vector<fs::path> files;
  const fs::path ep_dir = root / "meta/episodes";
  if (fs::is_directory(ep_dir))
    for (const auto& e : fs::recursive_directory_iterator(ep_dir))
      if (e.is_regular_file() && e.path().extension() == ".parquet") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw FormatError(ep_dir.string(), "no episode parquet files (LeRobot v3.0 keeps episodes there)");

  int64_t rows_total = 0;  // from the footers, for progress
  for (const auto& file : files) rows_total += io::ParquetFile(file.string()).num_rows();
  sink.begin(format, root.string(), rows_total);

  ExistsCache exists;
  int64_t listed = 0, total_length = 0;
  for (const auto& file : files) {
    io::ParquetFile pf(file.string());
    const int64_t rows = pf.num_rows();
    auto episode = pf.read_column("episode_index").int64s();
    std::vector<int64_t> length(static_cast<size_t>(rows), 0);
    if (pf.has_column("length")) length = pf.read_column("length").int64s();
    std::vector<std::string> task(static_cast<size_t>(rows));
    if (pf.has_column("tasks")) {
      io::ColumnData tc = pf.read_column("tasks");
      const auto* text = std::get_if<std::vector<std::string>>(&tc.values);
      if (!text) throw FormatError(file.string(), "column 'tasks' must hold strings (list<string>)");
      if (tc.is_list()) {
        for (size_t r = 0; r < task.size(); ++r)
          if (tc.offsets[r + 1] > tc.offsets[r]) task[r] = (*text)[static_cast<size_t>(tc.offsets[r])];
      } else {  // a plain string column: one task per episode
        const auto one = tc.optional_strings();
        for (size_t r = 0; r < task.size(); ++r) task[r] = one[r].value_or("");
      }
    } else if (pf.has_column("task_index")) {
      auto ti = pf.read_column("task_index").int64s();
      for (size_t r = 0; r < task.size(); ++r) task[r] = task_by_index[ti[r]];
    }
    struct Cam {
      std::vector<int64_t> chunk, file;
      std::vector<double> from, to;
    };
    std::map<std::string, Cam> cams;
    for (const auto& key : keys) {
      const std::string p = "videos/" + key + "/";
      for (const char* c : {"chunk_index", "file_index", "from_timestamp", "to_timestamp"})
        if (!pf.has_column(p + c))
          throw FormatError(file.string(), "missing column '" + p + c + "' for camera '" + key + "'");
      Cam cam;
      cam.chunk = pf.read_column(p + "chunk_index").int64s();
      cam.file = pf.read_column(p + "file_index").int64s();
      cam.from = pf.read_column(p + "from_timestamp").doubles();
      cam.to = pf.read_column(p + "to_timestamp").doubles();
      cams[key] = std::move(cam);
    }
    for (size_t r = 0; r < static_cast<size_t>(rows); ++r) {
      ++listed;
      total_length += length[r];
      const int64_t ep = episode[r];
      if (!wanted(opts, ep)) {
        sink.row_done();
        continue;
      }
      for (const auto& key : keys) {
        const Cam& cam = cams[key];
        std::string rel = format_template(
            tpl, {{"video_key", key}},
            {{"chunk_index", cam.chunk[r]}, {"file_index", cam.file[r]}, {"episode_index", ep}}, info_path);
        Trajectory t;
        t.id = episode_id(source, ep, key, keys.size());
        t.task = task[r];
        t.data_source = source;
        t.video.path = (root / rel).lexically_normal().string();
        t.video.from_s = cam.from[r];
        t.video.to_s = cam.to[r];
        t.num_frames = length[r];
        t.fps = fps;
        t.quality = opts.quality;
        if (t.task.empty()) {
          sink.problem({t.id, file.string(), "episode has no task"});
        } else if (const std::string why = utf8_problem(t.task); !why.empty()) {
          sink.problem({t.id, file.string(), "row " + std::to_string(r) + ": task " + why});
        } else if (!(t.video.from_s >= 0.0) || !(t.video.to_s > t.video.from_s)) {
          sink.problem({t.id, file.string(),
                        "bad time window [" + std::to_string(t.video.from_s) + ", " +
                            std::to_string(t.video.to_s) + ")"});
        } else if (!exists(t.video.path)) {
          sink.problem({t.id, t.video.path, "video file is missing"});
        } else {
          sink.trajectory(std::move(t));
        }
      }
      sink.row_done();
    }
  }
  if (const int64_t n = info_value<int64_t>(info, "total_episodes", -1, info_path); n >= 0 && n != listed)
    sink.note("meta/info.json total_episodes is " + std::to_string(n) + " but meta/episodes lists " +
              std::to_string(listed));
  if (const int64_t n = info_value<int64_t>(info, "total_frames", -1, info_path); n >= 0 && n != total_length)
    sink.note("meta/info.json total_frames is " + std::to_string(n) + " but the episode lengths sum to " +
              std::to_string(total_length));
}

}  // namespace

void read_lerobot(const std::string& root_arg, const IngestOptions& opts, TrajectorySink& sink) {
  const fs::path root = fs::absolute(root_arg).lexically_normal();
  const fs::path info_path = root / "meta/info.json";
  if (!fs::exists(info_path)) throw FormatError(info_path.string(), "missing: not a LeRobot dataset");
  const json info = read_json_file(info_path);
  const std::string version = info_value<std::string>(info, "codebase_version", "", info_path.string());
  if (version.rfind("v2", 0) == 0)
    read_v21(root, info, "lerobot-" + version, opts, sink);
  else if (version.rfind("v3", 0) == 0)
    read_v30(root, info, "lerobot-" + version, opts, sink);
  else
    throw FormatError(info_path.string(),
                      "unsupported codebase_version '" + version + "' (supported: v2.x, v3.x)");
}

DatasetScan scan_lerobot(const std::string& root, const IngestOptions& opts) {
  ScanSink sink;
  read_lerobot(root, opts, sink);
  return std::move(sink.scan);
}

}  // namespace robometer::data
