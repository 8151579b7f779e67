// Training progress on stderr: a redrawn bar with rate and ETA when stderr is a terminal,
// otherwise (logs, CI, nohup) a plain line every `every_steps` steps or `every_seconds`.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace robometer::train {

// "1h02m03s", "4m05s", "7s" (negative or non-finite → "?").
std::string format_duration(double seconds);

struct ProgressBarOptions {
  int64_t every_steps = 50;     // plain mode: a line at least this often (0: never by steps)
  double every_seconds = 30.0;  // plain mode: ... or when this much time has passed
  int width = 30;               // bar characters in terminal mode
  int tty = -1;                 // -1: isatty(fileno(out)); 0/1 force
  std::FILE* out = stderr;
  const char* unit = "step";  // what is counted ("step", "video", ...)
};

class ProgressBar {
 public:
  // Counts steps in [start, total]; the rate and ETA only use steps done since construction
  // (so a resumed run does not claim an absurd speed).
  ProgressBar(int64_t total, int64_t start = 0, ProgressBarOptions opts = {});
  ~ProgressBar();  // ends the terminal line if a bar is on screen
  // A copy would end the same terminal line twice.
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // Reports that `step` steps are done; `extra` (e.g. "loss 0.412 lr 1.9e-05") is appended.
  void update(int64_t step, const std::string& extra = "");
  void finish(const std::string& extra = "");

  // The text of the current status (without the terminal control characters); for tests.
  std::string status(int64_t step, const std::string& extra) const;
  bool is_tty() const { return tty_; }

 private:
  using Clock = std::chrono::steady_clock;
  double elapsed() const;
  int64_t total_, start_;
  ProgressBarOptions opts_;
  bool tty_;
  Clock::time_point t0_, last_print_;
  int64_t last_step_printed_;
  bool line_open_ = false;
};

}  // namespace robometer::train
