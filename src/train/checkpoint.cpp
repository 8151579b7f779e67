#include "robometer/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "robometer/core/error.h"
#include "robometer/core/remove_tree.h"
#include "robometer/io/atomic_dir.h"
#include "robometer/io/atomic_file.h"
#include "robometer/io/xxhash64.h"

namespace robometer::train {

namespace {

constexpr const char* kTempPrefix = ".tmp-";
constexpr const char* kOldPrefix = ".old-";
constexpr const char* kStagingPrefix = ".staging-";  // ZeRO-1 ranks' optimizer shards (sharded_checkpoint)
constexpr const char* kLatest = "latest";

void fsync_path(const fs::path& p, bool directory) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) throw Error(p.string() + ": cannot open to sync");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL && err != EROFS) throw Error(p.string() + ": fsync failed");
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string() + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Step of a leftover's name (".tmp-step_00000020-4242", ".staging-step_00000020"), or nullopt.
std::optional<int64_t> leftover_step(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0) return std::nullopt;
  const std::string rest = name.substr(prefix.size());
  return parse_checkpoint_dir_name(rest.substr(0, rest.find('-')));
}

// Removes what killed saves left behind (temp, moved-aside and staging directories) of steps
// before `step`, once step's checkpoint is complete: they can never be completed any more.
void remove_leftovers_before(const fs::path& root, int64_t step) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const auto name = entry.path().filename().string();
    for (const char* prefix : {kTempPrefix, kOldPrefix, kStagingPrefix}) {
      const auto s = leftover_step(name, prefix);
      if (!s || *s >= step) continue;
      std::error_code rm;
      remove_tree(entry.path().string(), rm);
      if (rm)
        spdlog::warn("checkpoint: cannot remove leftover {}: {}", entry.path().string(), rm.message());
      else
        spdlog::info("checkpoint: removed leftover {} of an interrupted save", entry.path().string());
    }
  }
}

// Size and content hash recorded for one file in COMPLETE: {"bytes": N, "xxh64": "hex"}.
// Checkpoints written before hashes were recorded hold the size alone (an integer).
struct FileRecord {
  int64_t bytes = -1;
  std::string xxh64;  // empty: not recorded
};

std::optional<FileRecord> file_record(const nlohmann::json& v) {
  FileRecord r;
  if (v.is_number_integer()) {
    r.bytes = v.get<int64_t>();
    return r;
  }
  if (!v.is_object() || !v.contains("bytes") || !v["bytes"].is_number_integer()) return std::nullopt;
  r.bytes = v["bytes"].get<int64_t>();
  if (v.contains("xxh64")) {
    if (!v["xxh64"].is_string()) return std::nullopt;
    r.xxh64 = v["xxh64"].get<std::string>();
  }
  return r;
}

void check_file_name(const std::string& file) {
  if (file.empty() || file.find('/') != std::string::npos || file == "." || file == ".." ||
      file == checkpoint_files::kComplete || file[0] == '.')
    throw Error("checkpoint: invalid file name '" + file + "'");
}

}  // namespace

std::string checkpoint_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step_%08lld", static_cast<long long>(step));
  return buf;
}

fs::path checkpoints_root(const fs::path& run_dir) { return run_dir / "checkpoints"; }

std::optional<int64_t> parse_checkpoint_dir_name(const std::string& name) {
  if (name.size() < 5 + 8 || name.compare(0, 5, "step_") != 0) return std::nullopt;
  const std::string digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  if (digits.size() > 18) return std::nullopt;
  return std::stoll(digits);
}

// ------------------------------------------------------------------------------- writer

