#include "robometer/eval/scorer.h"

#include <torch/torch.h>

#include <algorithm>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"
#include "robometer/model/stream_session.h"

namespace robometer::eval {

ScoreMode parse_score_mode(const std::string& s) {
  if (s == "linspace") return ScoreMode::Linspace;
  if (s == "dense") return ScoreMode::Dense;
  if (s == "all") return ScoreMode::All;
  if (s == "stream") return ScoreMode::Stream;
  throw ConfigError("score mode '" + s + "': expected linspace, dense, all or stream");
}

const char* score_mode_name(ScoreMode m) {
  switch (m) {
    case ScoreMode::Linspace:
      return "linspace";
    case ScoreMode::Dense:
      return "dense";
    case ScoreMode::All:
      return "all";
    case ScoreMode::Stream:
      return "stream";
  }
  return "?";
}

std::vector<int64_t> prefix_positions(int64_t t, int k) {
  if (t < 0 || k < 1) throw Error("prefix_positions: bad prefix end " + std::to_string(t));
  std::vector<int64_t> pos = data::linspace_positions(t + 1, k);
  while (static_cast<int>(pos.size()) < k) pos.push_back(t);  // pad with the current frame
  return pos;
}

at::Tensor select_frames(const at::Tensor& frames, const std::vector<int64_t>& positions) {
  const auto idx = at::tensor(positions, at::kLong);
  return frames.index_select(0, idx).contiguous();
}

namespace {

void check_video(const at::Tensor& frames, const std::string& task) {
  if (!frames.defined() || frames.dim() != 4 || frames.size(3) != 3 || frames.scalar_type() != at::kByte ||
      frames.size(0) == 0)
    throw Error("score: expected uint8 frames [T>0, H, W, 3]");
  if (task.empty()) throw Error("score: empty task instruction");
}

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

}  // namespace

Scorer::Scorer(model::ModelBundle& bundle, ScorerOptions opts) : bundle_(bundle), opts_(opts) {
  if (!bundle_.model) throw Error("scorer: model bundle has no model");
  if (opts_.frames < 1) throw ConfigError("scorer: frames must be >= 1");
  if (opts_.batch_size < 1) throw ConfigError("scorer: batch_size must be >= 1");
  const auto params = bundle_.model->parameters();
  if (!params.empty()) device_ = params.front().device();
}

model::ModelInputs Scorer::to_device(model::ModelInputs in) const {
  // Only the pixels: the model copies ids, masks and positions itself and reads them on the
  // host where the processor made them (no device-to-host round trip per batch).
  if (device_.is_cpu() || !in.pixel_values.defined()) return in;
  in.pixel_values = in.pixel_values.to(device_);
  return in;
}

std::vector<ClipOutputs> Scorer::score_clips(const std::vector<model::ProgressQuery>& queries) {
  torch::NoGradGuard no_grad;
  bundle_.model->eval();
  std::vector<ClipOutputs> out;
  out.reserve(queries.size());
  for (size_t start = 0; start < queries.size(); start += static_cast<size_t>(opts_.batch_size)) {
    const size_t end = std::min(queries.size(), start + static_cast<size_t>(opts_.batch_size));
    std::vector<model::ProgressQuery> chunk(queries.begin() + static_cast<std::ptrdiff_t>(start),
                                            queries.begin() + static_cast<std::ptrdiff_t>(end));
    const model::RewardOutputs r =
        bundle_.model->forward(to_device(bundle_.processor->progress_inputs(chunk)));
    const at::Tensor prog = r.progress.to(at::kCPU, at::kDouble);
    const at::Tensor succ = at::sigmoid(r.success_logits.to(at::kFloat)).to(at::kCPU, at::kDouble);
    for (size_t i = 0; i < chunk.size(); ++i) {
      const int64_t k = chunk[i].frames.size(0);  // one <|prog_token|> per frame
      const auto b = static_cast<int64_t>(i);
      out.push_back({to_vector(prog[b].slice(0, 0, k)), to_vector(succ[b].slice(0, 0, k))});
    }
  }
  return out;
}

ScoreResult Scorer::linspace(const at::Tensor& frames, const std::string& task) {
  check_video(frames, task);
  ScoreResult res;
  res.frame_indices = data::linspace_positions(frames.size(0), opts_.frames);
  const auto clip = score_clips({{task, select_frames(frames, res.frame_indices)}});
  res.progress = clip[0].progress;
  res.success = clip[0].success;
  return res;
}

ScoreResult Scorer::all_frames(const at::Tensor& frames, const std::string& task) {
  check_video(frames, task);
  ScoreResult res;
  for (int64_t i = 0; i < frames.size(0); ++i) res.frame_indices.push_back(i);
  const auto clip = score_clips({{task, frames.contiguous()}});
  res.progress = clip[0].progress;
  res.success = clip[0].success;
  return res;
}

ScoreResult Scorer::stream(const at::Tensor& frames, const std::string& task) {
  check_video(frames, task);
  model::StreamModel streaming(bundle_);
  const auto session = streaming.open(task);
  ScoreResult res;
  for (int64_t i = 0; i < frames.size(0); ++i) {  // one environment step at a time
    const auto out = streaming.append({session.get()}, {frames.slice(0, i, i + 1)});
    res.frame_indices.push_back(i);
    res.progress.push_back(out[0].progress[0]);
    res.success.push_back(out[0].success[0]);
  }
  return res;
}

ScoreResult Scorer::dense(const at::Tensor& frames, const std::string& task) {
  check_video(frames, task);
  ScoreResult res;
  const int64_t T = frames.size(0);
  std::vector<model::ProgressQuery> queries;
  for (int64_t t = 0; t < T; ++t) {
    res.frame_indices.push_back(t);
    queries.push_back({task, select_frames(frames, prefix_positions(t, opts_.frames))});
  }
  for (const auto& clip : score_clips(queries)) {
    res.progress.push_back(clip.progress.back());
    res.success.push_back(clip.success.back());
  }
  return res;
}

ScoreResult Scorer::score(const at::Tensor& frames, const std::string& task, ScoreMode mode) {
  switch (mode) {
    case ScoreMode::Linspace:
      return linspace(frames, task);
    case ScoreMode::Dense:
      return dense(frames, task);
    case ScoreMode::All:
      return all_frames(frames, task);
    case ScoreMode::Stream:
      return stream(frames, task);
  }
  throw Error("score: unknown mode");
}

std::vector<double> Scorer::preferences(const std::vector<model::PairQuery>& queries) {
  torch::NoGradGuard no_grad;
  bundle_.model->eval();
  std::vector<double> out;
  for (size_t start = 0; start < queries.size(); start += static_cast<size_t>(opts_.batch_size)) {
    const size_t end = std::min(queries.size(), start + static_cast<size_t>(opts_.batch_size));
    std::vector<model::PairQuery> chunk(queries.begin() + static_cast<std::ptrdiff_t>(start),
                                        queries.begin() + static_cast<std::ptrdiff_t>(end));
    const model::RewardOutputs r = bundle_.model->forward(to_device(bundle_.processor->pair_inputs(chunk)));
    if (!r.preference_logit.defined()) throw Error("preference: the model produced no preference logit");
    const auto p = to_vector(at::sigmoid(r.preference_logit.to(at::kFloat)));
    out.insert(out.end(), p.begin(), p.end());
  }
  return out;
}

double Scorer::preference(const at::Tensor& frames_a, const at::Tensor& frames_b, const std::string& task) {
  check_video(frames_a, task);
  check_video(frames_b, task);
  const auto a = select_frames(frames_a, data::linspace_positions(frames_a.size(0), opts_.frames));
  const auto b = select_frames(frames_b, data::linspace_positions(frames_b.size(0), opts_.frames));
  return preferences({{task, a, b}})[0];
}

}  // namespace robometer::eval
