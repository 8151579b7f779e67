// `robometer data stats DIR`: trajectories and frames per data source, task and quality.
// `robometer data validate DIR`: every video exists with the recorded size/mtime, opens, and
// its window holds the recorded number of frames; exit 1 listing the problems.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "robometer/cli/command.h"
#include "robometer/core/error.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/config/loader.h"
#include "robometer/data/manifest.h"
#include "robometer/data/run_options.h"
#include "robometer/data/video_reader.h"

namespace robometer::cli {
namespace {

struct Count {
  int64_t trajectories = 0, frames = 0;
};

void print_table(const char* title, const std::map<std::string, Count>& rows) {
  size_t w = std::string(title).size();
  for (const auto& [k, v] : rows) w = std::max(w, k.size());
  w = std::min<size_t>(w, 70);
  std::printf("\n%-*s %12s %12s\n", static_cast<int>(w), title, "trajectories", "frames");
  for (const auto& [k, v] : rows)
    std::printf("%-*.*s %12lld %12lld\n", static_cast<int>(w), static_cast<int>(w), k.c_str(),
                static_cast<long long>(v.trajectories), static_cast<long long>(v.frames));
}

// Per source: the success cutoff and category a training run with `config_path` applies, and
// what the original's filters (data.min_frames, data.drop_tasks_without_success) drop.
void print_source_rules(const data::Manifest& m, const std::string& config_path) {
  namespace fs = std::filesystem;
  config::RunConfig cfg;
  if (fs::exists(config_path)) cfg = config::load_run_config(config_path).config;
  else std::printf("\n(config %s not found: built-in defaults, no shipped per-source tables)\n", config_path.c_str());
  std::vector<data::WeightedManifest> ms{{m, 1.0}};
  const auto rep = data::filter_trajectories(ms, cfg.data.min_frames, cfg.data.drop_tasks_without_success);
  std::map<std::string, int64_t> n;
  for (const auto& t : m.trajectories) n[t.data_source]++;
  size_t w = 11;
  for (const auto& [k, v] : n) w = std::max(w, k.size());
  w = std::min<size_t>(w, 70);
  std::printf("\nper-source rules of %s (success cutoff, category; trajectories the filters drop)\n",
              config_path.c_str());
  std::printf("%-*s %8s %-32s %10s %12s\n", static_cast<int>(w), "data_source", "cutoff", "category",
              "too_short", "task_no_succ");
  for (const auto& [source, count] : n) {
    const auto r = data::source_rules(cfg.data, source);
    auto get = [&](const std::map<std::string, int64_t>& mm) {
      auto it = mm.find(source);
      return static_cast<long long>(it == mm.end() ? 0 : it->second);
    };
    std::printf("%-*.*s %8.4g %-32s %10lld %12lld\n", static_cast<int>(w), static_cast<int>(w), source.c_str(),
                r.success_cutoff, r.category().c_str(), get(rep.too_short), get(rep.no_success));
  }
  std::printf("filters: %s\n", rep.summary().c_str());
}

int run_stats(const std::string& dir, const std::string& config_path) {
  data::Manifest m = data::read_manifest(dir);
  std::map<std::string, Count> by_source, by_task, by_quality;
  Count total;
  for (const auto& t : m.trajectories) {
    for (auto* map : {&by_source, &by_task, &by_quality}) {
      const std::string& key = map == &by_source ? t.data_source : map == &by_task ? t.task : std::string(data::quality_name(t.quality));
      (*map)[key].trajectories++;
      (*map)[key].frames += t.num_frames;
    }
    total.trajectories++;
    total.frames += t.num_frames;
  }
  std::printf("manifest %s (%s): %lld trajectories, %lld frames\n", m.dir.c_str(), m.name.c_str(),
              static_cast<long long>(total.trajectories), static_cast<long long>(total.frames));
  print_table("data_source", by_source);
  print_table("task", by_task);
  print_table("quality", by_quality);
  print_source_rules(m, config_path);
  return 0;
}

int run_validate(const std::string& dir) {
  namespace fs = std::filesystem;
  data::Manifest m = data::read_manifest(dir);
  // Size and mtime are not part of Manifest: read them from the records themselves.
  std::vector<std::pair<int64_t, int64_t>> recorded;
  {
    std::ifstream in(fs::path(m.dir) / "trajectories.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto j = nlohmann::json::parse(line);
      recorded.emplace_back(j.value("video_size", int64_t{-1}), j.value("video_mtime", int64_t{-1}));
    }
  }
  std::vector<std::string> problems;
  std::map<std::string, std::pair<std::vector<double>, double>> opened;  // path → timestamps, fps
  std::map<std::string, std::string> open_error;
  for (size_t i = 0; i < m.trajectories.size(); ++i) {
    const auto& t = m.trajectories[i];
    const std::string where = "trajectory " + std::to_string(i) + " ('" + t.id + "'): ";
    struct stat st {};
    if (::stat(t.video.path.c_str(), &st) != 0) {
      problems.push_back(where + t.video.path + " does not exist");
      continue;
    }
    if (i < recorded.size()) {
      if (recorded[i].first >= 0 && recorded[i].first != static_cast<int64_t>(st.st_size))
        problems.push_back(where + t.video.path + " size is " + std::to_string(st.st_size) + ", recorded " +
                           std::to_string(recorded[i].first));
      if (recorded[i].second >= 0 && recorded[i].second != static_cast<int64_t>(st.st_mtime))
        problems.push_back(where + t.video.path + " was modified after ingest (mtime differs)");
    }
    if (!opened.count(t.video.path) && !open_error.count(t.video.path)) {
      try {
        data::VideoReader v(t.video.path);
        opened[t.video.path] = {v.timestamps_s(), v.fps()};
      } catch (const std::exception& e) {
        open_error[t.video.path] = e.what();
      }
    }
    if (open_error.count(t.video.path)) {
      problems.push_back(where + "does not open: " + open_error[t.video.path]);
      continue;
    }
    const auto& [ts, fps] = opened[t.video.path];
    const int64_t n = data::frames_in_window(ts, fps, t.video.from_s, t.video.to_s);
    if (n != t.num_frames)
      problems.push_back(where + "window holds " + std::to_string(n) + " frames, manifest says " +
                         std::to_string(t.num_frames));
  }
  for (const auto& p : problems) std::printf("%s\n", p.c_str());
  std::printf("%s: %zu trajectories, %zu video files, %zu problems\n", m.dir.c_str(), m.trajectories.size(),
              opened.size() + open_error.size(), problems.size());
  return problems.empty() ? 0 : 1;
}

Registrar reg("data", "Inspect a manifest: `data stats DIR`, `data validate DIR`",
              [](CLI::App& sub, int& exit_code) {
                static std::string stats_dir, validate_dir, stats_config = "configs/base.yaml";
                sub.require_subcommand(1);
                CLI::App* stats = sub.add_subcommand("stats", "Trajectories and frames per source, task and quality");
                stats->add_option("dir", stats_dir, "Manifest directory")->required();
                stats->add_option("--config", stats_config,
                                  "run config whose per-source rules are shown")->capture_default_str();
                stats->callback([&exit_code] { exit_code = run_stats(stats_dir, stats_config); });
                CLI::App* validate = sub.add_subcommand("validate", "Check every video exists, is unchanged and opens");
                validate->add_option("dir", validate_dir, "Manifest directory")->required();
                validate->callback([&exit_code] { exit_code = run_validate(validate_dir); });
              });

}  // namespace
}  // namespace robometer::cli
