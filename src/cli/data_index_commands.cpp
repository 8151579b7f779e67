// `robometer data stats` and `robometer data index` (see the header): no LibTorch here, so that
// the front end can run them in a process that does not load it.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>

#include "robometer/cli/data_index_commands.h"
#include "robometer/config/loader.h"
#include "robometer/data/binary_index.h"
#include "robometer/data/manifest.h"
#include "robometer/data/source_filters.h"
#include "robometer/data/trajectory_index.h"

namespace robometer::cli {
namespace {
namespace fs = std::filesystem;

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
void print_source_rules(const std::string& dir, data::IndexPolicy policy, const std::string& config_path) {
  namespace fs = std::filesystem;
  config::RunConfig cfg;
  if (fs::exists(config_path))
    cfg = config::load_run_config(config_path).config;
  else
    std::printf("\n(config %s not found: built-in defaults, no shipped per-source tables)\n",
                config_path.c_str());
  const auto index = data::open_trajectory_index({{dir, 1.0}}, policy);
  const data::FilterReport rep =
      data::filter_report(*index, cfg.data.min_frames, cfg.data.drop_tasks_without_success);
  std::map<std::string, int64_t> n;
  for (uint32_t i = 0; i < index->sources().size(); ++i)
    n[index->sources()[i]] = static_cast<int64_t>(index->by_source(i).size());
  size_t w = 11;
  for (const auto& [k, v] : n) w = std::max(w, k.size());
  w = std::min<size_t>(w, 70);
  std::printf("\nper-source rules of %s (success cutoff, category; trajectories the filters drop)\n",
              config_path.c_str());
  std::printf("%-*s %8s %-32s %10s %12s\n", static_cast<int>(w), "data_source", "cutoff", "category",
              "too_short", "task_no_succ");
  for (const auto& entry : n) {
    const std::string& source = entry.first;  // a lambda cannot capture a structured binding in C++17
    const auto r = data::source_rules(cfg.data, source);
    auto get = [&](const std::map<std::string, int64_t>& mm) {
      auto it = mm.find(source);
      return static_cast<long long>(it == mm.end() ? 0 : it->second);
    };
    std::printf("%-*.*s %8.4g %-32s %10lld %12lld\n", static_cast<int>(w), static_cast<int>(w),
                source.c_str(), r.success_cutoff, r.category().c_str(), get(rep.too_short),
                get(rep.no_success));
  }
  std::printf("filters: %s\n", rep.summary().c_str());
}

struct Stats {
  std::string dir, name;
  std::map<std::string, Count> by_source, by_task, by_quality;
  Count total;
};

// The JSONL path: every record parsed.
Stats stats_from_manifest(const std::string& dir) {
  data::Manifest m = data::read_manifest(dir);
  Stats s{m.dir, m.name, {}, {}, {}, {}};
  for (const auto& t : m.trajectories) {
    for (auto* map : {&s.by_source, &s.by_task, &s.by_quality}) {
      const std::string& key = map == &s.by_source ? t.data_source
                               : map == &s.by_task ? t.task
                                                   : std::string(data::quality_name(t.quality));
      (*map)[key].trajectories++;
      (*map)[key].frames += t.num_frames;
    }
    s.total.trajectories++;
    s.total.frames += t.num_frames;
  }
  return s;
}

// The index path: the per-group counts are table sizes; no record is read.
Stats stats_from_index(const std::string& dir, data::IndexPolicy policy) {
  auto img = data::open_index(dir, policy);
  data::TrajectoryIndex index({{img, 1.0}});
  Stats s{img->base_dir(), std::string(img->name()), {}, {}, {}, {}};
  for (uint32_t i = 0; i < index.sources().size(); ++i)
    s.by_source[index.sources()[i]] = {static_cast<int64_t>(index.by_source(i).size()),
                                       img->source_frames(i)};
  for (uint32_t t = 0; t < index.num_tasks(); ++t)
    s.by_task[std::string(index.task_name(t))] = {static_cast<int64_t>(index.by_task(t).size()),
                                                  img->task_frames(t)};
  for (auto q : {data::Quality::Successful, data::Quality::Suboptimal, data::Quality::Failure}) {
    const auto [n, frames] = img->quality_stats(q);
    if (n > 0) s.by_quality[data::quality_name(q)] = {n, frames};
    s.total.trajectories += n;
    s.total.frames += frames;
  }
  return s;
}

int run_stats(const std::string& dir, const std::string& policy, const std::string& config_path) {
  const auto p = data::parse_index_policy(policy);
  const Stats s = p == data::IndexPolicy::Off ? stats_from_manifest(dir) : stats_from_index(dir, p);
  std::printf("manifest %s (%s): %lld trajectories, %lld frames\n", s.dir.c_str(), s.name.c_str(),
              static_cast<long long>(s.total.trajectories), static_cast<long long>(s.total.frames));
  print_table("data_source", s.by_source);
  print_table("task", s.by_task);
  print_table("quality", s.by_quality);
  print_source_rules(dir, p, config_path);
  return 0;
}

int run_index(const std::string& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = data::build_index(dir);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const fs::path path = fs::absolute(dir) / data::kIndexFileName;
  std::printf("indexed %lld trajectories into %s (%.1f MB) in %.2f s\n", static_cast<long long>(n),
              path.string().c_str(), fs::file_size(path) / 1e6, s);
  return 0;
}

}  // namespace

void add_data_stats_subcommand(CLI::App& data, int& exit_code) {
  static std::string dir, policy = "auto", config_path = "configs/base.yaml";
  CLI::App* stats = data.add_subcommand("stats", "Trajectories and frames per source, task and quality");
  stats->add_option("dir", dir, "Manifest directory")->required();
  stats->add_option("--index", policy, "auto (build when missing/stale) | require | off (parse JSONL)")
      ->check(CLI::IsMember({"auto", "require", "off"}));
  stats->add_option("--config", config_path, "run config whose per-source rules are shown")
      ->capture_default_str();
  stats->callback([&exit_code] { exit_code = run_stats(dir, policy, config_path); });
}

void add_data_index_subcommand(CLI::App& data, int& exit_code) {
  static std::string dir;
  CLI::App* index = data.add_subcommand("index", "Build the binary index DIR/trajectories.rbmidx");
  index->add_option("dir", dir, "Manifest directory")->required();
  index->callback([&exit_code] { exit_code = run_index(dir); });
}

}  // namespace robometer::cli
