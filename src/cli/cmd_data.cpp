// `robometer data stats|index`: src/cli/data_index_commands.cpp (they also run in the front end).
// `robometer data validate DIR`: streams the manifest in bounded memory: every video exists with
// the recorded size/mtime, stays inside the dataset, opens, and its window holds the recorded
// number of frames; no duplicate ids, no empty dataset; the index, when present, is fresh and
// intact. Exit 1 listing the problems (file:line).
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <queue>

#include "robometer/cli/command.h"
#include "robometer/cli/data_frames.h"
#include "robometer/cli/data_index_commands.h"
#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/data/binary_index.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/data/manifest.h"
#include "robometer/data/rng.h"
#include "robometer/data/run_options.h"
#include "robometer/data/trajectory_index.h"
#include "robometer/data/video_reader.h"

namespace robometer::cli {
namespace {
namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------ validate

// Keeps the first problems in memory and counts the rest (1M bad records must not hold 1M lines).
struct Problems {
  static constexpr size_t kKept = 200;
  std::vector<std::string> kept;
  int64_t count = 0;
  void add(std::string p) {
    if (kept.size() < kKept) kept.push_back(std::move(p));
    ++count;
  }
};

// The last few opened videos (LeRobot v3.0 episodes of one file are consecutive records).
class VideoCache {
 public:
  struct Entry {
    std::vector<double> timestamps;
    double fps = 0;
    std::string error;
  };
  const Entry& get(const std::string& path) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it)
      if (it->first == path) {
        entries_.splice(entries_.begin(), entries_, it);
        return entries_.front().second;
      }
    Entry e;
    try {
      data::VideoReader v(path);
      e.timestamps = v.timestamps_s();
      e.fps = v.fps();
    } catch (const std::exception& ex) {
      e.error = ex.what();
    }
    ++opened_;
    entries_.emplace_front(path, std::move(e));
    if (entries_.size() > kSize) entries_.pop_back();
    return entries_.front().second;
  }
  int64_t opened() const { return opened_; }

 private:
  static constexpr size_t kSize = 16;
  std::list<std::pair<std::string, Entry>> entries_;
  int64_t opened_ = 0;
};