CheckpointWriter::CheckpointWriter(const fs::path& run_dir, int64_t step)
    : run_dir_(run_dir), root_(checkpoints_root(run_dir)), step_(step) {
  if (step < 0) throw Error("checkpoint: negative step " + std::to_string(step));
  temp_ = root_ / (std::string(kTempPrefix) + checkpoint_dir_name(step) + "-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw Error(root_.string() + ": cannot create: " + ec.message());
  remove_tree(temp_.string(), ec);  // our own leftover from an earlier attempt in this process
  if (!fs::create_directory(temp_, ec) || ec)
    throw Error(temp_.string() + ": cannot create: " + ec.message());
}

CheckpointWriter::~CheckpointWriter() {
  if (committed_) return;
  std::error_code ec;
  remove_tree(temp_.string(), ec);
}

void CheckpointWriter::write_tensors(const std::string& file, const io::NamedTensors& tensors,
                                     const io::Metadata& metadata) {
  check_file_name(file);
  io::save_safetensors((temp_ / file).string(), tensors, metadata);
  if (std::find(files_.begin(), files_.end(), file) == files_.end()) files_.push_back(file);
}

void CheckpointWriter::write_json(const std::string& file, const nlohmann::json& j) {
  write_text(file, j.dump(2) + "\n");
}

void CheckpointWriter::write_text(const std::string& file, const std::string& text) {
  check_file_name(file);
  io::write_file_atomic((temp_ / file).string(), text);
  if (std::find(files_.begin(), files_.end(), file) == files_.end()) files_.push_back(file);
}

fs::path CheckpointWriter::commit(const Retention& retention) {
  if (committed_) throw Error("checkpoint: commit() called twice");
  // 1. COMPLETE, last inside the temp dir, listing every file with its size and content hash.
  nlohmann::json complete;
  complete["step"] = step_;
  complete["time"] =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  complete["files"] = nlohmann::json::object();
  for (const auto& f : files_) {
    const auto p = temp_ / f;
    fsync_path(p, false);
    complete["files"][f] = {{"bytes", static_cast<int64_t>(fs::file_size(p))},
                            {"xxh64", io::xxh64_hex(io::xxh64_file(p.string()))}};
  }
  io::write_file_atomic((temp_ / checkpoint_files::kComplete).string(), complete.dump(2) + "\n");
  fsync_path(temp_, true);

  // 2. Rename into place. An existing directory of the same step (a rewound run, or a crash
  // between this rename and `latest`) is swapped out atomically, so that at no instant is
  // there no complete step_N; where the filesystem cannot exchange, it is moved aside and
  // moved back if the rename fails.
  const fs::path final_dir = root_ / checkpoint_dir_name(step_);
  const fs::path old = io::swap_directory_into_place(
      temp_, final_dir,
      root_ / (std::string(kOldPrefix) + checkpoint_dir_name(step_) + "-" + std::to_string(::getpid())));
  committed_ = true;
  std::error_code ec;
  fsync_path(root_, true);
  if (!old.empty()) remove_tree(old.string(), ec);

  // 3. `latest`, last.
  io::write_file_atomic((root_ / kLatest).string(), checkpoint_dir_name(step_) + "\n");

  // 4. Leftovers of killed saves at earlier steps, then prune.
  remove_leftovers_before(root_, step_);
  prune(retention);
  return final_dir;
}

fs::path CheckpointWriter::commit(int keep_last_n) {
  Retention r;
  r.keep_last_n = keep_last_n;
  return commit(r);
}

bool Retention::higher_is_better() const {
  const std::string suffix = "loss";
  return !(best_metric.size() >= suffix.size() &&
           best_metric.compare(best_metric.size() - suffix.size(), suffix.size(), suffix) == 0);
}

void CheckpointWriter::prune(const Retention& retention) const {
  if (retention.keep_last_n <= 0) return;
  auto scan = scan_checkpoints(run_dir_);
  struct Older {
    int64_t step;
    fs::path dir;
    std::optional<double> metric;
  };
  std::vector<Older> older;  // complete checkpoints before this one, newest first
  for (const auto& d : scan.complete) {
    const auto s = *parse_checkpoint_dir_name(d.filename().string());
    if (s >= step_) continue;
    Older o{s, d, std::nullopt};
    if (retention.keep_best > 0 && !retention.best_metric.empty())
      o.metric = checkpoint_metric(d, retention.best_metric);
    older.push_back(std::move(o));
  }
  std::sort(older.begin(), older.end(), [](const Older& a, const Older& b) { return a.step > b.step; });
  // The best keep_best by the metric (this checkpoint's own value included in the ranking).
  std::vector<std::pair<double, int64_t>> ranked;  // (score, step), higher score better
  const double sign = retention.higher_is_better() ? 1.0 : -1.0;
  for (const auto& o : older)
    if (o.metric) ranked.emplace_back(sign * *o.metric, o.step);
  if (retention.keep_best > 0 && !retention.best_metric.empty())
    if (auto own = checkpoint_metric(root_ / checkpoint_dir_name(step_), retention.best_metric))
      ranked.emplace_back(sign * *own, step_);
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second > b.second;  // ties: the newer
  });
  std::vector<int64_t> best;
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(std::max(0, retention.keep_best)); ++i)
    best.push_back(ranked[i].second);
  for (size_t i = static_cast<size_t>(retention.keep_last_n - 1); i < older.size(); ++i) {
    if (std::find(best.begin(), best.end(), older[i].step) != best.end()) {
      spdlog::info("checkpoint: keeping {} (one of the {} best by {})", older[i].dir.string(),
                   retention.keep_best, retention.best_metric);
      continue;
    }
    spdlog::info("checkpoint: removing {} (keep_last_n = {})", older[i].dir.string(), retention.keep_last_n);
    std::error_code ec;
    remove_tree(older[i].dir.string(), ec);
    if (ec) spdlog::warn("checkpoint: cannot remove {}: {}", older[i].dir.string(), ec.message());
  }
}

