// One trajectory (episode) as the samplers see it: where its video is and what it shows.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace robometer::data {

enum class Quality { Successful, Suboptimal, Failure };

// "successful" | "suboptimal" | "failure" (also accepts "success", "failed"). Throws Error.
Quality parse_quality(const std::string& s);
const char* quality_name(Quality q);

// A video file, optionally restricted to the time window [from_s, to_s) (LeRobot v3.0 stores
// many episodes in one mp4). to_s < 0 means "to the end".
struct VideoRef {
  std::string path;
  double from_s = 0.0;
  double to_s = -1.0;
};

struct Trajectory {
  std::string id;
  std::string task;
  std::string data_source;
  VideoRef video;
  int64_t num_frames = 0;  // frames inside the window, exact (from the packet index)
  double fps = 0.0;
  Quality quality = Quality::Successful;
  std::optional<float> partial_success;  // in [0,1] when the source grades episodes
  bool is_robot = true;
};

}  // namespace robometer::data
