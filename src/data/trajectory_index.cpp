#include "robometer/data/trajectory_index.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "robometer/core/error.h"

namespace robometer::data {
namespace fs = std::filesystem;

namespace {

// Records each source's weight; a source seen with two different weights is an error.
class SourceWeights {
 public:
  void add(const std::string& source, double weight, const std::string& origin) {
    auto [it, inserted] = weights_.emplace(source, std::make_pair(weight, origin));
    if (!inserted && it->second.first != weight)
      throw ConfigError("data source '" + source + "' appears in manifests " + it->second.second + " and " +
                        origin + " with different weights");
  }
  std::vector<double> by_id(const std::vector<std::string>& sources) const {
    std::vector<double> w;
    for (const auto& s : sources) {
      auto it = weights_.find(s);
      w.push_back(it == weights_.end() ? 1.0 : it->second.first);
    }
    return w;
  }

 private:
  std::map<std::string, std::pair<double, std::string>> weights_;
};

void check_weight(double w, const std::string& dir) {
  if (!(w >= 0.0)) throw ConfigError("manifest " + dir + ": weight must be >= 0");
}

}  // namespace

TrajectoryIndex::TrajectoryIndex(const std::vector<WeightedManifest>& manifests) {
  SourceWeights weights;
  IndexBuilder b;
  for (const auto& wm : manifests) {
    check_weight(wm.weight, wm.manifest.dir);
    for (const auto& t : wm.manifest.trajectories) {
      weights.add(t.data_source, wm.weight, wm.manifest.dir);
      b.add(t);
    }
  }
  image_ = IndexImage::from_bytes(b.finish("", {}, ""), "", "in-memory trajectory index");
  sources_.clear();
  for (uint32_t s = 0; s < image_->num_sources(); ++s) sources_.emplace_back(image_->source_name(s));
  init(weights.by_id(sources_));
}

TrajectoryIndex::TrajectoryIndex(std::vector<Trajectory> trajectories) {
  IndexBuilder b;
  for (const auto& t : trajectories) b.add(t);
  image_ = IndexImage::from_bytes(b.finish("", {}, ""), "", "in-memory trajectory index");
  init({});
}

TrajectoryIndex::TrajectoryIndex(
    const std::vector<std::pair<std::shared_ptr<const IndexImage>, double>>& images) {
  if (images.empty()) throw ConfigError("trajectory index: no manifest");
  SourceWeights weights;
  for (const auto& [img, w] : images) {
    check_weight(w, img->what());
    for (uint32_t s = 0; s < img->num_sources(); ++s)
      weights.add(std::string(img->source_name(s)), w, img->what());
  }
  if (images.size() == 1) {
    image_ = images[0].first;
  } else {  // one merged image in memory (positions: the manifests in order)
    IndexBuilder b;
    for (const auto& [img, w] : images) {
      TrajectoryIndex part({{img, w}});
      for (int64_t i = 0; i < part.size(); ++i) b.add(part.at(i));
    }
    image_ = IndexImage::from_bytes(b.finish("", {}, ""), "", "merged trajectory index");
  }
  for (uint32_t s = 0; s < image_->num_sources(); ++s) sources_.emplace_back(image_->source_name(s));
  init(weights.by_id(sources_));
}

void TrajectoryIndex::init(std::vector<double> weights) {
  if (sources_.empty())
    for (uint32_t s = 0; s < image_->num_sources(); ++s) sources_.emplace_back(image_->source_name(s));
  source_weight_ = weights.empty() ? std::vector<double>(sources_.size(), 1.0) : std::move(weights);
  for (uint32_t s = 0; s < image_->num_sources(); ++s)
    has_unsuccessful_ |= (image_->source_flags(s) & 1) != 0;
}

Trajectory TrajectoryIndex::at(int64_t i) const {
  const IndexRecord& r = image_->record(i);
  Trajectory t;
  t.id = std::string(image_->str(r.id_off, r.id_len));
  t.task = std::string(image_->task_name(image_->task_of(r)));
  t.data_source = sources_[image_->source_of(r)];
  const std::string_view path = image_->str(r.path_off, r.path_len);
  t.video.path =
      r.path_is_relative ? (fs::path(image_->base_dir()) / std::string(path)).string() : std::string(path);
  t.video.from_s = r.from_s;
  t.video.to_s = r.to_s;
  t.num_frames = r.num_frames;
  t.fps = r.fps;
  t.quality = quality(i);
  if (r.has_partial) t.partial_success = r.partial_success;
  t.is_robot = r.is_robot != 0;
  return t;
}

std::string_view TrajectoryIndex::id(int64_t i) const {
  const IndexRecord& r = image_->record(i);
  return image_->str(r.id_off, r.id_len);
}

Quality TrajectoryIndex::quality(int64_t i) const {
  const uint8_t q = image_->record(i).quality;
  if (q > static_cast<uint8_t>(Quality::Failure))
    image_->corrupt("record " + std::to_string(i) + " has quality " + std::to_string(q));
  return static_cast<Quality>(q);
}

std::optional<float> TrajectoryIndex::partial_success(int64_t i) const {
  const IndexRecord& r = image_->record(i);
  if (!r.has_partial) return std::nullopt;
  return r.partial_success;
}

int64_t TrajectoryIndex::find_source(std::string_view source) const {
  auto it =
      std::lower_bound(sources_.begin(), sources_.end(), source,
                       [](const std::string& a, std::string_view b) { return std::string_view(a) < b; });
  return it != sources_.end() && *it == source ? it - sources_.begin() : -1;
}

int64_t TrajectoryIndex::find_task(std::string_view task) const {
  uint32_t lo = 0, hi = image_->num_tasks();
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (image_->task_name(mid) < task)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < image_->num_tasks() && image_->task_name(lo) == task ? lo : -1;
}

TrajectoryIndex::Ids TrajectoryIndex::by_source(const std::string& s) const {
  const int64_t id = find_source(s);
  return id < 0 ? Ids() : by_source(static_cast<uint32_t>(id));
}

std::vector<std::string> TrajectoryIndex::tasks_of_source(const std::string& s) const {
  std::vector<std::string> out;
  const int64_t id = find_source(s);
  if (id < 0) return out;
  for (uint32_t t : task_ids_of_source(static_cast<uint32_t>(id))) out.emplace_back(task_name(t));
  return out;
}

double TrajectoryIndex::source_weight(const std::string& s) const {
  const int64_t id = find_source(s);
  return id < 0 ? 0.0 : source_weight_[static_cast<size_t>(id)];
}

bool TrajectoryIndex::source_has_unsuccessful(const std::string& s) const {
  const int64_t id = find_source(s);
  return id >= 0 && (image_->source_flags(static_cast<uint32_t>(id)) & 1) != 0;
}

bool TrajectoryIndex::source_has_partial_success(const std::string& s) const {
  const int64_t id = find_source(s);
  return id >= 0 && (image_->source_flags(static_cast<uint32_t>(id)) & 2) != 0;
}

TrajectoryIndex::Ids TrajectoryIndex::successful_by_task(const std::string& t) const {
  const int64_t id = find_task(t);
  return id < 0 ? Ids() : successful_by_task(static_cast<uint32_t>(id));
}
TrajectoryIndex::Ids TrajectoryIndex::unsuccessful_by_task(const std::string& t) const {
  const int64_t id = find_task(t);
  return id < 0 ? Ids() : unsuccessful_by_task(static_cast<uint32_t>(id));
}
TrajectoryIndex::Ids TrajectoryIndex::by_task(const std::string& t) const {
  const int64_t id = find_task(t);
  return id < 0 ? Ids() : by_task(static_cast<uint32_t>(id));
}
bool TrajectoryIndex::task_has_both(const std::string& t) const {
  const int64_t id = find_task(t);
  return id >= 0 && task_has_both(static_cast<uint32_t>(id));
}

int64_t TrajectoryIndex::find(const std::string& key) const {
  const auto ids = image_->by_id();
  size_t lo = 0, hi = ids.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (id(ids[mid]) < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < ids.size() && id(ids[lo]) == key ? ids[lo] : -1;
}

std::shared_ptr<const TrajectoryIndex> open_trajectory_index(const std::vector<DatasetRef>& datasets,
                                                             IndexPolicy policy) {
  if (policy == IndexPolicy::Off) {
    std::vector<WeightedManifest> manifests;
    for (const auto& d : datasets) manifests.push_back({read_manifest(d.dir), d.weight});
    return std::make_shared<TrajectoryIndex>(manifests);
  }
  std::vector<std::pair<std::shared_ptr<const IndexImage>, double>> images;
  for (const auto& d : datasets) images.emplace_back(open_index(d.dir, policy), d.weight);
  return std::make_shared<TrajectoryIndex>(images);
}

}  // namespace robometer::data
