// Lookup tables over all training trajectories, as Robometer's samplers need them:
// successful / non-successful trajectories per task, trajectories and tasks per data source,
// per-source sampling weights. Built once; read-only afterwards (safe to share across threads).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "robometer/data/manifest.h"
#include "robometer/data/trajectory.h"

namespace robometer::data {

// One manifest and the weight of its data sources when a source is drawn (spec §2.6 step 4).
struct WeightedManifest {
  Manifest manifest;
  double weight = 1.0;
};

class TrajectoryIndex {
 public:
  using Ids = std::vector<int64_t>;  // positions in trajectories(), ascending

  // Each trajectory's data source gets the weight of the manifest it comes from. A source found
  // in two manifests with different weights, or a duplicated trajectory id, throws ConfigError.
  explicit TrajectoryIndex(const std::vector<WeightedManifest>& manifests);
  // All sources weight 1.
  explicit TrajectoryIndex(std::vector<Trajectory> trajectories);

  const std::vector<Trajectory>& trajectories() const { return trajectories_; }
  const Trajectory& at(int64_t i) const { return trajectories_.at(static_cast<size_t>(i)); }
  int64_t size() const { return static_cast<int64_t>(trajectories_.size()); }

  const std::vector<std::string>& sources() const { return sources_; }  // sorted
  const Ids& by_source(const std::string& source) const;
  const std::vector<std::string>& tasks_of_source(const std::string& source) const;  // sorted
  double source_weight(const std::string& source) const;
  bool source_has_unsuccessful(const std::string& source) const;
  bool source_has_partial_success(const std::string& source) const;

  const Ids& successful_by_task(const std::string& task) const;
  const Ids& unsuccessful_by_task(const std::string& task) const;   // suboptimal + failure
  const Ids& by_task(const std::string& task) const;
  const std::vector<std::string>& tasks_with_successful() const { return tasks_with_successful_; }
  bool task_has_both(const std::string& task) const;  // successful and non-successful
  bool has_unsuccessful() const { return has_unsuccessful_; }
  bool is_successful(int64_t i) const { return at(i).quality == Quality::Successful; }

  int64_t find(const std::string& id) const;  // -1 when absent

 private:
  void build(const std::map<std::string, double>& weights);

  std::vector<Trajectory> trajectories_;
  std::vector<std::string> sources_;
  std::vector<std::string> tasks_with_successful_;
  std::map<std::string, Ids> by_source_, by_task_, successful_by_task_, unsuccessful_by_task_;
  std::map<std::string, std::vector<std::string>> tasks_of_source_;
  std::map<std::string, double> source_weight_;
  std::map<std::string, bool> source_has_unsuccessful_, source_has_partial_success_;
  std::map<std::string, int64_t> by_id_;
  bool has_unsuccessful_ = false;
};

}  // namespace robometer::data
