#include "robometer/train/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "robometer/core/error.h"

namespace robometer::train {

LrScheduleKind parse_lr_schedule_kind(const std::string& s) {
  if (s == "constant") return LrScheduleKind::Constant;
  if (s == "linear") return LrScheduleKind::Linear;
  if (s == "cosine") return LrScheduleKind::Cosine;
  throw ConfigError("lr_scheduler: expected constant, linear or cosine, got '" + s + "'");
}

const char* lr_schedule_kind_name(LrScheduleKind k) {
  switch (k) {
    case LrScheduleKind::Constant:
      return "constant";
    case LrScheduleKind::Linear:
      return "linear";
    case LrScheduleKind::Cosine:
      return "cosine";
  }
  return "?";
}

LrSchedule::LrSchedule(LrScheduleConfig cfg) : cfg_(cfg) {
  if (cfg_.max_steps <= 0)
    throw ConfigError("lr schedule: max_steps must be > 0, got " + std::to_string(cfg_.max_steps));
  if (!(cfg_.warmup_ratio >= 0 && cfg_.warmup_ratio <= 1))
    throw ConfigError("lr schedule: warmup_ratio must be in [0, 1], got " +
                      std::to_string(cfg_.warmup_ratio));
  if (!(cfg_.min_lr_ratio >= 0 && cfg_.min_lr_ratio <= 1))
    throw ConfigError("lr schedule: min_lr_ratio must be in [0, 1], got " +
                      std::to_string(cfg_.min_lr_ratio));
  warmup_ = cfg_.warmup_steps >= 0
                ? cfg_.warmup_steps
                : static_cast<int64_t>(std::ceil(static_cast<double>(cfg_.max_steps) * cfg_.warmup_ratio));
  if (warmup_ > cfg_.max_steps)
    throw ConfigError("lr schedule: warmup_steps (" + std::to_string(warmup_) + ") exceeds max_steps (" +
                      std::to_string(cfg_.max_steps) + ")");
}

double LrSchedule::factor(int64_t step) const {
  const double s = static_cast<double>(step);
  const double W = static_cast<double>(warmup_);
  const double N = static_cast<double>(cfg_.max_steps);
  if (step < warmup_) return s / std::max(1.0, W);
  double f = 1.0;
  switch (cfg_.kind) {
    case LrScheduleKind::Constant:
      return 1.0;
    case LrScheduleKind::Linear:
      f = std::max(0.0, (N - s) / std::max(1.0, N - W));
      break;
    case LrScheduleKind::Cosine: {
      const double progress = (s - W) / std::max(1.0, N - W);
      // HF: 0.5 * (1 + cos(pi * num_cycles * 2 * progress)) with num_cycles = 0.5.
      f = std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * progress)));
      break;
    }
  }
  return f * (1.0 - cfg_.min_lr_ratio) + cfg_.min_lr_ratio;
}

nlohmann::json LrSchedule::to_json() const {
  return {{"kind", lr_schedule_kind_name(cfg_.kind)},
          {"max_steps", cfg_.max_steps},
          {"warmup_steps", warmup_},
          {"warmup_ratio", cfg_.warmup_ratio},
          {"min_lr_ratio", cfg_.min_lr_ratio}};
}

LrSchedule LrSchedule::from_json(const nlohmann::json& j) {
  try {
    LrScheduleConfig c;
    c.kind = parse_lr_schedule_kind(j.at("kind").get<std::string>());
    c.max_steps = j.at("max_steps").get<int64_t>();
    c.warmup_steps = j.at("warmup_steps").get<int64_t>();
    c.warmup_ratio = j.value("warmup_ratio", 0.0);
    c.min_lr_ratio = j.value("min_lr_ratio", 0.0);
    return LrSchedule(c);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("lr schedule state: ") + e.what());
  }
}

}  // namespace robometer::train
