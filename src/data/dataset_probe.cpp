// Dispatch by format, episode-list parsing, and probing: every distinct video is opened once
// (LeRobot v3.0 packs hundreds of episodes into one mp4), in a small thread pool.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "robometer/core/error.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/data/video_reader.h"

namespace robometer::data {

void ScanSink::begin(const std::string& format, const std::string& root, int64_t) {
  scan.format = format;
  scan.root = root;
}

void read_dataset(const std::string& format, const std::string& root, const IngestOptions& opts,
                  TrajectorySink& sink) {
  if (format == "lerobot")
    read_lerobot(root, opts, sink);
  else if (format == "rbm")
    read_rbm(root, opts, sink);
  else if (format == "folder")
    read_folder(root, opts, sink);
  else
    throw ConfigError("unknown dataset format '" + format + "' (expected lerobot | rbm | folder)");
}

DatasetScan scan_dataset(const std::string& format, const std::string& root, const IngestOptions& opts) {
  ScanSink sink;
  read_dataset(format, root, opts, sink);
  move_invalid_utf8_to_problems(sink.scan);
  return std::move(sink.scan);
}

const ProbeCache::Video* ProbeCache::find(const std::string& path) const {
  for (const auto& e : entries_)
    if (e.first == path) return &e.second;
  return nullptr;
}

void ProbeCache::put(const std::string& path, Video v) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (it->first == path) {
      entries_.erase(it);
      break;
    }
  entries_.emplace_back(path, std::move(v));
  if (entries_.size() > capacity_) entries_.erase(entries_.begin());
}

std::vector<int64_t> parse_episode_list(const std::string& spec) {
  std::vector<int64_t> out;
  std::stringstream ss(spec);
  std::string item;
  auto number = [&](const std::string& s) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != s.size() || s.empty() || v < 0)
      throw ConfigError("bad episode list '" + spec + "': '" + s + "'");
    return static_cast<int64_t>(v);
  };
  while (std::getline(ss, item, ',')) {
    size_t dash = item.find('-');
    if (dash == std::string::npos) {
      out.push_back(number(item));
    } else {
      int64_t a = number(item.substr(0, dash)), b = number(item.substr(dash + 1));
      if (b < a || b - a > 100000000) throw ConfigError("bad episode range '" + item + "'");
      for (int64_t e = a; e <= b; ++e) out.push_back(e);
    }
  }
  if (out.empty()) throw ConfigError("empty episode list");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

int64_t frames_in_window(const std::vector<double>& ts, double fps, double from_s, double to_s) {
  if (from_s == 0.0 && to_s < 0.0) return static_cast<int64_t>(ts.size());
  const double half = fps > 0 ? 0.5 / fps : 0.0;
  int64_t n = 0;
  for (double t : ts)
    if (t >= from_s - half && (to_s < 0.0 || t < to_s - half)) ++n;
  return n;
}

ProbeSummary probe_trajectories(DatasetScan& scan, const ProbeOptions& opts) {
  std::map<std::string, std::vector<size_t>> by_file;
  for (size_t i = 0; i < scan.trajectories.size(); ++i) by_file[scan.trajectories[i].video.path].push_back(i);
  std::vector<std::string> files;
  for (const auto& kv : by_file) files.push_back(kv.first);

  using Result = ProbeCache::Video;
  std::vector<Result> results(files.size());
  std::vector<size_t> to_open;  // files not in the cache
  for (size_t k = 0; k < files.size(); ++k) {
    if (const Result* c = opts.cache ? opts.cache->find(files[k]) : nullptr)
      results[k] = *c;
    else
      to_open.push_back(k);
  }
  std::atomic<size_t> next{0}, done{0};
  std::mutex progress_mu;
  auto worker = [&] {
    for (size_t j; (j = next.fetch_add(1)) < to_open.size();) {
      const size_t k = to_open[j];
      Result& r = results[k];
      try {
        VideoReader v(files[k]);
        r.ts = v.timestamps_s();
        r.fps = v.fps();
        r.end_s = r.ts.empty() ? 0.0 : r.ts.back() + (r.fps > 0 ? 1.0 / r.fps : 0.0);
        r.ok = !r.ts.empty();
        if (!r.ok) r.error = "video has no frames";
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      size_t d = ++done;
      if (opts.progress) {
        std::lock_guard<std::mutex> lock(progress_mu);
        opts.progress(d, to_open.size());
      }
    }
  };
  const int n_threads = std::max(1, std::min<int>(opts.threads, static_cast<int>(to_open.size())));
  std::vector<std::thread> pool;
  for (int i = 1; i < n_threads; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();

  ProbeSummary s;
  s.files = to_open.size();
  std::vector<bool> drop(scan.trajectories.size(), false);
  for (size_t k = 0; k < files.size(); ++k) {
    const Result& r = results[k];
    for (size_t i : by_file[files[k]]) {
      Trajectory& t = scan.trajectories[i];
      std::string reason;
      if (!r.ok) {
        reason = "video does not open: " + r.error;
      } else if (t.video.to_s >= 0.0 && r.fps > 0 && t.video.to_s > r.end_s + 1.0 / r.fps) {
        reason = "window ends at " + std::to_string(t.video.to_s) + " s, past the end of the video (" +
                 std::to_string(r.end_s) + " s)";
      } else {
        const int64_t n = frames_in_window(r.ts, r.fps, t.video.from_s, t.video.to_s);
        if (n == 0)
          reason = "window holds no frames";
        else if (t.num_frames > 0 && n != t.num_frames)
          scan.notes.push_back(t.id + ": metadata says " + std::to_string(t.num_frames) +
                               " frames, the video window holds " + std::to_string(n));
        t.num_frames = n;
        t.fps = r.fps;
      }
      if (!reason.empty()) {
        scan.problems.push_back({t.id, t.video.path, reason});
        drop[i] = true;
      }
    }
  }
  if (opts.cache) {
    // The files used last (in record order) go in last: they are the ones the next chunk continues.
    std::vector<size_t> order(files.size());
    for (size_t k = 0; k < files.size(); ++k) order[k] = k;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return by_file[files[a]].back() < by_file[files[b]].back(); });
    for (size_t k : order) opts.cache->put(files[k], std::move(results[k]));
  }
  std::vector<Trajectory> kept;
  for (size_t i = 0; i < scan.trajectories.size(); ++i)
    if (!drop[i])
      kept.push_back(std::move(scan.trajectories[i]));
    else
      ++s.failed;
  scan.trajectories = std::move(kept);
  s.trajectories = scan.trajectories.size();
  return s;
}

}  // namespace robometer::data
