// A trajectory record for sampler tests: no video behind it (the sampler only plans indices).
#pragma once
#include <string>

#include "robometer/data/trajectory.h"

namespace robometer::test {

inline data::Trajectory traj(const std::string& id, const std::string& task, const std::string& source,
                             int64_t frames, data::Quality q = data::Quality::Successful) {
  data::Trajectory t;
  t.id = id;
  t.task = task;
  t.data_source = source;
  t.video.path = "/nonexistent/" + id + ".mp4";
  t.num_frames = frames;
  t.fps = 10;
  t.quality = q;
  return t;
}

}  // namespace robometer::test
