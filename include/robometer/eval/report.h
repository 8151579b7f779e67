// Figures and one report.html next to metrics.json (`robometer eval --out DIR`), drawn from
// evaluate()'s JSON with keep_trajectories on:
//   voc_<source>.png       predicted vs true progress at every prefix end, per data source
//   reward_{best,median,worst}.png   the successful trajectories with the highest, median and
//                          lowest VOC Pearson r: predicted progress, P(success), ground truth
//   confusion.png          the video × instruction reward matrix (sources with >= 2 tasks)
//   policy_ranking.png     whole-trajectory final progress by quality label, one colour per task
//   report.html            the metrics table, the figures, the protocol
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace robometer::eval {

struct ReportFiles {
  std::vector<std::string> figures;  // file names (in the report's folder) of the PNGs written
  std::string html;                  // path of report.html
  std::vector<std::string> notes;    // figures left out and why (e.g. no successful trajectory)
};

// `metrics_markdown` is render_markdown(result). Throws Error when a file cannot be written.
ReportFiles write_eval_report(const nlohmann::json& result, const std::string& metrics_markdown,
                              const std::string& dir);

}  // namespace robometer::eval