std::optional<double> checkpoint_metric(const fs::path& dir, const std::string& metric) {
  std::ifstream in(dir / checkpoint_files::kMetrics);
  if (!in) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(in);
    if (!j.contains("eval") || !j["eval"].is_object() || !j["eval"].contains(metric)) return std::nullopt;
    const auto& v = j["eval"][metric];
    if (!v.is_number() || !std::isfinite(v.get<double>())) return std::nullopt;
    return v.get<double>();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// ------------------------------------------------------------------------------- reading

std::string checkpoint_problem(const fs::path& dir) {
  if (!fs::is_directory(dir)) return "not a directory";
  const auto marker = dir / checkpoint_files::kComplete;
  if (!fs::exists(marker)) return "no COMPLETE marker (interrupted save)";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_all(marker));
  } catch (const std::exception& e) {
    return std::string("unreadable COMPLETE marker: ") + e.what();
  }
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || !j.contains("files") ||
      !j["files"].is_object())
    return "COMPLETE marker lacks an integer step or a files object";
  const auto named = parse_checkpoint_dir_name(dir.filename().string());
  if (named && *named != j["step"].get<int64_t>())
    return "COMPLETE says step " + std::to_string(j["step"].get<int64_t>()) + " but the directory is " +
           dir.filename().string();
  for (const auto& [f, entry] : j["files"].items()) {
    const auto p = dir / f;
    std::error_code ec;
    const auto actual = fs::file_size(p, ec);
    if (ec) return "missing file " + f;
    const auto rec = file_record(entry);
    if (!rec) return "COMPLETE has no size for " + f;
    if (static_cast<int64_t>(actual) != rec->bytes)
      return "file " + f + " has " + std::to_string(actual) + " bytes, COMPLETE says " +
             std::to_string(rec->bytes);
  }
  return "";
}

std::string checkpoint_content_problem(const fs::path& dir) {
  auto problem = checkpoint_problem(dir);
  if (!problem.empty()) return problem;
  const auto j = nlohmann::json::parse(read_all(dir / checkpoint_files::kComplete));
  const int64_t step = j["step"].get<int64_t>();
  for (const auto& [f, entry] : j["files"].items()) {
    const auto rec = file_record(entry);
    if (rec->xxh64.empty()) continue;  // written before hashes were recorded: sizes only
    std::string actual;
    try {
      actual = io::xxh64_hex(io::xxh64_file((dir / f).string()));
    } catch (const std::exception& e) {
      return std::string("cannot read file ") + f + ": " + e.what();
    }
    if (actual != rec->xxh64)
      return "file " + f + " has content hash " + actual + ", COMPLETE says " + rec->xxh64 +
             " (the file was changed or damaged after the save)";
  }
  // The step the trainer resumes at must be the step of the directory and of COMPLETE (a
  // missing or malformed step is left to the trainer, which names the key).
  if (j["files"].contains(checkpoint_files::kTrainerState)) {
    try {
      const auto st = nlohmann::json::parse(read_all(dir / checkpoint_files::kTrainerState));
      if (st.is_object() && st.contains("step") && st["step"].is_number_integer() &&
          st["step"].get<int64_t>() != step)
        return std::string(checkpoint_files::kTrainerState) + " says step " +
               std::to_string(st["step"].get<int64_t>()) + " but COMPLETE and the directory name say " +
               std::to_string(step);
    } catch (const nlohmann::json::exception&) {
    }
  }
  return "";
}

