// `robometer eval --checkpoint DIR --data DATASET... [--max-trajectories N] [--out DIR]`
// `robometer eval --untrained --config configs/tiny.yaml --data DATASET...`
// Offline metrics (eval/evaluator.h) per data source and overall → metrics.json + metrics.md.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "robometer/cli/command.h"
#include "robometer/core/error.h"
#include "robometer/data/manifest.h"
#include "robometer/data/run_options.h"
#include "robometer/eval/evaluator.h"
#include "robometer/eval/report.h"
#include "robometer/export/load.h"
#include "robometer/io/atomic_file.h"

namespace robometer::cli {
namespace {
namespace fs = std::filesystem;

struct EvalArgs {
  std::string checkpoint, config, out, device = "auto";
  bool untrained = false;
  std::vector<std::string> data, overrides;
  int max_trajectories = -1, preference_pairs = -1, voc_prefixes = -1, batch_size = 8;
  double success_threshold = -1;
};

int run_eval(const EvalArgs& a) {
  if (a.untrained && !a.checkpoint.empty())
    throw ConfigError("eval: give either --checkpoint DIR or --untrained --config YAML, not both");
  if (!a.untrained && a.checkpoint.empty())
    throw ConfigError("eval: --checkpoint DIR is required (or --untrained --config YAML)");
  if (a.untrained && a.config.empty()) throw ConfigError("eval: --untrained needs --config YAML");
  if (a.data.empty()) throw ConfigError("eval: --data DATASET (a manifest directory) is required");

  const at::Device device = eval::pick_device(a.device);
  eval::LoadedModel m = a.untrained ? eval::load_untrained(a.config, device, a.overrides)
                                    : eval::load_checkpoint(a.checkpoint, device, a.overrides);
  eval::EvalOptions opts = eval::eval_options(m.config);
  if (a.max_trajectories >= 0) opts.max_trajectories = a.max_trajectories;
  if (a.preference_pairs >= 0) opts.preference_pairs = a.preference_pairs;
  if (a.voc_prefixes > 0) opts.voc_prefixes = a.voc_prefixes;
  if (a.success_threshold >= 0) opts.success_threshold = a.success_threshold;
  opts.batch_size = a.batch_size;
  opts.keep_trajectories = !a.out.empty();  // the report's figures; not kept in metrics.json

  std::vector<data::WeightedManifest> manifests;
  for (const auto& d : a.data) manifests.push_back({data::read_manifest(d), 1.0});
  // As the original's evaluation datasets (BaseDataset with is_evaluation: the min-frames filter
  // is skipped, _filter_task_based_criteria still runs): trajectories without partial_success whose
  // task has no successful trajectory are dropped (data.drop_tasks_without_success=false keeps them).
  // The same filter as the trainer's held-out data (data::filter_index).
  data::FilterReport filtered;
  const auto index =
      data::filter_index(std::make_shared<const data::TrajectoryIndex>(manifests),
                         /*min_frames=*/0, m.config.data.drop_tasks_without_success, &filtered);
  if (filtered.dropped() > 0) spdlog::info("eval: {}", filtered.summary());
  if (index->size() == 0) {
    std::string dirs;
    for (const auto& d : a.data) dirs += (dirs.empty() ? "" : ", ") + d;
    throw ConfigError("eval: --data " + dirs + " holds no trajectories" +
                      (filtered.dropped() > 0 ? " after the original's task filter (" + filtered.summary() +
                                                    "; data.drop_tasks_without_success=false keeps them)"
                                              : std::string()));
  }
  spdlog::info("eval: {} trajectories from {} source(s) on {}", index->size(), index->sources().size(),
               device.str());

  nlohmann::json result = eval::evaluate(m.bundle, *index, opts);
  result["model"] = a.untrained ? "untrained (" + a.config + ")" : a.checkpoint;
  const std::string md = eval::render_markdown(result);
  std::printf("%s", md.c_str());
  if (!a.out.empty()) {
    fs::create_directories(a.out);
    const eval::ReportFiles report = eval::write_eval_report(result, md, a.out);
    for (const auto& note : report.notes) spdlog::info("report: {}", note);
    result.erase("trajectories");
    io::write_file_atomic((fs::path(a.out) / "metrics.json").string(), result.dump(2) + "\n");
    io::write_file_atomic((fs::path(a.out) / "metrics.md").string(), md);
    std::printf("wrote %s/metrics.json, metrics.md, report.html and %zu figure(s)\n", a.out.c_str(),
                report.figures.size());
  }
  return 0;
}

Registrar reg("eval", "Evaluate a reward model: VOC, Kendall tau, preference/success accuracy",
              [](CLI::App& sub, int& exit_code) {
                static EvalArgs a;
                sub.add_option("--checkpoint", a.checkpoint, "checkpoint or export directory");
                sub.add_flag("--untrained", a.untrained, "random-init model from --config (baseline)");
                sub.add_option("--config", a.config, "run config YAML for --untrained");
                sub.add_option("--data", a.data, "manifest directories to evaluate on")->expected(1, -1);
                sub.add_option("--max-trajectories", a.max_trajectories, "per data source (0 = all)");
                sub.add_option("--pairs", a.preference_pairs, "preference pairs (0 = skip)");
                sub.add_option("--voc-prefixes", a.voc_prefixes, "prefix end points per trajectory");
                sub.add_option("--success-threshold", a.success_threshold, "P(success) threshold");
                sub.add_option("--batch-size", a.batch_size, "queries per forward pass");
                sub.add_option("--device", a.device, "auto | cpu | cuda");
                sub.add_option("--out", a.out,
                               "directory for metrics.json, metrics.md, report.html and figures");
                sub.add_option("--set", a.overrides, "config override key=value (repeatable)");
                sub.callback([&exit_code] { exit_code = run_eval(a); });
              });

}  // namespace
}  // namespace robometer::cli
