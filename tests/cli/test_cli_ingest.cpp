// Runs the real `robometer` binary: `ingest` on the real G1 LeRobot v2.1 fixture and on a folder
// dataset, then `data stats` and `data validate` (which must notice a changed video).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/wait.h>

#include "common/test_util.h"

namespace fs = std::filesystem;
using robometer::test::shared_dir;
using robometer::test::TempDir;

namespace {

using Run = robometer::test::CommandResult;

Run run_robometer(const std::string& args) { return robometer::test::run_robometer(args); }

size_t count_lines(const fs::path& p) {
  std::ifstream in(p);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

}  // namespace

TEST(CliIngest, G1LeRobotThenStatsAndValidate) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir out;
  const std::string src = (shared_dir() / "data/G1-policy-train").string();
  auto r = run_robometer("ingest --format lerobot '" + src + "' --out '" + out.path().string() + "' --threads 2");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("ingested 3 of 100 trajectories (778 frames)"), std::string::npos) << r.out;
  EXPECT_EQ(count_lines(out / "trajectories.jsonl"), 3u);
  // 97 missing videos + the total_frames note (metadata describes 100 episodes).
  EXPECT_GE(count_lines(out / "ingest_report.jsonl"), 97u);
  r = run_robometer("data stats '" + out.path().string() + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("3 trajectories, 778 frames"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Pick up the yellow bottle on the table."), std::string::npos) << r.out;
  r = run_robometer("data validate '" + out.path().string() + "'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("0 problems"), std::string::npos) << r.out;
  r = run_robometer("ingest --format lerobot '" + src + "' --out '" + out.path().string() + "' --quality great");
  EXPECT_EQ(r.code, 2) << r.out;
}

TEST(CliIngest, ValidateNoticesChangedVideo) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir ds, out;
  const fs::path clip = shared_dir() / "data/robometer/scripts/example_videos/soar_put_green_stick_in_brown_bowl.mp4";
  fs::copy_file(clip, ds / "a.mp4");
  std::ofstream(ds / "videos.jsonl") << R"({"path":"a.mp4","task":"Put green stick in brown bowl","quality_label":"successful"})" << "\n";
  auto r = run_robometer("ingest --format folder '" + ds.path().string() + "' --out '" + out.path().string() + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(run_robometer("data validate '" + out.path().string() + "'").code, 0);
  fs::resize_file(ds / "a.mp4", fs::file_size(ds / "a.mp4") / 2);  // truncated after ingest
  r = run_robometer("data validate '" + out.path().string() + "'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("size is"), std::string::npos) << r.out;
  fs::remove(ds / "a.mp4");
  r = run_robometer("data validate '" + out.path().string() + "'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("does not exist"), std::string::npos) << r.out;
}
