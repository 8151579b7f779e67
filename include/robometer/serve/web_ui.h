// The browser UI, served by the same process and port as the API (assets compiled in from
// src/serve/web/, no CDN, no JS build step):
//   GET /        reward page: upload a video or pick a --data trajectory, type or pick the task,
//                score through POST /score (dense or linspace), frames + curves in sync,
//                ground truth when the trajectory has it, JSON / CSV download
//   GET /view    dataset page: sources, tasks, quality labels, frame counts, one trajectory's
//                stored frames and labels, and the training sampler's pair for a seed
//   GET /ui/...  the page assets;  /ui/api/...  the page's JSON (see web_ui.cpp)
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "robometer/config/run_config.h"
#include "robometer/data/video_reader.h"

namespace httplib {
class Server;
}

namespace robometer::serve {

class DatasetView;

struct WebUiOptions {
  bool scoring = true;                         // POST /score exists (serve); false for `robometer view`
  std::string model;                           // shown on the page
  std::shared_ptr<const DatasetView> dataset;  // --data DIR; null = upload only
  data::ResizeSpec resize = data::ResizeSpec::none();  // uploads decode as POST /score decodes them
  int64_t max_frames = 512;                            // frames returned per /ui/api/frames request
};

void register_web_ui(httplib::Server& http, WebUiOptions opts);

// For `robometer serve`: the UI of a model loaded from `checkpoint` with run config `cfg`;
// `data_dir` ("" = none) is opened now (errors name it) with cfg's frame and sampler settings.
std::function<void(httplib::Server&)> web_ui_routes(const std::string& checkpoint,
                                                    const config::RunConfig& cfg, const std::string& data_dir,
                                                    const data::ResizeSpec& resize, int64_t max_frames);

}  // namespace robometer::serve
