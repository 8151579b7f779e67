// The original eval_server.py endpoints (see original_api.h), on the shared model queue.
#include "robometer/serve/original_api.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <map>

#include "robometer/serve/http_json.h"
#include "robometer/serve/npy.h"
#include "robometer/serve/server.h"

namespace robometer::serve {
using nlohmann::json;

std::vector<int64_t> frame_step_positions(int64_t t) {
  // numpy: y = arange(4) * (t / 3) in float64, last = t, then truncated to int.
  const double step = static_cast<double>(t) / 3.0;
  return {0, static_cast<int64_t>(1 * step), static_cast<int64_t>(2 * step), t};
}

namespace {

constexpr int kFrameStepFrames = 4;  // NUM_SUBSAMPLED_FRAMES in eval_server.py

using NpyFiles = std::map<std::string, const std::string*>;  // form key -> .npy bytes

struct Trajectory {
  std::string task;
  at::Tensor frames;  // uint8 [T, H, W, 3], already fitted to the budget
  FramePlan plan;
};

struct Sample {
  bool preference = false;
  Trajectory trajectory;        // progress
  Trajectory chosen, rejected;  // preference
};

// Checks every sample's sizes against the budget as it goes (frames over the whole request).
class SampleReader {
 public:
  SampleReader(const RequestBudget& budget, const NpyFiles* files) : budget_(budget), files_(files) {}

  Sample read(const json& s, size_t index, bool frame_steps) {
    const std::string where = "samples[" + std::to_string(index) + "]";
    if (!s.is_object()) throw ClientError(400, where + ": a sample must be a JSON object");
    const auto type = string_field(s, "sample_type", where + ".").value_or("");
    Sample out;
    if (type == "progress") {
      out.trajectory = trajectory(s, "trajectory", where);
      const int64_t t = out.trajectory.frames.size(0);
      tokens_ =
          budget_.check_request_tokens(frame_steps ? t * kFrameStepFrames : t, out.trajectory.plan, tokens_);
    } else if (type == "preference") {
      out.preference = true;
      out.chosen = trajectory(s, "chosen_trajectory", where);
      out.rejected = trajectory(s, "rejected_trajectory", where,
                                /*needs_task=*/false);  // the prompt uses the chosen task
      tokens_ = budget_.check_request_tokens(out.chosen.frames.size(0), out.chosen.plan, tokens_);
      tokens_ = budget_.check_request_tokens(out.rejected.frames.size(0), out.rejected.plan, tokens_);
    } else {
      throw ClientError(400, where + ": Unsupported sample_type: " + (type.empty() ? "(none)" : type) +
                                 " (expected progress or preference)");
    }
    return out;
  }
  int64_t tokens() const { return tokens_; }

 private:
  Trajectory trajectory(const json& sample, const char* key, const std::string& where,
                        bool needs_task = true) {
    const std::string at = where + "." + key;
    const auto it = sample.find(key);
    if (it == sample.end() || !it->is_object()) throw ClientError(400, at + ": missing or not an object");
    const json& traj = *it;
    Trajectory t;
    const auto tf = traj.find("task");
    const auto task = tf == traj.end() || tf->is_null() ? std::nullopt : string_field(traj, "task", at + ".");
    if (task) {
      budget_.check_task(*task, at + ".task");
      t.task = *task;
    } else if (needs_task) {
      throw ClientError(400, at + ".task: missing");
    }
    const auto f = traj.find("frames");
    if (f == traj.end() || f->is_null()) throw ClientError(400, at + ".frames: missing");
    at::Tensor frames =
        f->is_object() ? npy_frames(*f, at + ".frames", t.plan) : list_frames(*f, at + ".frames", t.plan);
    t.frames = budget_.fit(frames, t.plan);
    return t;
  }

  // Checks a declared [T, H, W, 3] shape, and the frames and pixels of the whole request so
  // far, before the frames are allocated.
  FramePlan admit(const std::vector<int64_t>& shape, const std::string& at) {
    FramePlan plan = budget_.plan(shape, at);
    frames_ += shape[0];
    budget_.check_frame_count(frames_);
    pixels_ = budget_.check_request_pixels(shape[0], plan, pixels_);
    return plan;
  }