// FNV-1a: the second, independent hash of an id.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// True when `path` (absolute, normal) lies under `root`.
bool inside(const fs::path& path, const fs::path& root) {
  if (root.empty()) return false;
  const fs::path rel = path.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

int run_validate(const std::string& dir, bool check_videos) {
  const data::ManifestHeader header = data::read_manifest_header(dir);
  const std::string records = (fs::path(header.dir) / "trajectories.jsonl").string();
  // Videos must stay inside the manifest directory or the dataset it was ingested from.
  const fs::path root = fs::path(header.dir);
  fs::path source_root;
  if (header.source.is_object() && header.source.contains("path") && header.source["path"].is_string())
    source_root = fs::absolute(header.source["path"].get<std::string>()).lexically_normal();

  Problems problems;
  VideoCache videos;
  // Duplicate ids in bounded memory: two independent 64-bit hashes of each id and its line (24
  // bytes a record); ids are compared by the pair (a false match is a 2^-128 event).
  struct IdHash {
    uint64_t a, b;
    int64_t line;
    bool operator<(const IdHash& o) const { return a != o.a ? a < o.a : b != o.b ? b < o.b : line < o.line; }
    bool same_id(const IdHash& o) const { return a == o.a && b == o.b; }
  };
  std::vector<IdHash> id_hashes;
  // (no doubling at 1M records; a header claiming more is not trusted further)
  id_hashes.reserve(static_cast<size_t>(std::clamp<int64_t>(header.num_trajectories, 0, 1 << 21)));
  int64_t n = 0, lines = 0;
  std::string last_stat_path;
  struct stat last_st {};
  bool last_exists = false;
  auto check = [&](data::Trajectory&& t, const nlohmann::json& raw, int64_t line) {
    ++n;
    ++lines;
    const std::string where = records + ":" + std::to_string(line) + " ('" + t.id + "'): ";
    const uint64_t h = std::hash<std::string>{}(t.id);
    id_hashes.push_back({data::hash_seed({h, t.id.size()}), fnv1a(t.id), line});
    const fs::path video(t.video.path);
    if (!inside(video, root) && !inside(video, source_root)) {
      problems.add(where + "video " + t.video.path + " leaves the dataset directory " + root.string() +
                   (source_root.empty() ? "" : " (and the ingested dataset " + source_root.string() + ")") +
                   "; refused");
      return;
    }
    if (t.video.path != last_stat_path) {
      last_stat_path = t.video.path;
      last_exists = ::stat(t.video.path.c_str(), &last_st) == 0;
    }
    if (!last_exists) {
      problems.add(where + t.video.path + " does not exist");
      return;
    }
    const int64_t size = raw.value("video_size", int64_t{-1}), mtime = raw.value("video_mtime", int64_t{-1});
    if (size >= 0 && size != static_cast<int64_t>(last_st.st_size))
      problems.add(where + t.video.path + " size is " + std::to_string(last_st.st_size) + ", recorded " +
                   std::to_string(size));
    if (mtime >= 0 && mtime != static_cast<int64_t>(last_st.st_mtime))
      problems.add(where + t.video.path + " was modified after ingest (mtime differs)");
    if (!check_videos) return;
    const auto& v = videos.get(t.video.path);
    if (!v.error.empty()) {
      problems.add(where + "does not open: " + v.error);
      return;
    }
    const int64_t frames = data::frames_in_window(v.timestamps, v.fps, t.video.from_s, t.video.to_s);
    if (frames != t.num_frames)
      problems.add(where + "window holds " + std::to_string(frames) + " frames, manifest says " +
                   std::to_string(t.num_frames));
  };
  try {
    data::for_each_record(header, check, [&](const std::string& bad) {
      ++lines;  // a malformed record (or a path with ".."): listed, not fatal
      problems.add(bad);
    });
  } catch (const FormatError& e) {  // e.g. num_trajectories disagrees with the records
    problems.add(e.what());
  }
  if (lines == 0) problems.add(records + ": the dataset is empty (no trajectories)");

  // Duplicate ids: sorted by hash, each repeat against the first line of its id. Only the ids of
  // the listed ones are read back (a second pass), so memory stays bounded however many repeat.
  std::sort(id_hashes.begin(), id_hashes.end());
  // (line, first line of the id): the earliest repeats, the ones listed (a max-heap by line).
  std::priority_queue<std::pair<int64_t, int64_t>> earliest;
  int64_t first = 0, num_dups = 0;
  for (size_t k = 0; k < id_hashes.size(); ++k) {
    if (k == 0 || !id_hashes[k].same_id(id_hashes[k - 1])) {
      first = id_hashes[k].line;
      continue;
    }
    ++num_dups;
    earliest.emplace(id_hashes[k].line, first);
    if (earliest.size() > Problems::kKept) earliest.pop();
  }
  std::vector<std::pair<int64_t, int64_t>> dups;
  for (; !earliest.empty(); earliest.pop()) dups.push_back(earliest.top());
  std::vector<IdHash>().swap(id_hashes);
  if (num_dups > 0) {
    std::map<int64_t, std::string> ids;
    for (const auto& [line, first_line] : dups) ids[first_line];
    data::for_each_record(
        header,
        [&](data::Trajectory&& t, const nlohmann::json&, int64_t line) {
          auto it = ids.find(line);
          if (it != ids.end()) it->second = t.id;
        },
        [](const std::string&) {});
    std::sort(dups.begin(), dups.end());
    for (const auto& [line, first_line] : dups)
      problems.add(records + ":" + std::to_string(line) + ": duplicate trajectory id '" + ids[first_line] +
                   "' (first at line " + std::to_string(first_line) + ")");
    problems.count += num_dups - static_cast<int64_t>(dups.size());  // counted, not listed
  }

  // The binary index, when there is one: fresh and intact (a stale one is rebuilt by data.index: auto).
  const fs::path index_path = root / data::kIndexFileName;
  std::string index_note = "no index";
  if (fs::exists(index_path)) {
    try {
      auto img = data::IndexImage::map_file(index_path.string(), root.string());
      const std::string stale = data::index_staleness(root.string(), *img);
      if (!img->body_hash_ok())
        problems.add(index_path.string() +
                     ": corrupt (content hash mismatch); rebuild it with `robometer data index " +
                     root.string() + "`");
      else if (!stale.empty())
        index_note = "index stale (" + stale + "); `robometer data index` or data.index: auto rebuilds it";
      else
        index_note = "index fresh";
    } catch (const std::exception& e) {
      problems.add(e.what());
    }
  }
  for (const auto& p : problems.kept) std::printf("%s\n", p.c_str());
  if (problems.count > static_cast<int64_t>(problems.kept.size()))
    std::printf("... and %lld more problems\n",
                static_cast<long long>(problems.count - problems.kept.size()));
  std::printf("%s: %lld trajectories, %lld video files opened, %s, %lld problems\n", header.dir.c_str(),
              static_cast<long long>(n), static_cast<long long>(videos.opened()), index_note.c_str(),
              static_cast<long long>(problems.count));
  return problems.count == 0 ? 0 : 1;
}

// ------------------------------------------------------------------------------------ generate

struct GenerateArgs {
  std::string dir, video;
  int64_t trajectories = 1000000;
  int sources = 30, tasks = 40000;
  uint64_t seed = 0;
};

// A synthetic manifest for scale benchmarks: every record points at one real clip (copied into
// DIR/videos/) so that training and validation can decode it; tasks belong to one source each;
// 70% successful, 20% failure, 10% suboptimal; every tenth source grades partial_success.
int run_generate(const GenerateArgs& a) {
  if (a.trajectories < 1 || a.sources < 1 || a.tasks < a.sources)
    throw ConfigError("data generate-manifest: need trajectories >= 1, sources >= 1, tasks >= sources");
  const fs::path dir = fs::absolute(a.dir).lexically_normal();
  fs::create_directories(dir / "videos");
  const fs::path clip = dir / "videos" / ("clip" + fs::path(a.video).extension().string());
  fs::copy_file(a.video, clip, fs::copy_options::overwrite_existing);
  data::VideoReader v(clip.string());
  const int64_t frames = static_cast<int64_t>(v.timestamps_s().size());
  struct stat st {};
  ::stat(clip.c_str(), &st);
  std::ofstream out(dir / "trajectories.jsonl", std::ios::trunc);
  data::Rng rng(a.seed);
  char buf[64];
  for (int64_t i = 0; i < a.trajectories; ++i) {
    const int64_t task = rng.below(a.tasks);
    const int64_t source = task % a.sources;
    const double u = rng.uniform();
    const char* q = u < 0.7 ? "successful" : u < 0.9 ? "failure" : "suboptimal";
    nlohmann::json ps = nullptr;
    if (source % 10 == 0) ps = std::round(rng.uniform() * 100) / 100;
    std::snprintf(buf, sizeof buf, "source_%02lld/episode_%08lld", static_cast<long long>(source),
                  static_cast<long long>(i));
    nlohmann::json rec{
        {"id", buf},
        {"task", "task " + std::to_string(task) + ": pick up the object and place it in bin " +
                     std::to_string(task % 7)},
        {"data_source", "source_" + std::to_string(source)},
        {"video", {{"path", "videos/" + clip.filename().string()}, {"from_s", 0.0}, {"to_s", nullptr}}},
        {"num_frames", frames},
        {"fps", v.fps()},
        {"quality_label", q},
        {"partial_success", ps},
        {"is_robot", true},
        {"video_size", static_cast<int64_t>(st.st_size)},
        {"video_mtime", static_cast<int64_t>(st.st_mtime)}};
    out << rec.dump() << '\n';
  }
  out.close();
  if (!out) throw Error((dir / "trajectories.jsonl").string() + ": cannot write");
  std::ofstream h(dir / "manifest.json", std::ios::trunc);
  h << nlohmann::json{{"format", "robometer-manifest"},
                      {"version", data::kManifestVersion},
                      {"name", "generated"},
                      {"created", "generated"},
                      {"source", {{"tool", "robometer data generate-manifest"}, {"seed", a.seed}}},
                      {"num_trajectories", a.trajectories}}
           .dump(2)
    << "\n";
  std::printf("wrote %lld trajectories (%d sources, %d tasks, %lld frames each) to %s\n",
              static_cast<long long>(a.trajectories), a.sources, a.tasks, static_cast<long long>(frames),
              dir.string().c_str());
  return 0;
}

Registrar reg("data", "Inspect a manifest: `data stats DIR`, `data validate DIR`, `data index DIR`",
              [](CLI::App& sub, int& exit_code) {
                static std::string validate_dir;
                static bool no_videos = false;
                static GenerateArgs gen;
                sub.require_subcommand(1);
                add_data_stats_subcommand(sub, exit_code);
                CLI::App* validate = sub.add_subcommand(
                    "validate", "Check ids, paths and every video (exists, unchanged, opens, frame count)");
                validate->add_option("dir", validate_dir, "Manifest directory")->required();
                validate->add_flag("--no-videos", no_videos,
                                   "Skip opening videos (existence, size and mtime only)");
                validate->callback([&exit_code] { exit_code = run_validate(validate_dir, !no_videos); });
                add_data_index_subcommand(sub, exit_code);
                CLI::App* g =
                    sub.add_subcommand("generate-manifest", "Synthetic large manifest (benchmarks)");
                g->group("");  // hidden
                g->add_option("dir", gen.dir, "Output manifest directory")->required();
                g->add_option("--video", gen.video, "A real clip every record points at")->required();
                g->add_option("--trajectories", gen.trajectories, "Number of records");
                g->add_option("--sources", gen.sources, "Data sources");
                g->add_option("--tasks", gen.tasks, "Tasks");
                g->add_option("--seed", gen.seed, "Random seed");
                g->callback([&exit_code] { exit_code = run_generate(gen); });
                add_data_frames_subcommand(sub, exit_code);
              });

}  // namespace
}  // namespace robometer::cli
