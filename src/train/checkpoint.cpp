#include "robometer/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "robometer/core/remove_tree.h"
#include "robometer/core/error.h"
#include "robometer/io/atomic_dir.h"
#include "robometer/io/atomic_file.h"

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
  temp_ = root_ / (std::string(kTempPrefix) + checkpoint_dir_name(step) + "-" +
                   std::to_string(::getpid()));
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

fs::path CheckpointWriter::commit(int keep_last_n) {
  if (committed_) throw Error("checkpoint: commit() called twice");
  // 1. COMPLETE, last inside the temp dir, listing every file and its size.
  nlohmann::json complete;
  complete["step"] = step_;
  complete["time"] = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  complete["files"] = nlohmann::json::object();
  for (const auto& f : files_) {
    const auto p = temp_ / f;
    fsync_path(p, false);
    complete["files"][f] = static_cast<int64_t>(fs::file_size(p));
  }
  io::write_file_atomic((temp_ / checkpoint_files::kComplete).string(), complete.dump(2) + "\n");
  fsync_path(temp_, true);

  // 2. Rename into place. An existing directory of the same step (a rewound run, or a crash
  // between this rename and `latest`) is swapped out atomically, so that at no instant is
  // there no complete step_N; where the filesystem cannot exchange, it is moved aside and
  // moved back if the rename fails.
  const fs::path final_dir = root_ / checkpoint_dir_name(step_);
  const fs::path old = io::swap_directory_into_place(
      temp_, final_dir, root_ / (std::string(kOldPrefix) + checkpoint_dir_name(step_) + "-" + std::to_string(::getpid())));
  committed_ = true;
  std::error_code ec;
  fsync_path(root_, true);
  if (!old.empty()) remove_tree(old.string(), ec);

  // 3. `latest`, last.
  io::write_file_atomic((root_ / kLatest).string(), checkpoint_dir_name(step_) + "\n");

  // 4. Prune.
  if (keep_last_n > 0) {
    auto scan = scan_checkpoints(run_dir_);
    std::vector<std::pair<int64_t, fs::path>> older;
    for (const auto& d : scan.complete) {
      const auto s = *parse_checkpoint_dir_name(d.filename().string());
      if (s < step_) older.emplace_back(s, d);
    }
    std::sort(older.rbegin(), older.rend());
    for (size_t i = static_cast<size_t>(keep_last_n - 1); i < older.size(); ++i) {
      spdlog::info("checkpoint: removing {} (keep_last_n = {})", older[i].second.string(),
                   keep_last_n);
      remove_tree(older[i].second.string(), ec);
      if (ec) spdlog::warn("checkpoint: cannot remove {}: {}", older[i].second.string(),
                           ec.message());
    }
  }
  return final_dir;
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
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() ||
      !j.contains("files") || !j["files"].is_object())
    return "COMPLETE marker lacks an integer step or a files object";
  const auto named = parse_checkpoint_dir_name(dir.filename().string());
  if (named && *named != j["step"].get<int64_t>())
    return "COMPLETE says step " + std::to_string(j["step"].get<int64_t>()) +
           " but the directory is " + dir.filename().string();
  for (const auto& [f, size] : j["files"].items()) {
    const auto p = dir / f;
    std::error_code ec;
    const auto actual = fs::file_size(p, ec);
    if (ec) return "missing file " + f;
    if (!size.is_number_integer()) return "COMPLETE has no size for " + f;
    if (static_cast<int64_t>(actual) != size.get<int64_t>())
      return "file " + f + " has " + std::to_string(actual) + " bytes, COMPLETE says " +
             std::to_string(size.get<int64_t>());
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
      scan.ignored.push_back(entry.path().string() +
                             ": leftover of an interrupted checkpoint save, ignored");
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
                    std::find(scan.complete.begin(), scan.complete.end(), target) !=
                        scan.complete.end();
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

std::optional<fs::path> find_resume(const fs::path& run_dir, const std::string& spec,
                                    std::vector<std::string>* ignored) {
  if (spec.empty() || spec == "none") return std::nullopt;
  if (spec == "auto") {
    auto scan = scan_checkpoints(run_dir);
    for (const auto& line : scan.ignored) {
      spdlog::warn("resume: {}", line);
      if (ignored) ignored->push_back(line);
    }
    return scan.resume;
  }
  const fs::path dir(spec);
  const auto problem = checkpoint_problem(dir);
  if (!problem.empty())
    throw Error("resume: " + dir.string() + " is not a complete checkpoint: " + problem);
  return dir;
}

Checkpoint::Checkpoint(const fs::path& dir) : dir_(dir) {
  const auto problem = checkpoint_problem(dir);
  if (!problem.empty())
    throw Error(dir.string() + ": not a complete checkpoint: " + problem);
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