  // {"__numpy_file__": KEY}: the .npy file of that form field.
  at::Tensor npy_frames(const json& ref, const std::string& at, FramePlan& plan) {
    const auto key = string_field(ref, "__numpy_file__", at + ".");
    if (!key) throw ClientError(400, at + ": expected frames or {\"__numpy_file__\": KEY}");
    if (!files_) throw ClientError(400, at + ": .npy references need POST /evaluate_batch_npy");
    const auto it = files_->find(*key);
    if (it == files_->end())
      throw ClientError(400, at + ": refers to the file '" + *key + "', which the request does not contain");
    const NpyArray a = parse_npy(*it->second, at + " ('" + *key + "')");
    std::vector<int64_t> shape = a.shape;
    if (shape.size() == 3) shape.insert(shape.begin(), 1);  // one H x W x 3 frame
    plan = admit(shape, at);                                // before the conversion allocates
    return npy_to_uint8(a).reshape(shape);
  }

  // Nested lists [T][H][W][3] (or [H][W][3]) of numbers 0..255 (others clipped like numpy).
  at::Tensor list_frames(const json& v, const std::string& at, FramePlan& plan) {
    if (!v.is_array() || v.empty())
      throw ClientError(400, at + ": expected nested lists [T][H][W][3] of numbers");
    if (v[0].is_string())
      throw ClientError(
          400, at + ": frames as file paths are not accepted; send the pixels (nested lists or .npy)");
    std::vector<int64_t> shape;
    for (const json* p = &v; p->is_array(); p = &(*p)[0]) {
      if (p->empty() || shape.size() >= 4)
        throw ClientError(400, at + ": expected nested lists [T][H][W][3] of numbers");
      shape.push_back(static_cast<int64_t>(p->size()));
    }
    const bool single = shape.size() == 3;  // one [H][W][3] frame
    if (single) shape.insert(shape.begin(), 1);
    plan = admit(shape, at);
    at::Tensor out = at::empty(shape, at::kByte);
    uint8_t* dst = out.data_ptr<uint8_t>();
    size_t n = 0;
    auto pixel = [&](const json& px) {
      if (!px.is_array() || px.size() != 3)
        throw ClientError(400, at + ": every pixel must be a list of 3 numbers");
      for (const auto& c : px) {
        if (!c.is_number())
          throw ClientError(400, at + ": pixel values must be numbers, got " + std::string(c.type_name()));
        const double x = c.get<double>();
        dst[n++] = static_cast<uint8_t>(std::isnan(x) || x <= 0 ? 0 : x >= 255 ? 255 : static_cast<int>(x));
      }
    };
    auto frame = [&](const json& f) {
      if (!f.is_array() || static_cast<int64_t>(f.size()) != shape[1])
        throw ClientError(400, at + ": frames of different heights");
      for (const auto& row : f) {
        if (!row.is_array() || static_cast<int64_t>(row.size()) != shape[2])
          throw ClientError(400, at + ": rows of different widths");
        for (const auto& px : row) pixel(px);
      }
    };
    if (single) {
      frame(v);
    } else {
      for (const auto& f : v) frame(f);
    }
    return out;
  }

