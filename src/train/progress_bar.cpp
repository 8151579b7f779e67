#include "robometer/train/progress_bar.h"

#include <unistd.h>

#include <cmath>

namespace robometer::train {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  char buf[64];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm%02llds", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else if (s >= 60)
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  return buf;
}

ProgressBar::ProgressBar(int64_t total, int64_t start, ProgressBarOptions opts)
    : total_(total), start_(start), opts_(opts), last_step_printed_(start) {
  tty_ = opts_.tty >= 0 ? opts_.tty == 1 : ::isatty(::fileno(opts_.out)) == 1;
  t0_ = last_print_ = Clock::now();
}

ProgressBar::~ProgressBar() {
  if (line_open_) std::fputc('\n', opts_.out);
}

double ProgressBar::elapsed() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

std::string ProgressBar::status(int64_t step, const std::string& extra) const {
  const double secs = elapsed();
  const int64_t done = step - start_;
  const double rate = secs > 0 && done > 0 ? done / secs : 0.0;
  const double eta = rate > 0 ? (total_ - step) / rate : -1.0;
  char head[160];
  if (total_ > 0) {
    std::snprintf(head, sizeof(head), "%s %lld/%lld (%.1f%%) | %.2f it/s | elapsed %s | eta %s", opts_.unit,
                  static_cast<long long>(step), static_cast<long long>(total_), 100.0 * step / total_, rate,
                  format_duration(secs).c_str(), format_duration(eta).c_str());
  } else {
    std::snprintf(head, sizeof(head), "%s %lld | %.2f it/s | elapsed %s", opts_.unit,
                  static_cast<long long>(step), rate, format_duration(secs).c_str());
  }
  std::string s = head;
  if (!extra.empty()) s += " | " + extra;
  return s;
}

void ProgressBar::update(int64_t step, const std::string& extra) {
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (tty_) {
    // Redraw at most ~10 times a second.
    if (since < 0.1 && step < total_) return;
    const double frac = total_ > 0 ? std::min(1.0, std::max(0.0, double(step) / total_)) : 0.0;
    const int filled = static_cast<int>(frac * opts_.width);
    std::string bar(filled, '#');
    bar.append(opts_.width - filled, '.');
    std::fprintf(opts_.out, "\r\033[K[%s] %s", bar.c_str(), status(step, extra).c_str());
    std::fflush(opts_.out);
    line_open_ = true;
  } else {
    const bool by_steps = opts_.every_steps > 0 && step - last_step_printed_ >= opts_.every_steps;
    const bool by_time = opts_.every_seconds > 0 && since >= opts_.every_seconds;
    if (!by_steps && !by_time) return;
    std::fprintf(opts_.out, "%s\n", status(step, extra).c_str());
    std::fflush(opts_.out);
    last_step_printed_ = step;
  }
  last_print_ = now;
}

void ProgressBar::finish(const std::string& extra) {
  if (tty_) {
    last_print_ = Clock::time_point{};
    update(total_, extra);
    std::fputc('\n', opts_.out);
    line_open_ = false;
  } else {
    std::fprintf(opts_.out, "%s\n", status(total_, extra).c_str());
  }
  std::fflush(opts_.out);
}

}  // namespace robometer::train
