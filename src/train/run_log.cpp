#include "robometer/train/run_log.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>

#include "robometer/train/metrics_log.h"
#include "robometer/train/progress_bar.h"
#include "robometer/train/tensorboard.h"

namespace robometer::train {

struct RunLog::Impl {
  bool is_main;
  std::unique_ptr<MetricsLog> metrics;
  std::unique_ptr<TensorBoardWriter> tb;
  std::unique_ptr<ProgressBar> bar;
};

RunLog::RunLog(const std::filesystem::path& run_dir, bool is_main, int64_t start_step, int64_t max_steps,
               bool tensorboard, bool progress_bar)
    : impl_(std::make_unique<Impl>()) {
  impl_->is_main = is_main;
  if (!is_main) return;
  std::filesystem::create_directories(run_dir);
  impl_->metrics = std::make_unique<MetricsLog>(run_dir / "metrics.jsonl", start_step > 0 ? start_step : -1);
  if (tensorboard) impl_->tb = std::make_unique<TensorBoardWriter>(run_dir / "tensorboard");
  ProgressBarOptions po;
  po.every_steps = 0;  // lines are driven by record(print=true)
  if (!progress_bar) po.tty = 0;
  impl_->bar = std::make_unique<ProgressBar>(max_steps, start_step, po);
}

RunLog::~RunLog() = default;

void RunLog::record(const nlohmann::json& rec, bool print) {
  if (!impl_->is_main) return;
  impl_->metrics->write(rec);
  const int64_t step = rec.at("step").get<int64_t>();
  if (impl_->tb) {
    std::map<std::string, double> scalars;
    for (auto& [k, v] : rec.items())
      if (k != "step" && v.is_number())
        scalars[(k.rfind("eval_", 0) == 0 ? "eval/" : "train/") + k] = v.get<double>();
    impl_->tb->add_scalars(scalars, step);
  }
  char extra[256];
  std::snprintf(extra, sizeof(extra), "loss %.4f pref_acc %.2f lr %.2e %.1f samples/s%s",
                rec.value("loss", 0.0), rec.value("preference_accuracy", 0.0), rec.value("lr", 0.0),
                rec.value("samples_per_s", 0.0),
                rec.contains("eval_loss")
                    ? (" | eval loss " + std::to_string(rec["eval_loss"].get<double>()).substr(0, 6) +
                       " acc " + std::to_string(rec["eval_preference_accuracy"].get<double>()).substr(0, 5))
                          .c_str()
                    : "");
  if (impl_->bar->is_tty())
    impl_->bar->update(step, extra);
  else if (print)
    spdlog::info("{}", impl_->bar->status(step, extra));
}

void RunLog::finish() {
  if (impl_->is_main && impl_->bar) impl_->bar->finish();
}

}  // namespace robometer::train
