// LR schedules against values computed by hand from HF's formulas.
#include <gtest/gtest.h>

#include <cmath>

#include "robometer/core/error.h"
#include "robometer/train/lr_schedule.h"

using namespace robometer;
using namespace robometer::train;

namespace {
LrSchedule make(LrScheduleKind k, int64_t n, int64_t w, double min_ratio = 0) {
  LrScheduleConfig c;
  c.kind = k;
  c.max_steps = n;
  c.warmup_steps = w;
  c.min_lr_ratio = min_ratio;
  return LrSchedule(c);
}
}  // namespace

TEST(LrSchedule, CosineWithWarmupMatchesHF) {
  // N = 10, W = 2: warm-up 0, 1/2; then progress (s-2)/8.
  auto s = make(LrScheduleKind::Cosine, 10, 2);
  EXPECT_DOUBLE_EQ(s.factor(0), 0.0);
  EXPECT_DOUBLE_EQ(s.factor(1), 0.5);
  EXPECT_DOUBLE_EQ(s.factor(2), 1.0);                               // cos(0)
  EXPECT_NEAR(s.factor(4), 0.5 * (1 + std::cos(M_PI / 4)), 1e-15);  // progress 1/4
  EXPECT_NEAR(s.factor(6), 0.5, 1e-15);                             // progress 1/2: cos(π/2) = 0
  EXPECT_NEAR(s.factor(10), 0.0, 1e-15);                            // progress 1: cos(π) = -1
}

TEST(LrSchedule, CosineMinLrFloor) {
  // min ratio 0.1: f' = f·0.9 + 0.1 → at the end 0.1, half-way 0.55. Warm-up is unaffected.
  auto s = make(LrScheduleKind::Cosine, 10, 2, 0.1);
  EXPECT_DOUBLE_EQ(s.factor(1), 0.5);
  EXPECT_NEAR(s.factor(6), 0.55, 1e-15);
  EXPECT_NEAR(s.factor(10), 0.1, 1e-15);
}

TEST(LrSchedule, WarmupRatioRoundsUp) {
  // HF get_warmup_steps: ceil(0.1 · 15) = 2; ceil(0.1 · 20) = 2.
  LrScheduleConfig c;
  c.max_steps = 15;
  c.warmup_ratio = 0.1;
  EXPECT_EQ(LrSchedule(c).warmup_steps(), 2);
  c.max_steps = 20;
  EXPECT_EQ(LrSchedule(c).warmup_steps(), 2);
  c.warmup_steps = 5;  // explicit wins
  EXPECT_EQ(LrSchedule(c).warmup_steps(), 5);
}

TEST(LrSchedule, LinearAndConstant) {
  // Linear N = 10, W = 2: s = 6 → (10-6)/8 = 0.5; s = 10 → 0.
  auto lin = make(LrScheduleKind::Linear, 10, 2);
  EXPECT_DOUBLE_EQ(lin.factor(1), 0.5);
  EXPECT_DOUBLE_EQ(lin.factor(2), 1.0);
  EXPECT_DOUBLE_EQ(lin.factor(6), 0.5);
  EXPECT_DOUBLE_EQ(lin.factor(10), 0.0);
  EXPECT_DOUBLE_EQ(lin.factor(12), 0.0);
  auto con = make(LrScheduleKind::Constant, 10, 4);
  EXPECT_DOUBLE_EQ(con.factor(1), 0.25);
  EXPECT_DOUBLE_EQ(con.factor(4), 1.0);
  EXPECT_DOUBLE_EQ(con.factor(9), 1.0);
  // No warm-up: step 0 already at full lr.
  EXPECT_DOUBLE_EQ(make(LrScheduleKind::Cosine, 10, 0).factor(0), 1.0);
}

TEST(LrSchedule, JsonRoundTripAndErrors) {
  auto s = make(LrScheduleKind::Linear, 100, 7, 0.05);
  auto r = LrSchedule::from_json(s.to_json());
  for (int64_t i : {0, 3, 7, 50, 100}) EXPECT_EQ(r.factor(i), s.factor(i));
  EXPECT_THROW(make(LrScheduleKind::Cosine, 0, 0), ConfigError);
  EXPECT_THROW(make(LrScheduleKind::Cosine, 10, 11), ConfigError);
  EXPECT_THROW(parse_lr_schedule_kind("step"), ConfigError);
}
