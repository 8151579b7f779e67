#include <gtest/gtest.h>

#include "robometer/core/error.h"
#include "robometer/data/trajectory_index.h"

using namespace robometer::data;

namespace {
Trajectory t(const std::string& id, const std::string& task, const std::string& src, Quality q) {
  Trajectory x;
  x.id = id;
  x.task = task;
  x.data_source = src;
  x.num_frames = 10;
  x.fps = 10;
  x.quality = q;
  return x;
}
}  // namespace

TEST(TrajectoryIndex, Lookups) {
  TrajectoryIndex idx({t("a", "pick", "lab", Quality::Successful), t("b", "pick", "lab", Quality::Failure),
                       t("c", "place", "lab", Quality::Suboptimal),
                       t("d", "push", "sim", Quality::Successful)});
  EXPECT_EQ(idx.size(), 4);
  EXPECT_EQ(idx.sources(), (std::vector<std::string>{"lab", "sim"}));
  EXPECT_EQ(idx.by_source("lab").to_vector(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(idx.tasks_of_source("lab"), (std::vector<std::string>{"pick", "place"}));
  EXPECT_EQ(idx.successful_by_task("pick").to_vector(), (std::vector<int64_t>{0}));
  EXPECT_EQ(idx.unsuccessful_by_task("pick").to_vector(), (std::vector<int64_t>{1}));
  EXPECT_EQ(idx.unsuccessful_by_task("place").to_vector(), (std::vector<int64_t>{2}));
  EXPECT_TRUE(idx.task_has_both("pick"));
  EXPECT_FALSE(idx.task_has_both("place"));
  std::vector<std::string> with_success;
  for (uint32_t task : idx.tasks_with_successful()) with_success.emplace_back(idx.task_name(task));
  EXPECT_EQ(with_success, (std::vector<std::string>{"pick", "push"}));
  EXPECT_TRUE(idx.source_has_unsuccessful("lab"));
  EXPECT_FALSE(idx.source_has_unsuccessful("sim"));
  EXPECT_TRUE(idx.has_unsuccessful());
  EXPECT_EQ(idx.find("d"), 3);
  EXPECT_EQ(idx.find("zz"), -1);
  EXPECT_TRUE(idx.by_source("nope").empty());
  EXPECT_EQ(idx.source_weight("lab"), 1.0);
}

TEST(TrajectoryIndex, ManifestWeights) {
  Manifest m1, m2;
  m1.dir = "/m1";
  m1.trajectories = {t("a", "pick", "lab", Quality::Successful)};
  m2.dir = "/m2";
  m2.trajectories = {t("b", "push", "sim", Quality::Successful)};
  TrajectoryIndex idx({{m1, 2.0}, {m2, 0.5}});
  EXPECT_EQ(idx.source_weight("lab"), 2.0);
  EXPECT_EQ(idx.source_weight("sim"), 0.5);
  // The same source with two weights is ambiguous.
  Manifest m3 = m2;
  m3.dir = "/m3";
  m3.trajectories[0].id = "c";
  EXPECT_THROW(TrajectoryIndex({{m2, 0.5}, {m3, 1.0}}), robometer::ConfigError);
}

TEST(TrajectoryIndex, DuplicateIdIsAnError) {
  try {
    TrajectoryIndex idx({t("a", "x", "s", Quality::Successful), t("a", "y", "s", Quality::Successful)});
    FAIL() << "expected ConfigError";
  } catch (const robometer::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'a'"), std::string::npos) << e.what();
  }
}