  const RequestBudget& budget_;
  const NpyFiles* files_;
  int64_t frames_ = 0, pixels_ = 0, tokens_ = 0;
};

// "true"/"false" (form field), a JSON bool, or absent.
bool frame_steps_flag(const json* v) {
  if (!v || v->is_null()) return false;
  if (v->is_boolean()) return v->get<bool>();
  if (v->is_string()) {
    std::string s = v->get<std::string>();
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s == "true";
  }
  throw ClientError(400, "\"use_frame_steps\" must be true or false");
}

// Scores the samples on the model queue and builds the original's response.
json evaluate(const RouteContext& ctx, const json& samples, bool frame_steps, const NpyFiles* files) {
  if (!samples.is_array() || samples.empty())
    throw ClientError(400, "\"samples\" must be a non-empty list of samples");
  SampleReader reader(ctx.budget, files);
  std::vector<Sample> parsed;
  for (size_t i = 0; i < samples.size(); ++i) parsed.push_back(reader.read(samples[i], i, frame_steps));
  ModelJob job;
  job.visual_tokens = reader.tokens();
  std::vector<size_t> queries_of;  // per progress sample: how many queries
  for (const Sample& s : parsed) {
    if (s.preference) {
      job.pairs.push_back({s.chosen.task, s.chosen.frames, s.rejected.frames});  // chosen is A
    } else if (frame_steps) {
      const int64_t t = s.trajectory.frames.size(0);
      for (int64_t i = 0; i < t; ++i)
        job.progress.push_back(
            {s.trajectory.task, eval::select_frames(s.trajectory.frames, frame_step_positions(i))});
      queries_of.push_back(static_cast<size_t>(t));
    } else {
      job.progress.push_back({s.trajectory.task, s.trajectory.frames.contiguous()});
      queries_of.push_back(1);
    }
  }
  parsed.clear();
  const ModelResult r = ctx.queue.submit(std::move(job)).get();
  json out = {{"outputs_preference", nullptr}, {"outputs_progress", nullptr}, {"outputs_success", nullptr}};
  if (!queries_of.empty()) {
    json progress = json::array(), success = json::array();
    size_t q = 0;
    for (size_t n : queries_of) {
      if (!frame_steps) {
        progress.push_back(r.progress[q].progress);
        success.push_back(r.progress[q].success);
        ++q;
        continue;
      }
      json p = json::array(), s = json::array();
      for (size_t k = 0; k < n; ++k, ++q) {  // the last prediction of each prefix
        p.push_back(r.progress[q].progress.back());
        s.push_back(r.progress[q].success.back());
      }
      progress.push_back(p);
      success.push_back(s);
    }
    out["outputs_progress"] = {{"progress_pred", progress}};
    out["outputs_success"] = {{"success_probs", success}};
  }
  if (!r.preference.empty()) {
    json preds = json::array(), labels = json::array();
    for (double p : r.preference) {
      preds.push_back(p > 0.5 ? 1 : 0);
      labels.push_back(1.0);  // inference keeps chosen first
    }
    out["outputs_preference"] = {
        {"predictions", preds}, {"prediction_probs", r.preference}, {"preference_labels", labels}};
  }
  return out;
}

// The body of /evaluate_batch: {"samples": [...], "use_frame_steps": b}, the original's legacy
// {"use_frame_steps": b, "<any>": [...]}, or a bare list of samples.
void handle_evaluate_batch(const RouteContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const json body = parse_json_body(req.body, ctx.budget.limits());
  if (body.is_array()) return reply_json(res, 200, evaluate(ctx, body, false, nullptr));
  if (!body.is_object())
    throw ClientError(400, "body must be a JSON object {\"samples\": [...], \"use_frame_steps\": false}");
  const auto steps = body.find("use_frame_steps");
  const bool frame_steps = frame_steps_flag(steps == body.end() ? nullptr : &*steps);
  if (const auto it = body.find("samples"); it != body.end())
    return reply_json(res, 200, evaluate(ctx, *it, frame_steps, nullptr));
  if (steps != body.end() && body.size() == 2) {
    for (const auto& [k, v] : body.items())
      if (k != "use_frame_steps") return reply_json(res, 200, evaluate(ctx, v, frame_steps, nullptr));
  }
  throw ClientError(400, "body needs \"samples\": [sample, ...]");
}

// Multipart: .npy files by form key; fields sample_0 ... (JSON) and use_frame_steps.
void handle_evaluate_batch_npy(const RouteContext& ctx, const httplib::Request& req, httplib::Response& res) {
  if (!req.is_multipart_form_data())
    throw ClientError(
        400,
        "/evaluate_batch_npy needs a multipart/form-data body (requests.post(url, files=..., data=...))");
  NpyFiles files;
  std::map<std::string, const std::string*> fields;
  for (const auto& [key, part] : req.files) {
    if (!part.filename.empty()) {
      if (part.filename.size() >= 4 && part.filename.compare(part.filename.size() - 4, 4, ".npy") == 0)
        files[key] = &part.content;  // other uploads are ignored, as in the original
    } else {
      fields[key] = &part.content;
    }
  }
  bool frame_steps = false;
  if (const auto it = fields.find("use_frame_steps"); it != fields.end()) {
    const json v = *it->second;
    frame_steps = frame_steps_flag(&v);
    fields.erase(it);
  }
  // The original reads sample_0 .. sample_{n-1}, n = the number of other fields.
  json samples = json::array();
  for (size_t i = 0; i < fields.size(); ++i) {
    const auto it = fields.find("sample_" + std::to_string(i));
    if (it == fields.end()) continue;
    samples.push_back(parse_json_body(*it->second, ctx.budget.limits(), "sample_" + std::to_string(i)));
  }
  if (samples.empty()) throw ClientError(400, "no sample_0, sample_1, ... fields in the form");
  reply_json(res, 200, evaluate(ctx, samples, frame_steps, &files));
}

json model_info(const RouteContext& ctx) {
  auto& model = ctx.scorer.bundle().model;
  int64_t total = 0, trainable = 0;
  for (const auto& p : model->parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  json summary = json::array();
  for (const auto& child : model->named_children()) {
    if (summary.size() >= 10) break;
    int64_t n = 0;
    for (const auto& p : child.value()->parameters()) n += p.numel();
    summary.push_back({{"name", child.key()}, {"type", child.value()->name()}, {"parameters", n}});
  }
  json config = json::object();
  try {
    config = json::parse(ctx.options.experiment_config_json);
  } catch (const json::exception&) {
  }
  return {{"model_path", ctx.options.model_path},
          {"num_gpus", ctx.scorer.device().is_cuda() ? 1 : 0},
          {"experiment_config", config},
          {"model_architecture",
           {{"model_class", model->name()},
            {"model_module", "robometer.cpp"},
            {"total_parameters", total},
            {"trainable_parameters", trainable},
            {"frozen_parameters", total - trainable},
            {"trainable_percentage",
             total > 0 ? 100.0 * static_cast<double>(trainable) / static_cast<double>(total) : 0.0},
            {"architecture_summary", summary}}}};
}

// One model replica (the model thread) on the scorer's device.
json gpu_status(const RouteContext& ctx) {
  const auto s = ctx.queue.stats();
  return {{"total_gpus", 1},
          {"available_gpus", s.busy ? 0 : 1},
          {"max_workers", 1},
          {"pool_size", 1},
          {"gpu_stats",
           {{"0",
             {{"total_requests", s.served},
              {"total_processing_time", s.busy_seconds},
              {"last_used", s.last_used_unix},
              {"status", s.busy ? "processing" : "ready"},
              {"device", ctx.scorer.device().str()}}}}}};
}

// Runs a handler; any exception becomes its one-line JSON error.
template <typename F>
httplib::Server::Handler guarded(const RouteContext& ctx, F f) {
  return [&ctx, f](const httplib::Request& req, httplib::Response& res) {
    try {
      f(ctx, req, res);
    } catch (const std::exception& e) {
      const auto [status, message] = error_reply(e);
      reply_error(res, status, message);
    }
  };
}

}  // namespace

void register_original_api(const RouteContext& ctx) {
  ctx.http.Post("/evaluate_batch", guarded(ctx, handle_evaluate_batch));
  ctx.http.Post("/evaluate_batch_npy", guarded(ctx, handle_evaluate_batch_npy));
  ctx.http.Get("/model_info",
               guarded(ctx, [](const RouteContext& c, const httplib::Request&, httplib::Response& res) {
                 reply_json(res, 200, model_info(c));
               }));
  ctx.http.Get("/gpu_status",
               guarded(ctx, [](const RouteContext& c, const httplib::Request&, httplib::Response& res) {
                 reply_json(res, 200, gpu_status(c));
               }));
}

}  // namespace robometer::serve
