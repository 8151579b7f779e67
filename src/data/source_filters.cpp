// The original's per-source rules and trajectory filters (see the header). No LibTorch: the
// front end's `data stats` runs them.
#include "robometer/data/source_filters.h"

#include <map>

namespace robometer::data {

SourceRules source_rules(const config::DataConfig& d, const std::string& source) {
  SourceRules r;
  if (auto it = d.success_cutoffs.find(source); it != d.success_cutoffs.end()) {
    r.success_cutoff = it->second;
    r.cutoff_shipped = true;
  }
  if (auto it = d.source_categories.find(source); it != d.source_categories.end()) {
    r.preference_only = it->second.find("preference_only") != std::string::npos;
    r.suboptimal_fail = it->second.find("suboptimal_fail") != std::string::npos;
  }
  for (const auto& s : d.preference_only_sources) r.preference_only |= s == source;
  return r;
}

std::string SourceRules::category() const {
  if (preference_only && suboptimal_fail) return "preference_only+suboptimal_fail";
  if (preference_only) return "preference_only";
  if (suboptimal_fail) return "suboptimal_fail";
  return "default";
}

int64_t FilterReport::dropped() const {
  int64_t n = 0;
  for (const auto* m : {&too_short, &no_success})
    for (const auto& [s, c] : *m) n += c;
  return n;
}

std::string FilterReport::summary() const {
  int64_t short_n = 0, task_n = 0;
  for (const auto& [s, c] : too_short) short_n += c;
  for (const auto& [s, c] : no_success) task_n += c;
  return "kept " + std::to_string(kept) + " trajectories; dropped " + std::to_string(short_n) +
         " with too few frames (data.min_frames) and " + std::to_string(task_n) + " of " +
         std::to_string(tasks_without_success) +
         " ungraded tasks without a successful trajectory (data.drop_tasks_without_success)";
}

namespace {

// Records per step of a whole-index scan between releases of the pages behind it (4.7 MB).
constexpr int64_t kScanChunk = 65536;

// 1 per trajectory the filters keep; `rep` gets the counts.
std::vector<char> kept_mask(const TrajectoryIndex& index, int min_frames, bool drop_tasks_without_success,
                            FilterReport& rep) {
  const int64_t n = index.size();
  std::vector<char> keep(static_cast<size_t>(n), 1);
  // 1) min_frames: the original drops frames_shape[0] <= min_frames (stored frames; the same
  //    count here, since the stored cap is far above 5). 2) ungraded trajectories of tasks left
  //    without a successful one, over every manifest (the task test runs on what 1) kept).
  std::vector<char> task_has_success(index.num_tasks(), 0);
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0 && i % kScanChunk == 0) index.image().release_records(i - kScanChunk, i);
    if (index.num_frames(i) <= min_frames) {
      keep[static_cast<size_t>(i)] = 0;
      rep.too_short[index.sources()[index.source_id(i)]]++;
    } else if (index.is_successful(i)) {
      task_has_success[index.task_id(i)] = 1;
    }
  }
  if (drop_tasks_without_success) {
    std::vector<char> task_dropped(index.num_tasks(), 0);
    for (int64_t i = 0; i < n; ++i) {
      if (i > 0 && i % kScanChunk == 0) index.image().release_records(i - kScanChunk, i);
      if (!keep[static_cast<size_t>(i)] || task_has_success[index.task_id(i)] || index.partial_success(i))
        continue;
      keep[static_cast<size_t>(i)] = 0;
      rep.no_success[index.sources()[index.source_id(i)]]++;
      task_dropped[index.task_id(i)] = 1;
    }
    for (char d : task_dropped) rep.tasks_without_success += d;
  }
  for (char k : keep) rep.kept += k;
  return keep;
}

}  // namespace

FilterReport filter_report(const TrajectoryIndex& index, int min_frames, bool drop_tasks_without_success) {
  FilterReport rep;
  kept_mask(index, min_frames, drop_tasks_without_success, rep);
  return rep;
}

std::shared_ptr<const TrajectoryIndex> filter_index(std::shared_ptr<const TrajectoryIndex> index,
                                                    int min_frames, bool drop_tasks_without_success,
                                                    FilterReport* report) {
  FilterReport rep;
  const std::vector<char> keep = kept_mask(*index, min_frames, drop_tasks_without_success, rep);
  const int64_t n = index->size();
  if (report) *report = rep;
  if (rep.kept == n) return index;
  // One manifest per source keeps each source's weight.
  std::map<std::string, WeightedManifest> by_source;
  for (int64_t i = 0; i < n; ++i) {
    if (!keep[static_cast<size_t>(i)]) continue;
    const std::string& source = index->sources()[index->source_id(i)];
    auto& wm = by_source[source];
    if (wm.manifest.trajectories.empty()) {
      wm.manifest.name = source;
      wm.weight = index->source_weight(source);
    }
    wm.manifest.trajectories.push_back(index->at(i));
  }
  std::vector<WeightedManifest> manifests;
  for (auto& [source, wm] : by_source) manifests.push_back(std::move(wm));
  return std::make_shared<TrajectoryIndex>(manifests);
}

}  // namespace robometer::data
