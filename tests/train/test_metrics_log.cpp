// JSONL metrics log: flushing, resume truncation, torn lines.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "common/test_util.h"
#include "robometer/train/metrics_log.h"

using namespace robometer::train;
using robometer::test::TempDir;

namespace {
std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST(MetricsLog, WritesOneFlushedLinePerRecord) {
  TempDir d;
  const auto path = d / "metrics.jsonl";
  MetricsLog log(path);
  log.write({{"step", 1}, {"loss", 0.5}});
  // Readable before the log is closed (flushed per line).
  EXPECT_EQ(slurp(path), "{\"loss\":0.5,\"step\":1}\n");
  log.write({{"step", 2}, {"loss", std::numeric_limits<double>::quiet_NaN()}});
  auto recs = MetricsLog::read(path);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_TRUE(recs[1]["loss"].is_null());
}

TEST(MetricsLog, ResumeDropsLinesAfterResumedStep) {
  TempDir d;
  const auto path = d / "metrics.jsonl";
  {
    MetricsLog log(path);
    for (int s = 1; s <= 5; ++s) log.write({{"step", s}, {"loss", 1.0 / s}});
  }
  // A torn last line as a crash would leave it.
  std::ofstream(path, std::ios::app) << "{\"step\": 6, \"lo";
  {
    MetricsLog log(path, 3);
    EXPECT_EQ(log.lines_kept(), 3);
    log.write({{"step", 4}, {"loss", 0.1}});
  }
  auto recs = MetricsLog::read(path);
  ASSERT_EQ(recs.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(recs[i]["step"], i + 1);
  EXPECT_DOUBLE_EQ(recs[3]["loss"].get<double>(), 0.1);
}

TEST(MetricsLog, FreshRunTruncates) {
  TempDir d;
  const auto path = d / "sub" / "metrics.jsonl";
  { MetricsLog(path).write({{"step", 1}}); }
  { MetricsLog(path).write({{"step", 9}}); }
  auto recs = MetricsLog::read(path);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["step"], 9);
}
