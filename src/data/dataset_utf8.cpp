// Trajectories whose text fields are not valid UTF-8 become ingest problems: the manifest is
// JSON, and one such string would otherwise abort writing it for the whole dataset.

#include "robometer/core/utf8.h"
#include "robometer/data/dataset_readers.h"

namespace robometer::data {

void move_invalid_utf8_to_problems(DatasetScan& scan) {
  std::vector<Trajectory> kept;
  kept.reserve(scan.trajectories.size());
  for (auto& t : scan.trajectories) {
    std::string reason;
    for (const auto& [field, text] : {std::pair<const char*, const std::string*>{"id", &t.id},
                                      {"task", &t.task},
                                      {"data_source", &t.data_source},
                                      {"video path", &t.video.path}}) {
      const std::string why = utf8_problem(*text);
      if (!why.empty()) {
        reason = std::string(field) + " " + why;
        break;
      }
    }
    if (reason.empty())
      kept.push_back(std::move(t));
    else
      scan.problems.push_back({t.id, t.video.path, reason});
  }
  scan.trajectories = std::move(kept);
}

}  // namespace robometer::data
