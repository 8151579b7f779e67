// Per-step metrics as JSON lines (one object per line, flushed as written) in the run dir.
// Fields are free-form; "step" (integer) is what resume uses: reopening after a resume from
// step S drops every line with step > S (and a torn last line), so the log never holds the
// same step twice.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace robometer::train {

class MetricsLog {
 public:
  // resumed_step < 0: a fresh run, the file is truncated. resumed_step >= 0: lines with
  // "step" > resumed_step, lines without a step after such a line, and unparsable lines are
  // removed (the file is rewritten atomically), then new records are appended.
  // Throws Error when the file cannot be opened.
  MetricsLog(const std::filesystem::path& path, int64_t resumed_step = -1);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // Appends one line and flushes it. Non-finite numbers are written as null (JSON has no NaN).
  void write(const nlohmann::json& record);
  const std::filesystem::path& path() const { return path_; }
  int64_t lines_kept() const { return kept_; }  // lines retained from before the resume

  // All records of a log file (skipping unparsable lines).
  static std::vector<nlohmann::json> read(const std::filesystem::path& path);

 private:
  std::filesystem::path path_;
  std::FILE* file_ = nullptr;
  int64_t kept_ = 0;
};

}  // namespace robometer::train
