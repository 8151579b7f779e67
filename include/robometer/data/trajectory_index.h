// Lookup tables over all training trajectories, as Robometer's samplers need them:
// successful / non-successful trajectories per task, trajectories and tasks per data source,
// per-source sampling weights. Read-only once built (safe to share across threads).
//
// Backed by a binary index image (binary_index.h): the memory-mapped trajectories.rbmidx of a
// manifest (shared by every process that opens it), or an image built in memory (several
// manifests, a JSONL manifest with data.index: off, a list of trajectories in tests). No C++
// object per trajectory exists: at(i) builds a Trajectory on demand, and the accessors below
// read single fields.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "robometer/data/binary_index.h"
#include "robometer/data/manifest.h"
#include "robometer/data/trajectory.h"

namespace robometer::data {

// One manifest and the weight of its data sources when a source is drawn (spec §2.6 step 4).
// NOLINTNEXTLINE(bugprone-exception-escape): as Manifest (manifest.h)
struct WeightedManifest {
  Manifest manifest;
  double weight = 1.0;
};

// A manifest directory and its weight (config data.train / data.eval entries).
struct DatasetRef {
  std::string dir;
  double weight = 1.0;
};

class TrajectoryIndex {
 public:
  // Positions in the index, ascending: a view into the image (valid while the index lives).
  class Ids : public Span<int64_t> {
   public:
    Ids() = default;
    Ids(Span<int64_t> s) : Span<int64_t>(s) {}  // NOLINT: a view converts implicitly
    operator std::vector<int64_t>() const { return {begin(), end()}; }
    std::vector<int64_t> to_vector() const { return *this; }
  };

  // Each trajectory's data source gets the weight of the manifest it comes from. A source found
  // in two manifests with different weights, or a duplicated trajectory id, throws ConfigError.
  explicit TrajectoryIndex(const std::vector<WeightedManifest>& manifests);
  // All sources weight 1.
  explicit TrajectoryIndex(std::vector<Trajectory> trajectories);
  // One image per manifest with its weight: a single image is used as it is (zero copy);
  // several are merged into one image in memory.
  explicit TrajectoryIndex(const std::vector<std::pair<std::shared_ptr<const IndexImage>, double>>& images);

  int64_t size() const { return image_->num_trajectories(); }
  Trajectory at(int64_t i) const;  // throws FormatError (naming the index) when out of range

  // Single fields, without building a Trajectory.
  std::string_view id(int64_t i) const;
  uint32_t task_id(int64_t i) const { return image_->task_of(image_->record(i)); }
  uint32_t source_id(int64_t i) const { return image_->source_of(image_->record(i)); }
  int64_t num_frames(int64_t i) const { return image_->record(i).num_frames; }
  Quality quality(int64_t i) const;
  std::optional<float> partial_success(int64_t i) const;
  bool is_successful(int64_t i) const { return quality(i) == Quality::Successful; }

  const std::vector<std::string>& sources() const { return sources_; }  // sorted; id = position
  int64_t find_source(std::string_view source) const;                   // -1 when absent
  uint32_t num_tasks() const { return image_->num_tasks(); }
  std::string_view task_name(uint32_t task) const { return image_->task_name(task); }
  int64_t find_task(std::string_view task) const;  // task id (rank by name), -1 when absent

  Ids by_source(const std::string& source) const;
  Ids by_source(uint32_t source) const { return image_->group(IndexImage::BySource, source); }
  Ids successful_by_source(uint32_t source) const {
    return image_->group(IndexImage::SuccessfulBySource, source);
  }
  // Trajectories of the source whose task has both successful and non-successful trajectories.
  Ids both_outcomes_by_source(uint32_t source) const {
    return image_->group(IndexImage::BothOutcomesBySource, source);
  }
  std::vector<std::string> tasks_of_source(const std::string& source) const;  // sorted
  Span<uint32_t> task_ids_of_source(uint32_t source) const { return image_->tasks_of_source(source); }
  double source_weight(const std::string& source) const;  // 0 for an unknown source
  bool source_has_unsuccessful(const std::string& source) const;
  bool source_has_partial_success(const std::string& source) const;

  Ids successful_by_task(const std::string& task) const;
  Ids unsuccessful_by_task(const std::string& task) const;  // suboptimal + failure
  Ids by_task(const std::string& task) const;
  Ids successful_by_task(uint32_t task) const { return image_->group(IndexImage::SuccessfulByTask, task); }
  Ids unsuccessful_by_task(uint32_t task) const {
    return image_->group(IndexImage::UnsuccessfulByTask, task);
  }
  Ids by_task(uint32_t task) const { return image_->group(IndexImage::ByTask, task); }
  Span<uint32_t> tasks_with_successful() const { return image_->tasks_with_successful(); }  // task ids
  bool task_has_both(const std::string& task) const;  // successful and non-successful
  bool task_has_both(uint32_t task) const {
    return !successful_by_task(task).empty() && !unsuccessful_by_task(task).empty();
  }
  bool has_unsuccessful() const { return has_unsuccessful_; }

  int64_t find(const std::string& id) const;  // -1 when absent

  const IndexImage& image() const { return *image_; }

 private:
  void init(std::vector<double> weights);

  std::shared_ptr<const IndexImage> image_;
  std::vector<std::string> sources_;
  std::vector<double> source_weight_;  // by source id
  bool has_unsuccessful_ = false;
};

// The index over config datasets under data.index `policy` (auto/require: each manifest's
// trajectories.rbmidx, built or rebuilt as the policy allows; off: trajectories.jsonl parsed).
std::shared_ptr<const TrajectoryIndex> open_trajectory_index(const std::vector<DatasetRef>& datasets,
                                                             IndexPolicy policy);

}  // namespace robometer::data
