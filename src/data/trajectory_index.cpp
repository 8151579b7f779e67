#include "robometer/data/trajectory_index.h"

#include <set>

#include "robometer/core/error.h"

namespace robometer::data {

namespace {
const TrajectoryIndex::Ids kNoIds;
const std::vector<std::string> kNoTasks;

template <typename M>
const typename M::mapped_type& lookup(const M& m, const std::string& key,
                                      const typename M::mapped_type& fallback) {
  auto it = m.find(key);
  return it == m.end() ? fallback : it->second;
}
}  // namespace

TrajectoryIndex::TrajectoryIndex(const std::vector<WeightedManifest>& manifests) {
  std::map<std::string, double> weights;
  std::map<std::string, std::string> weight_origin;
  for (const auto& wm : manifests) {
    if (!(wm.weight >= 0.0))
      throw ConfigError("manifest " + wm.manifest.dir + ": weight must be >= 0");
    for (const auto& t : wm.manifest.trajectories) {
      auto [it, inserted] = weights.emplace(t.data_source, wm.weight);
      if (inserted) {
        weight_origin[t.data_source] = wm.manifest.dir;
      } else if (it->second != wm.weight) {
        throw ConfigError("data source '" + t.data_source + "' appears in manifests " +
                          weight_origin[t.data_source] + " and " + wm.manifest.dir +
                          " with different weights");
      }
      trajectories_.push_back(t);
    }
  }
  build(weights);
}

TrajectoryIndex::TrajectoryIndex(std::vector<Trajectory> trajectories)
    : trajectories_(std::move(trajectories)) {
  build({});
}

void TrajectoryIndex::build(const std::map<std::string, double>& weights) {
  std::map<std::string, std::set<std::string>> tasks;
  for (int64_t i = 0; i < size(); ++i) {
    const Trajectory& t = trajectories_[static_cast<size_t>(i)];
    if (!by_id_.emplace(t.id, i).second)
      throw ConfigError("duplicate trajectory id '" + t.id + "'");
    by_source_[t.data_source].push_back(i);
    by_task_[t.task].push_back(i);
    tasks[t.data_source].insert(t.task);
    source_has_unsuccessful_[t.data_source] |= t.quality != Quality::Successful;
    source_has_partial_success_[t.data_source] |= t.partial_success.has_value();
    if (t.quality == Quality::Successful) {
      successful_by_task_[t.task].push_back(i);
    } else {
      unsuccessful_by_task_[t.task].push_back(i);
      has_unsuccessful_ = true;
    }
  }
  for (const auto& [source, ids] : by_source_) {
    sources_.push_back(source);
    auto w = weights.find(source);
    source_weight_[source] = w == weights.end() ? 1.0 : w->second;
  }
  for (const auto& [source, set] : tasks) tasks_of_source_[source].assign(set.begin(), set.end());
  for (const auto& [task, ids] : successful_by_task_) tasks_with_successful_.push_back(task);
}

const TrajectoryIndex::Ids& TrajectoryIndex::by_source(const std::string& s) const {
  return lookup(by_source_, s, kNoIds);
}
const std::vector<std::string>& TrajectoryIndex::tasks_of_source(const std::string& s) const {
  return lookup(tasks_of_source_, s, kNoTasks);
}
double TrajectoryIndex::source_weight(const std::string& s) const {
  auto it = source_weight_.find(s);
  return it == source_weight_.end() ? 0.0 : it->second;
}
bool TrajectoryIndex::source_has_unsuccessful(const std::string& s) const {
  auto it = source_has_unsuccessful_.find(s);
  return it != source_has_unsuccessful_.end() && it->second;
}
bool TrajectoryIndex::source_has_partial_success(const std::string& s) const {
  auto it = source_has_partial_success_.find(s);
  return it != source_has_partial_success_.end() && it->second;
}
const TrajectoryIndex::Ids& TrajectoryIndex::successful_by_task(const std::string& t) const {
  return lookup(successful_by_task_, t, kNoIds);
}
const TrajectoryIndex::Ids& TrajectoryIndex::unsuccessful_by_task(const std::string& t) const {
  return lookup(unsuccessful_by_task_, t, kNoIds);
}
const TrajectoryIndex::Ids& TrajectoryIndex::by_task(const std::string& t) const {
  return lookup(by_task_, t, kNoIds);
}
bool TrajectoryIndex::task_has_both(const std::string& t) const {
  return !successful_by_task(t).empty() && !unsuccessful_by_task(t).empty();
}
int64_t TrajectoryIndex::find(const std::string& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? -1 : it->second;
}

}  // namespace robometer::data