CheckpointScan scan_checkpoints(const fs::path& run_dir) {
  CheckpointScan scan;
  const auto root = checkpoints_root(run_dir);
  if (!fs::is_directory(root)) return scan;
  std::vector<std::pair<int64_t, fs::path>> complete;
  for (const auto& entry : fs::directory_iterator(root)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_directory()) continue;
    if (name.rfind(kTempPrefix, 0) == 0 || name.rfind(kOldPrefix, 0) == 0 ||
        name.rfind(kStagingPrefix, 0) == 0) {
      scan.ignored.push_back(entry.path().string() + ": leftover of an interrupted checkpoint save, ignored");
      continue;
    }
    const auto step = parse_checkpoint_dir_name(name);
    if (!step) continue;
    const auto problem = checkpoint_problem(entry.path());
    if (!problem.empty()) {
      scan.ignored.push_back(entry.path().string() + ": " + problem + ", ignored");
      continue;
    }
    complete.emplace_back(*step, entry.path());
  }
  std::sort(complete.begin(), complete.end());
  for (auto& c : complete) scan.complete.push_back(c.second);
  std::sort(scan.ignored.begin(), scan.ignored.end());

  const auto latest_file = root / kLatest;
  if (fs::exists(latest_file)) {
    const auto name = trim(read_all(latest_file));
    const auto target = root / name;
    const bool ok = parse_checkpoint_dir_name(name) &&
                    std::find(scan.complete.begin(), scan.complete.end(), target) != scan.complete.end();
    if (ok) {
      scan.latest = target;
    } else {
      scan.ignored.push_back(latest_file.string() + ": points to '" + name +
                             "', which is not a complete checkpoint; using the newest complete "
                             "one instead");
    }
  }
  if (scan.latest)
    scan.resume = scan.latest;
  else if (!scan.complete.empty())
    scan.resume = scan.complete.back();
  return scan;
}

std::optional<fs::path> newest_verified_checkpoint(const fs::path& run_dir,
                                                   std::vector<std::string>* problems) {
  const auto scan = scan_checkpoints(run_dir);
  if (problems) problems->insert(problems->end(), scan.ignored.begin(), scan.ignored.end());
  if (!scan.resume) return std::nullopt;
  // `latest` (or the newest), then the older ones of its timeline, newest first: checkpoints
  // with a larger step than `latest` were left by an abandoned timeline.
  const int64_t first = *parse_checkpoint_dir_name(scan.resume->filename().string());
  for (auto it = scan.complete.rbegin(); it != scan.complete.rend(); ++it) {
    if (*parse_checkpoint_dir_name(it->filename().string()) > first) continue;
    const auto problem = checkpoint_content_problem(*it);
    if (problem.empty()) return *it;
    if (problems) problems->push_back(it->string() + ": " + problem + ", ignored");
  }
  return std::nullopt;
}

bool holds_step_directories(const fs::path& run_dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_root(run_dir), ec))
    if (entry.is_directory() && parse_checkpoint_dir_name(entry.path().filename().string())) return true;
  return false;
}

std::optional<fs::path> find_resume(const fs::path& run_dir, const std::string& spec,
                                    std::vector<std::string>* ignored) {
  if (spec.empty() || spec == "none") return std::nullopt;
  if (spec == "auto") {
    std::vector<std::string> problems;
    auto found = newest_verified_checkpoint(run_dir, &problems);
    for (const auto& line : problems) {
      spdlog::warn("resume: {}", line);
      if (ignored) ignored->push_back(line);
    }
    // Every checkpoint damaged: starting from step 0 would overwrite them and the run's logs.
    if (!found && holds_step_directories(run_dir)) {
      std::string what;
      for (const auto& line : problems) what += "\n  " + line;
      throw Error("--resume auto: no usable checkpoint in " + checkpoints_root(run_dir).string() +
                  ", although it holds checkpoint directories:" + what +
                  "\nrepair or remove them, or pass --resume none to start afresh over them");
    }
    return found;
  }
  const fs::path dir(spec);
  const auto problem = checkpoint_content_problem(dir);
  if (!problem.empty()) throw Error("resume: " + dir.string() + " is not a complete checkpoint: " + problem);
  return dir;
}

Checkpoint::Checkpoint(const fs::path& dir) : dir_(dir) {
  const auto problem = checkpoint_problem(dir);
  if (!problem.empty()) throw Error(dir.string() + ": not a complete checkpoint: " + problem);
  complete_ = nlohmann::json::parse(read_all(dir / checkpoint_files::kComplete));
  step_ = complete_["step"].get<int64_t>();
}

std::vector<std::string> Checkpoint::files() const {
  std::vector<std::string> out;
  for (const auto& [f, _] : complete_["files"].items()) out.push_back(f);
  return out;
}

bool Checkpoint::has(const std::string& file) const { return complete_["files"].contains(file); }

fs::path Checkpoint::path_of(const std::string& file) const {
  if (!has(file)) throw Error(dir_.string() + ": checkpoint has no " + file);
  return dir_ / file;
}

io::NamedTensors Checkpoint::tensors(const std::string& file) const {
  return io::load_safetensors(path_of(file).string());
}

nlohmann::json Checkpoint::json(const std::string& file) const {
  const auto p = path_of(file);
  try {
    return nlohmann::json::parse(read_all(p));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(p.string(), std::string("invalid JSON: ") + e.what());
  }
}

std::string Checkpoint::text(const std::string& file) const { return read_all(path_of(file)); }

}  // namespace robometer::train
