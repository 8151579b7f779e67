// `robometer ingest --format lerobot|rbm|folder SRC --out DIR`: streams an external dataset in
// chunks (bounded memory), probes every video (each distinct file once, in parallel) and writes
// DIR/manifest.json + DIR/trajectories.jsonl (renamed into place at the end) and the binary index.
// Episodes that cannot be used go to DIR/ingest_report.jsonl as they are found.
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
  bool no_probe = false, no_index = false;
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
  // Streamed: the dataset is never held in memory (a LeRobot v3.0 set can list a million episodes).
  data::IngestWriter::Options wo;
  wo.probe = !a.no_probe;
  wo.threads = a.threads;
  // A bar with rate and ETA on a terminal; a line every 30 s in logs. The total is the number of
  // metadata rows, when the reader knows it up front.
  std::unique_ptr<train::ProgressBar> bar;
  train::ProgressBarOptions bo;
  bo.unit = a.format == "lerobot" ? "episode" : "row";
  bo.every_steps = 0;
  wo.progress = [&bar, &bo](int64_t done, int64_t total) {
    if (total <= 0) return;
    if (!bar) bar = std::make_unique<train::ProgressBar>(total, 0, bo);
    bar->update(done);
  };
  data::IngestWriter w(a.out, wo);
  data::read_dataset(a.format, a.src, o, w);
  w.finish();
  if (bar) bar->finish(a.no_probe ? "read" : "read and probed");
  bar.reset();
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const size_t listed = w.kept() + w.problems();
  const std::string& report = w.report_path();
  if (w.kept() == 0)
    throw Error("no usable trajectories in " + a.src + " (" + std::to_string(w.problems()) +
                " problems, see " + report + ")");
  // Paths and arguments need not be UTF-8; the manifest is JSON.
  nlohmann::json source{{"tool", "robometer ingest"},
                        {"format", w.format()},
                        {"path", printable_utf8(w.root())},
                        {"cameras", a.cameras},
                        {"quality", a.quality},
                        {"episodes", a.episodes},
                        {"probed", !a.no_probe},
                        {"problems", w.problems()},
                        {"notes", printable_utf8_all(w.first_notes())}};
  if (w.notes() > w.first_notes().size()) source["notes_omitted"] = w.notes() - w.first_notes().size();
  const std::string name = printable_utf8(a.name.empty() ? fs::path(w.root()).filename().string() : a.name);
  w.commit(name, source);
  // trajectories.rbmidx: what the trainer maps (built on first use when skipped here).
  if (!a.no_index) data::build_index(a.out);

  std::printf(
      "ingested %zu of %zu trajectories (%lld frames) from %s [%s] into %s in %.2f s "
      "(%zu video files probed)\n",
      w.kept(), listed, static_cast<long long>(w.frames()), w.root().c_str(), w.format().c_str(),
      a.out.c_str(), total_s, w.files_probed());
  if (w.problems() > 0 || w.notes() > 0)
    std::printf("%zu problems and %zu notes written to %s\n", w.problems(), w.notes(), report.c_str());
  for (size_t i = 0; i < w.first_notes().size() && i < 5; ++i)
    std::printf("  note: %s\n", w.first_notes()[i].c_str());
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
                sub.add_flag("--no-index", a.no_index,
                             "Skip building trajectories.rbmidx (`robometer data index` or the first "
                             "training run builds it)");
                sub.callback([&exit_code] { exit_code = run_ingest(a); });
              });

}  // namespace
}  // namespace robometer::cli
