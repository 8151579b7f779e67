// `ingest` in bounded memory: the reader's output is handled a chunk at a time, each chunk the
// way the in-memory path handles the whole dataset (scan_dataset, then probe_trajectories).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "robometer/core/error.h"
#include "robometer/core/utf8.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/data/manifest.h"

namespace robometer::data {
namespace fs = std::filesystem;

struct IngestWriter::Impl {
  ManifestWriter manifest;
  std::ofstream report;
  // Notes go after every problem in the report (as in the in-memory path): kept aside until then.
  std::string notes_path;
  std::ofstream notes;
  ProbeCache cache;
  Impl(const std::string& dir, const std::string& report_path, const std::string& notes_tmp)
      : manifest(dir),
        report(report_path, std::ios::trunc),
        notes_path(notes_tmp),
        notes(notes_tmp, std::ios::trunc) {}
};

IngestWriter::IngestWriter(const std::string& out_dir, Options opts) : opts_(std::move(opts)) {
  const fs::path dir = fs::absolute(out_dir).lexically_normal();
  fs::create_directories(dir);
  report_path_ = (dir / "ingest_report.jsonl").string();
  const std::string notes_tmp = (dir / (".ingest_notes.tmp-" + std::to_string(::getpid()))).string();
  impl_ = std::make_unique<Impl>(dir.string(), report_path_, notes_tmp);
  if (!impl_->report) throw Error(report_path_ + ": cannot write");
  if (!impl_->notes) throw Error(notes_tmp + ": cannot write");
  if (opts_.chunk == 0) opts_.chunk = 1;
}

IngestWriter::~IngestWriter() {
  if (impl_) {
    impl_->notes.close();
    std::error_code ec;
    fs::remove(impl_->notes_path, ec);
  }
}

void IngestWriter::begin(const std::string& format, const std::string& root, int64_t rows) {
  format_ = format;
  root_ = root;
  rows_total_ = rows;
}

void IngestWriter::trajectory(Trajectory&& t) {
  chunk_.trajectories.push_back(std::move(t));
  if (chunk_.trajectories.size() + chunk_.problems.size() >= opts_.chunk) flush();
}

void IngestWriter::problem(IngestProblem&& p) {
  chunk_.problems.push_back(std::move(p));
  if (chunk_.trajectories.size() + chunk_.problems.size() >= opts_.chunk) flush();
}

void IngestWriter::note(std::string n) { chunk_.notes.push_back(std::move(n)); }

void IngestWriter::row_done() {
  ++rows_;
  if (opts_.progress) opts_.progress(rows_, rows_total_);
}

void IngestWriter::flush() {
  move_invalid_utf8_to_problems(chunk_);
  if (opts_.probe && !chunk_.trajectories.empty()) {
    ProbeOptions po;
    po.threads = opts_.threads;
    po.cache = &impl_->cache;
    files_probed_ += probe_trajectories(chunk_, po).files;
  } else if (!opts_.probe) {
    // Unprobed, the metadata's counts are all there is (RBM shards have none): such a record
    // would make a manifest that no reader accepts.
    auto unusable = [](const Trajectory& t) { return t.num_frames <= 0 || !(t.fps > 0); };
    for (const auto& t : chunk_.trajectories)
      if (unusable(t))
        chunk_.problems.push_back({t.id, t.video.path,
                                   "the metadata gives no frame count or fps (ingest without --no-probe "
                                   "to count the video's frames)"});
    chunk_.trajectories.erase(
        std::remove_if(chunk_.trajectories.begin(), chunk_.trajectories.end(), unusable),
        chunk_.trajectories.end());
  }
  for (const auto& t : chunk_.trajectories) {
    impl_->manifest.add(t);
    frames_ += t.num_frames;
  }
  kept_ += chunk_.trajectories.size();
  for (const auto& p : chunk_.problems) impl_->report << p.to_json().dump() << '\n';
  problems_ += chunk_.problems.size();
  for (auto& n : chunk_.notes) {
    impl_->notes << nlohmann::json{{"note", printable_utf8(n)}}.dump() << '\n';
    if (first_notes_.size() < kNotesKept) first_notes_.push_back(std::move(n));
  }
  notes_ += chunk_.notes.size();
  impl_->report.flush();  // a reader of the report sees the problems as they come
  if (!impl_->report) throw Error(report_path_ + ": cannot write");
  if (!impl_->notes) throw Error(impl_->notes_path + ": cannot write");
  chunk_.trajectories.clear();
  chunk_.problems.clear();
  chunk_.notes.clear();
}

void IngestWriter::finish() {
  flush();
  impl_->notes.close();
  if (notes_ > 0) {  // (streaming an empty file would set failbit)
    std::ifstream notes(impl_->notes_path);
    impl_->report << notes.rdbuf();
  }
  impl_->report.close();
  if (!impl_->report) throw Error(report_path_ + ": cannot write");
  std::error_code ec;
  fs::remove(impl_->notes_path, ec);
}

void IngestWriter::commit(const std::string& name, const nlohmann::json& source) {
  impl_->manifest.commit(name, source);
}

}  // namespace robometer::data
