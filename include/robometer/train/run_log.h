// Where a run's per-step records go: metrics.jsonl, TensorBoard event files and the console
// (a progress bar on a terminal, plain lines otherwise). Only rank 0 writes files.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>

namespace robometer::train {

class RunLog {
 public:
  // start_step > 0 (a resume) drops metrics.jsonl lines past it, so the log has no duplicates.
  RunLog(const std::filesystem::path& run_dir, bool is_main, int64_t start_step, int64_t max_steps,
         bool tensorboard, bool progress_bar);
  ~RunLog();
  RunLog(const RunLog&) = delete;  // owns the open log files
  RunLog& operator=(const RunLog&) = delete;
  // rec holds "step" and numeric fields; `print` also writes a console line.
  void record(const nlohmann::json& rec, bool print);
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace robometer::train
