#include "robometer/serve/dataset_view.h"

#include <map>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"
#include "robometer/data/loader.h"
#include "robometer/data/manifest.h"
#include "robometer/data/rng.h"
#include "robometer/plot/png.h"
#include "robometer/serve/server.h"

namespace robometer::serve {
namespace {
using nlohmann::json;

std::vector<double> floats(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

json clip_json(const data::Clip& c) {
  json thumbs = json::array();
  for (int64_t k = 0; k < c.frames.size(0); ++k) thumbs.push_back(png_data_url(c.frames[k]));
  return {{"trajectory_id", c.trajectory_id},
          {"data_source", c.data_source},
          {"quality", data::quality_name(c.quality)},
          {"frame_indices", c.frame_indices},
          {"video_frame_indices", c.video_frame_indices},
          {"valid_frames", c.valid_frames},
          {"thumbs", thumbs},
          {"progress", floats(c.progress)},
          {"success", floats(c.success)},
          {"success_mask", floats(c.success_mask)},
          {"progress_mask", c.progress_mask}};
}

}  // namespace

std::string png_data_url(const at::Tensor& frame) {
  return "data:image/png;base64," + base64_encode(plot::encode_png(frame));
}

DatasetView::DatasetView(const std::string& dir, DatasetViewOptions opts)
    : dir_(dir), opts_(std::move(opts)) {
  index_ = std::make_shared<const data::TrajectoryIndex>(
      std::vector<data::WeightedManifest>{{data::read_manifest(dir), 1.0}});
  if (index_->size() == 0) throw Error("view: " + dir + " holds no trajectories");
  sampler_ = std::make_unique<data::PairSampler>(index_, opts_.sampling);
}

json DatasetView::summary() const {
  json sources = json::object(), trajs = json::array();
  for (int64_t i = 0; i < index_->size(); ++i) {
    const data::Trajectory t = index_->at(i);
    json& s = sources[t.data_source];
    if (s.is_null())
      s = {{"trajectories", 0}, {"frames", 0}, {"tasks", json::object()}, {"quality", json::object()}};
    s["trajectories"] = s["trajectories"].get<int64_t>() + 1;
    s["frames"] = s["frames"].get<int64_t>() + t.num_frames;
    s["tasks"][t.task] = s["tasks"].value(t.task, 0) + 1;
    const std::string q = data::quality_name(t.quality);
    s["quality"][q] = s["quality"].value(q, 0) + 1;
    json j = {{"id", t.id},
              {"task", t.task},
              {"data_source", t.data_source},
              {"quality", q},
              {"num_frames", t.num_frames},
              {"fps", t.fps}};
    if (t.partial_success) j["partial_success"] = *t.partial_success;
    trajs.push_back(j);
  }
  return {{"dir", dir_}, {"sources", sources}, {"trajectories", trajs}};
}

json DatasetView::trajectory(const std::string& id, bool raw) const {
  const int64_t i = index_->find(id);
  if (i < 0) throw Error("view: no trajectory '" + id + "' in " + dir_);
  const data::Trajectory& t = index_->at(i);
  data::VideoReaderOptions ro;
  ro.resize = opts_.resize;
  ro.window_from_s = t.video.from_s;
  ro.window_to_s = t.video.to_s;
  data::VideoReader reader(t.video.path, ro);
  const auto video_idx = data::stored_frame_indices(reader.num_frames(), opts_.sampling.max_stored_frames);
  const at::Tensor frames = reader.frames(video_idx).contiguous();
  const int64_t S = frames.size(0);
  json thumbs = json::array();
  for (int64_t k = 0; k < S; ++k) thumbs.push_back(png_data_url(frames[k]));
  json out = {{"id", t.id},
              {"task", t.task},
              {"data_source", t.data_source},
              {"quality", data::quality_name(t.quality)},
              {"num_frames", t.num_frames},
              {"stored_frames", S},
              {"video_frame_indices", video_idx},
              {"thumbs", thumbs}};
  // The objective supervises progress on successful trajectories and on graded ones only.
  const auto cut = opts_.sampling.success_cutoffs.find(t.data_source);
  const double cutoff =
      cut != opts_.sampling.success_cutoffs.end() ? cut->second : opts_.sampling.default_success_cutoff;
  if (t.quality == data::Quality::Successful || t.partial_success) {
    std::vector<int64_t> all(S);
    for (int64_t k = 0; k < S; ++k) all[k] = k;
    const auto partial = opts_.sampling.last_frame_partial_progress ? t.partial_success : std::nullopt;
    out["gt_progress"] = data::progress_labels(S, all, cutoff, partial);
    out["gt_note"] = "Robometer progress label of each stored frame (whole trajectory as one forward clip)";
  } else {
    out["gt_progress"] = nullptr;
    out["gt_note"] = std::string("no progress label: the objective masks progress on ") +
                     data::quality_name(t.quality) + " trajectories";
  }
  if (t.partial_success) out["partial_success"] = *t.partial_success;
  if (raw) {
    out["raw"] = base64_encode(std::string(reinterpret_cast<const char*>(frames.data_ptr<uint8_t>()),
                                           static_cast<size_t>(frames.numel())));
    out["shape"] = {S, frames.size(1), frames.size(2), 3};
  }
  return out;
}

json DatasetView::training_pair(uint64_t seed) const {
  data::Rng rng(seed);
  const data::PairPlan plan = sampler_->sample(rng);
  const data::PairSample s = data::assemble_pair(*index_, plan, opts_.resize);
  return {{"seed", seed},
          {"task", s.task},
          {"strategy", data::strategy_name(s.strategy)},
          {"preference", s.preference},
          {"different_task", s.different_task},
          {"a", clip_json(s.a)},
          {"b", clip_json(s.b)}};
}

}  // namespace robometer::serve
