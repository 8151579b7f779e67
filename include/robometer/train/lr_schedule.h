// Learning-rate schedules as multipliers on each parameter group's base lr (LambdaLR style),
// matching HF transformers' get_{constant,linear,cosine}_schedule_with_warmup and its
// cosine_with_min_lr variant. `step` is the number of optimizer updates already done, so the
// very first update (step 0) runs at factor 0 when there is a warm-up, as in HF.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace robometer::train {

enum class LrScheduleKind { Constant, Linear, Cosine };
LrScheduleKind parse_lr_schedule_kind(const std::string& s);  // "constant"|"linear"|"cosine"
const char* lr_schedule_kind_name(LrScheduleKind k);

struct LrScheduleConfig {
  LrScheduleKind kind = LrScheduleKind::Cosine;
  int64_t max_steps = 0;      // total optimizer updates (> 0)
  int64_t warmup_steps = -1;  // >= 0 wins over warmup_ratio
  double warmup_ratio = 0.0;  // warm-up = ceil(ratio · max_steps), as HF get_warmup_steps
  double min_lr_ratio = 0.0;  // floor of the decay as a fraction of the base lr (cosine, linear)
};

class LrSchedule {
 public:
  // Throws ConfigError on max_steps <= 0, a ratio outside [0, 1], or warm-up > max_steps.
  explicit LrSchedule(LrScheduleConfig cfg);

  //   warm-up (s < W):  s / max(1, W)
  //   constant:         1
  //   linear:           max(0, (N - s) / max(1, N - W))
  //   cosine:           max(0, 0.5 · (1 + cos(π · (s - W) / max(1, N - W))))
  // then, after warm-up, f ← f · (1 - min_lr_ratio) + min_lr_ratio (cosine, linear).
  double factor(int64_t step) const;
  int64_t warmup_steps() const { return warmup_; }
  const LrScheduleConfig& config() const { return cfg_; }

  nlohmann::json to_json() const;
  static LrSchedule from_json(const nlohmann::json& j);

 private:
  LrScheduleConfig cfg_;
  int64_t warmup_ = 0;
};

}  // namespace robometer::train
