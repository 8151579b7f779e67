// Routes of the browser UI (serve/web_ui.h). The pages do their scoring through the public
// POST /score; the UI's own API only reads: the dataset (DatasetView) and, for an uploaded
// video, its frames at the indices /score returned (decoded the same way, by data::VideoReader).
//   GET  /ui/api/info                 {"scoring", "model", "dataset", "tasks", "trajectories"}
//   GET  /ui/api/summary              DatasetView::summary()
//   GET  /ui/api/trajectory?id=&raw=  DatasetView::trajectory()
//   GET  /ui/api/pair?seed=N          DatasetView::training_pair()
//   POST /ui/api/frames?indices=0,4   body: the video's bytes -> {"num_frames", "thumbs": [...]}
#include "robometer/serve/web_ui.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "robometer/core/error.h"
#include "robometer/core/remove_tree.h"
#include "robometer/eval/evaluator.h"
#include "robometer/serve/dataset_view.h"
#include "web_assets.h"

namespace robometer::serve {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const char* content_type(const std::string& name) {
  auto ends = [&](const char* ext) {
    const size_t n = std::strlen(ext);
    return name.size() >= n && name.compare(name.size() - n, n, ext) == 0;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

const web_assets::Asset* find_asset(const std::string& name) {
  for (size_t i = 0; i < web_assets::kAssetCount; ++i)
    if (name == web_assets::kAssets[i].name) return &web_assets::kAssets[i];
  return nullptr;
}

void reply_json(httplib::Response& res, const json& body, int status = 200) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// Runs fn, turning our errors into {"error": ...} replies (404 for unknown ids, 400 otherwise).
template <class F>
void guarded(httplib::Response& res, F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    reply_json(res, {{"error", msg}}, msg.find("no trajectory") != std::string::npos ? 404 : 400);
  }
}

// "0,4,9" -> {0, 4, 9}; throws Error naming the bad item.
std::vector<int64_t> parse_indices(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0) throw Error("indices: '" + item + "' is not a frame index");
    out.push_back(v);
  }
  return out;
}

// The uploaded bytes as a file VideoReader can open (FFmpeg probes the container itself).
class TempVideo {
 public:
  explicit TempVideo(const std::string& bytes) {
    char tmpl[] = "/tmp/robometer_ui_XXXXXX";
    if (!::mkdtemp(tmpl)) throw Error("frames: cannot create a temporary directory");
    dir_ = tmpl;
    path_ = dir_ + "/upload";
    std::ofstream f(path_, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw Error("frames: cannot write the upload to " + path_);
  }
  TempVideo(const TempVideo&) = delete;  // the directory is removed once
  TempVideo& operator=(const TempVideo&) = delete;
  ~TempVideo() {
    std::error_code ec;
    remove_tree(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

}  // namespace

void register_web_ui(httplib::Server& http, WebUiOptions opts) {
  auto o = std::make_shared<const WebUiOptions>(std::move(opts));
  auto page = [](const char* name) {
    return [name](const httplib::Request&, httplib::Response& res) {
      const auto* a = find_asset(name);
      res.set_content(a->body, content_type(name));
    };
  };
  http.Get("/", [o, page](const httplib::Request& req, httplib::Response& res) {
    if (!o->scoring) return res.set_redirect("/view");
    page("index.html")(req, res);
  });
  http.Get("/view", page("view.html"));
  http.Get(R"(/ui/([A-Za-z0-9_.-]+))", [](const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    const auto* a = find_asset(name);
    if (!a) return reply_json(res, {{"error", "no UI asset '" + name + "'"}}, 404);
    res.set_content(a->body, content_type(name));
  });

  http.Get("/ui/api/info", [o](const httplib::Request&, httplib::Response& res) {
    json info = {{"scoring", o->scoring},
                 {"model", o->model},
                 {"dataset", o->dataset != nullptr},
                 {"tasks", json::array()},
                 {"trajectories", json::array()}};
    if (o->dataset) {
      std::set<std::string> tasks;
      const auto& index = o->dataset->index();
      for (int64_t i = 0; i < index.size(); ++i) {
        const data::Trajectory t = index.at(i);
        tasks.insert(t.task);
        info["trajectories"].push_back({{"id", t.id},
                                        {"task", t.task},
                                        {"quality", data::quality_name(t.quality)},
                                        {"num_frames", t.num_frames}});
      }
      info["tasks"] = tasks;
    }
    reply_json(res, info);
  });
  auto need_dataset = [o](httplib::Response& res) {
    if (o->dataset) return true;
    reply_json(res, {{"error", "no dataset: start with --data DIR"}}, 404);
    return false;
  };
  http.Get("/ui/api/summary", [o, need_dataset](const httplib::Request&, httplib::Response& res) {
    if (need_dataset(res)) guarded(res, [&] { reply_json(res, o->dataset->summary()); });
  });
  http.Get("/ui/api/trajectory", [o, need_dataset](const httplib::Request& req, httplib::Response& res) {
    if (!need_dataset(res)) return;
    guarded(res, [&] {
      if (!req.has_param("id")) throw Error("trajectory: the id parameter is missing");
      reply_json(res, o->dataset->trajectory(req.get_param_value("id"), req.get_param_value("raw") == "1"));
    });
  });
  http.Get("/ui/api/pair", [o, need_dataset](const httplib::Request& req, httplib::Response& res) {
    if (!need_dataset(res)) return;
    guarded(res, [&] {
      const std::string s = req.has_param("seed") ? req.get_param_value("seed") : "0";
      const auto seed = parse_indices(s);
      if (seed.size() != 1) throw Error("pair: seed '" + s + "' is not a non-negative integer");
      reply_json(res, o->dataset->training_pair(static_cast<uint64_t>(seed[0])));
    });
  });
  http.Post("/ui/api/frames", [o](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      if (req.body.empty()) throw Error("frames: the request body must be the video's bytes");
      const auto wanted = parse_indices(req.get_param_value("indices"));
      if (static_cast<int64_t>(wanted.size()) > o->max_frames)
        throw Error("frames: " + std::to_string(wanted.size()) + " indices, at most " +
                    std::to_string(o->max_frames));
      const TempVideo tmp(req.body);
      data::VideoReaderOptions ro;
      ro.resize = o->resize;
      data::VideoReader reader(tmp.path(), ro);
      for (int64_t i : wanted)
        if (i >= reader.num_frames())
          throw Error("frames: index " + std::to_string(i) + " is past the video's " +
                      std::to_string(reader.num_frames()) + " frames");
      json thumbs = json::array();
      if (!wanted.empty()) {
        const at::Tensor frames = reader.frames(wanted);
        for (int64_t k = 0; k < frames.size(0); ++k) thumbs.push_back(png_data_url(frames[k]));
      }
      reply_json(res, {{"num_frames", reader.num_frames()}, {"thumbs", thumbs}});
    });
  });
}

std::function<void(httplib::Server&)> web_ui_routes(const std::string& checkpoint,
                                                    const config::RunConfig& cfg, const std::string& data_dir,
                                                    const data::ResizeSpec& resize, int64_t max_frames) {
  WebUiOptions o;
  o.model = checkpoint;
  o.resize = resize;
  o.max_frames = max_frames;
  if (!data_dir.empty()) {
    DatasetViewOptions dv;
    dv.resize = resize;
    dv.sampling = eval::eval_options(cfg).sampling;
    dv.sampling.is_eval = false;
    o.dataset = std::make_shared<const DatasetView>(data_dir, dv);
  }
  return [o](httplib::Server& http) { register_web_ui(http, o); };
}

}  // namespace robometer::serve
