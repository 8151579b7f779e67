// `robometer ingest --format lerobot|rbm|folder SRC --out DIR`: reads an external dataset,
// probes every video (each distinct file once, in parallel) and writes DIR/manifest.json +
// DIR/trajectories.jsonl. Episodes that cannot be used go to DIR/ingest_report.jsonl.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "robometer/cli/command.h"
#include "robometer/core/error.h"
#include "robometer/core/utf8.h"
#include "robometer/data/binary_index.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/data/manifest.h"
#include "robometer/train/progress_bar.h"

namespace robometer::cli {
namespace {

struct IngestArgs {
  std::string format, src, out, quality = "successful", episodes, name, data_source;
  std::vector<std::string> cameras;
  int threads = 2;
  bool no_probe = false;
};

std::vector<std::string> printable_utf8_all(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(printable_utf8(s));
  return out;
}

int run_ingest(const IngestArgs& a) {
  namespace fs = std::filesystem;
  data::IngestOptions o;
  o.cameras = a.cameras;
  try {
    o.quality = data::parse_quality(a.quality);
  } catch (const Error& e) {
    throw ConfigError(std::string("--quality: ") + e.what());
  }
  if (!a.episodes.empty()) o.episodes = data::parse_episode_list(a.episodes);
  o.data_source = a.data_source;
  if (a.threads < 1) throw ConfigError("--threads must be at least 1");

  const auto t0 = std::chrono::steady_clock::now();
  data::DatasetScan scan = data::scan_dataset(a.format, a.src, o);
  const size_t listed = scan.trajectories.size() + scan.problems.size();
  const double scan_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  data::ProbeSummary probe;
  if (!a.no_probe) {
    data::ProbeOptions po;
    po.threads = a.threads;
    // A bar with rate and ETA on a terminal; a line every 30 s in logs.
    std::unique_ptr<train::ProgressBar> bar;
    train::ProgressBarOptions bo;
    bo.unit = "video";
    bo.every_steps = 0;
    po.progress = [&bar, &bo](size_t done, size_t total) {
      if (!bar) bar = std::make_unique<train::ProgressBar>(static_cast<int64_t>(total), 0, bo);
      if (done == total)
        bar->finish("probed");
      else
        bar->update(static_cast<int64_t>(done));
    };
    probe = data::probe_trajectories(scan, po);
    bar.reset();
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  fs::create_directories(a.out);
  const fs::path report = fs::path(a.out) / "ingest_report.jsonl";
  {
    std::ofstream r(report, std::ios::trunc);
    for (const auto& p : scan.problems) r << p.to_json().dump() << '\n';
    for (const auto& n : scan.notes) r << nlohmann::json{{"note", printable_utf8(n)}}.dump() << '\n';
    if (!r) throw Error(report.string() + ": cannot write");
  }
  if (scan.trajectories.empty())
    throw Error("no usable trajectories in " + a.src + " (" + std::to_string(scan.problems.size()) +
                " problems, see " + report.string() + ")");
  // Paths and arguments need not be UTF-8; the manifest is JSON.
  nlohmann::json source{{"tool", "robometer ingest"},
                        {"format", scan.format},
                        {"path", printable_utf8(scan.root)},
                        {"cameras", a.cameras},
                        {"quality", a.quality},
                        {"episodes", a.episodes},
                        {"probed", !a.no_probe},
                        {"problems", scan.problems.size()},
                        {"notes", printable_utf8_all(scan.notes)}};
  const std::string name = printable_utf8(a.name.empty() ? fs::path(scan.root).filename().string() : a.name);
  data::write_manifest(a.out, name, scan.trajectories, source);
  data::build_index(a.out);  // trajectories.rbmidx: what the trainer maps

  int64_t frames = 0;
  for (const auto& t : scan.trajectories) frames += t.num_frames;
  std::printf(
      "ingested %zu of %zu trajectories (%lld frames) from %s [%s] into %s in %.2f s "
      "(scan %.2f s, %zu video files probed)\n",
      scan.trajectories.size(), listed, static_cast<long long>(frames), scan.root.c_str(),
      scan.format.c_str(), a.out.c_str(), total_s, scan_s, probe.files);
  if (!scan.problems.empty() || !scan.notes.empty())
    std::printf("%zu problems and %zu notes written to %s\n", scan.problems.size(), scan.notes.size(),
                report.string().c_str());
  for (size_t i = 0; i < scan.notes.size() && i < 5; ++i) std::printf("  note: %s\n", scan.notes[i].c_str());
  return 0;
}

Registrar reg("ingest", "Convert a LeRobot / RBM / folder dataset into a robometer manifest",
              [](CLI::App& sub, int& exit_code) {
                static IngestArgs a;
                sub.add_option("--format", a.format, "Source layout: lerobot | rbm | folder")
                    ->required()
                    ->check(CLI::IsMember({"lerobot", "rbm", "folder"}));
                sub.add_option("src", a.src, "Dataset directory (or one RBM shard)")->required();
                sub.add_option("--out", a.out, "Output manifest directory")->required();
                sub.add_option("--camera", a.cameras,
                               "LeRobot video key(s) to use (default: every camera, one trajectory each)");
                sub.add_option("--quality", a.quality, "Quality label for demonstration datasets")
                    ->capture_default_str();
                sub.add_option("--episodes", a.episodes, "LeRobot episodes to keep, e.g. 0-99,120");
                sub.add_option("--data-source", a.data_source,
                               "data_source name (default: the directory name)");
                sub.add_option("--name", a.name, "Manifest name (default: the directory name)");
                sub.add_option("--threads", a.threads, "Parallel video probes")->capture_default_str();
                sub.add_flag("--no-probe", a.no_probe,
                             "Trust the metadata's frame counts instead of opening the videos");
                sub.callback([&exit_code] { exit_code = run_ingest(a); });
              });

}  // namespace
}  // namespace robometer::cli
