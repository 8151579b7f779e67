// The original's per-source rules (success cutoffs, categories) and its trajectory filters, on
// a TrajectoryIndex. Shared by training, evaluation and `robometer data stats`, so that the three
// see the same rules; free of LibTorch, so that the front end can run data stats without it.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "robometer/config/run_config.h"
#include "robometer/data/trajectory_index.h"

namespace robometer::data {

// What the per-source rules say about one data source (data stats, the train-start log).
struct SourceRules {
  double success_cutoff = 1.0;
  bool cutoff_shipped = false;  // from data.success_cutoffs (else the 1.0 default)
  bool preference_only = false;
  bool suboptimal_fail = false;
  std::string category() const;  // "preference_only+suboptimal_fail", ..., "default"
};
SourceRules source_rules(const config::DataConfig& d, const std::string& source);

// The original BaseDataset filters (_filter_dataset, _filter_task_based_criteria), applied to the
// training data: trajectories with <= min_frames frames, then every trajectory without
// partial_success whose task (over all manifests) has no successful trajectory left.
struct FilterReport {
  std::map<std::string, int64_t> too_short;   // per data source
  std::map<std::string, int64_t> no_success;  // per data source
  int64_t tasks_without_success = 0;
  int64_t kept = 0;
  int64_t dropped() const;
  std::string summary() const;  // one line with the counts, for the log
};
// The filters on an index (mmap'd or in memory), without reading the manifests: the index
// itself when nothing is dropped (ranks keep sharing its pages), else an in-memory index of the
// kept trajectories with the same per-source weights. `report` (optional) gets the counts.
std::shared_ptr<const TrajectoryIndex> filter_index(std::shared_ptr<const TrajectoryIndex> index,
                                                    int min_frames, bool drop_tasks_without_success,
                                                    FilterReport* report = nullptr);

// Only the counts (data stats): no index of the kept trajectories is built.
FilterReport filter_report(const TrajectoryIndex& index, int min_frames, bool drop_tasks_without_success);

}  // namespace robometer::data
