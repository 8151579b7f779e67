// `robometer score --checkpoint DIR --video FILE [--video FILE2 ...] --task TEXT
//   [--mode linspace|dense|all|stream] [--frames 8] [--fps F] [--format json|csv] [--out FILE] [--plot
//   out.png]`
// Per-frame progress and P(success) of each video (eval/scorer.h).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "robometer/cli/command.h"
#include "robometer/core/error.h"
#include "robometer/data/options_from_config.h"
#include "robometer/eval/scorer.h"
#include "robometer/export/load.h"
#include "robometer/io/atomic_file.h"
#include "robometer/plot/reward_plot.h"

namespace robometer::cli {
namespace {
namespace fs = std::filesystem;

struct ScoreArgs {
  std::string checkpoint, task, mode = "linspace", format = "json", out, plot, device = "auto";
  std::string resize;  // empty: the checkpoint's eval.resize (native by default)
  std::vector<std::string> videos;
  int frames = 8, batch_size = 8;
  double fps = 0;
};

data::ResizeSpec parse_resize(const std::string& s, const config::RunConfig& cfg) {
  return s.empty() ? eval::resize_spec(cfg) : data::parse_resize_spec(s);
}

// "x.png" for one video; "x_<stem>.png" per video otherwise.
std::string plot_path(const std::string& base, const std::string& video, size_t n_videos) {
  if (n_videos == 1) return base;
  fs::path p(base);
  return (p.parent_path() /
          (p.stem().string() + "_" + fs::path(video).stem().string() + p.extension().string()))
      .string();
}

int run_score(const ScoreArgs& a) {
  if (a.checkpoint.empty()) throw ConfigError("score: --checkpoint DIR is required");
  if (a.videos.empty()) throw ConfigError("score: at least one --video FILE is required");
  if (a.task.empty()) throw ConfigError("score: --task TEXT is required");
  if (a.format != "json" && a.format != "csv") throw ConfigError("--format: expected json or csv");
  const eval::ScoreMode mode = eval::parse_score_mode(a.mode);
  const at::Device device = eval::pick_device(a.device);
  eval::LoadedModel m = eval::load_checkpoint(a.checkpoint, device);
  const data::ResizeSpec resize = parse_resize(a.resize, m.config);
  eval::Scorer scorer(m.bundle, {a.frames, a.batch_size});

  nlohmann::json results = nlohmann::json::array();
  std::ostringstream csv;
  csv << "video,frame,progress,success\n";
  for (const auto& video : a.videos) {
    const at::Tensor frames = eval::read_video(video, resize, a.fps);
    const auto r = scorer.score(frames, a.task, mode);
    results.push_back({{"video", video},
                       {"task", a.task},
                       {"mode", eval::score_mode_name(mode)},
                       {"num_frames", frames.size(0)},
                       {"frame_indices", r.frame_indices},
                       {"progress", r.progress},
                       {"success", r.success}});
    for (size_t i = 0; i < r.progress.size(); ++i)
      csv << '"' << video << "\"," << r.frame_indices[i] << ',' << r.progress[i] << ',' << r.success[i]
          << '\n';
    if (!a.plot.empty()) {
      plot::RewardPlot p;
      p.title =
          a.task + "  (" + fs::path(video).filename().string() + ", " + eval::score_mode_name(mode) + ")";
      p.frame_indices = r.frame_indices;
      p.progress = r.progress;
      p.success = r.success;
      p.frames = frames;
      const std::string path = plot_path(a.plot, video, a.videos.size());
      plot::write_reward_plot(p, path);
      spdlog::info("plot: {}", path);
    }
  }
  const std::string text =
      a.format == "csv" ? csv.str() : (a.videos.size() == 1 ? results[0] : results).dump(2) + "\n";
  if (a.out.empty())
    std::printf("%s", text.c_str());
  else
    io::write_file_atomic(a.out, text);
  return 0;
}

Registrar reg("score", "Per-frame progress and success probability of videos for a task",
              [](CLI::App& sub, int& exit_code) {
                static ScoreArgs a;
                sub.add_option("--checkpoint", a.checkpoint, "checkpoint or export directory")->required();
                sub.add_option("--video", a.videos, "video file (repeatable)")->required();
                sub.add_option("--task", a.task, "task instruction")->required();
                sub.add_option("--mode", a.mode,
                               "linspace (K frames, one query), dense (one query per frame), all (every "
                               "frame in one query) or stream (all's numbers, one KV-cached step per frame)");
                sub.add_option("--frames", a.frames, "K frames per query");
                sub.add_option("--fps", a.fps, "subsample the video to this frame rate first");
                sub.add_option("--resize", a.resize,
                               "none | WxH | short-edge px (default: eval.resize, native)");
                sub.add_option("--batch-size", a.batch_size, "queries per forward (dense)");
                sub.add_option("--format", a.format, "json | csv");
                sub.add_option("--out", a.out, "write here instead of stdout");
                sub.add_option("--plot", a.plot, "PNG of the reward curve and a frame strip");
                sub.add_option("--device", a.device, "auto | cpu | cuda");
                sub.callback([&exit_code] { exit_code = run_score(a); });
              });

}  // namespace
}  // namespace robometer::cli
