// Runs the real `robometer` binary: `ingest` on the real G1 LeRobot v2.1 fixture and on a folder
// dataset, then `data stats` and `data validate` (which must notice a changed video).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

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
  auto r =
      run_robometer("ingest --format lerobot '" + src + "' --out '" + out.path().string() + "' --threads 2");
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
  r = run_robometer("ingest --format lerobot '" + src + "' --out '" + out.path().string() +
                    "' --quality great");
  EXPECT_EQ(r.code, 2) << r.out;
}

TEST(CliIngest, ValidateNoticesChangedVideo) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir ds, out;
  const fs::path clip =
      shared_dir() / "data/robometer/scripts/example_videos/soar_put_green_stick_in_brown_bowl.mp4";
  fs::copy_file(clip, ds / "a.mp4");
  std::ofstream(ds / "videos.jsonl")
      << R"({"path":"a.mp4","task":"Put green stick in brown bowl","quality_label":"successful"})"
      << "\n";
  auto r = run_robometer("ingest --format folder '" + ds.path().string() + "' --out '" + out.path().string() +
                         "'");
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

// Issue 21 item 16: text that is not UTF-8 (DuckDB BLOBs: a task, an id, a frames path) is a
// problem of its row in ingest_report.jsonl, naming file, row and column; the rest ingests.
TEST(CliIngest, NonUtf8RbmTextIsAPerRowProblem) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  std::string why;
  if (!robometer::test::duckdb_available(why)) GTEST_SKIP() << "DuckDB oracle: " << why;
  TempDir ds, out;
  const std::string clip =
      (shared_dir() / "data/robometer/scripts/example_videos/soar_put_green_stick_in_brown_bowl.mp4")
          .string();
  const fs::path shard0 = ds / "shard-000.parquet", shard1 = ds / "shard-001.parquet";
  ASSERT_TRUE(robometer::test::duckdb_write_parquet(
      shard0, "SELECT * FROM (VALUES ('id-a', 'put the stick in the bowl'::BLOB, '" + clip +
                  "', 'successful'), "
                  "('id-b', '\\xFF\\xFEbad'::BLOB, '" +
                  clip +
                  "', 'successful'), "
                  "('id-c', 'caf\\xC3\\xA9'::BLOB, '" +
                  clip + "', 'failure')) t(id, task, frames, quality_label)"));
  ASSERT_TRUE(robometer::test::duckdb_write_parquet(
      shard1, "SELECT * FROM (VALUES ('\\xFF'::BLOB, 'wave', '" + clip +
                  "'::BLOB, 'successful'), "
                  "('id-e'::BLOB, 'wave', '\\xC0\\xAF.mp4'::BLOB, 'successful'), "
                  "('id-f'::BLOB, 'wave', '" +
                  clip + "'::BLOB, 'successful')) t(id, task, frames, quality_label)"));
  auto r = run_robometer("ingest --format rbm '" + ds.path().string() + "' --out '" + out.path().string() +
                         "' --threads 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("ingested 3 of 6 trajectories"), std::string::npos) << r.out;
  std::ifstream report(out / "ingest_report.jsonl");
  std::vector<nlohmann::json> problems;
  for (std::string line; std::getline(report, line);) problems.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0]["id"], "id-b");
  EXPECT_EQ(problems[0]["path"], shard0.string());
  EXPECT_EQ(problems[0]["reason"], "row 1: column 'task' is not valid UTF-8 (byte 0xff at offset 0)");
  EXPECT_EQ(problems[1]["id"], shard1.string() + " row 0");
  EXPECT_EQ(problems[1]["reason"], "row 0: column 'id' is not valid UTF-8 (byte 0xff at offset 0)");
  EXPECT_EQ(problems[2]["id"], "id-e");
  EXPECT_EQ(problems[2]["reason"], "row 1: column 'frames' is not valid UTF-8 (byte 0xc0 at offset 0)");
  std::ifstream records(out / "trajectories.jsonl");
  std::vector<std::string> ids;
  for (std::string line; std::getline(records, line);) {
    const auto rec = nlohmann::json::parse(line);
    ids.push_back(rec["id"]);
    if (rec["id"] == "id-c") {
      EXPECT_EQ(rec["task"], "caf\xC3\xA9");
    }
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"id-a", "id-c", "id-f"}));
}

// Issue 17 item 4: `data validate` lists every problem with file and line and goes on past a bad
// record: a duplicate id, a relative path climbing out with "..", an absolute path elsewhere
// (refused), a record missing keys, a missing video; an empty manifest is a problem too.
TEST(CliValidate, ListsEveryProblemWithFileAndLine) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir ds;
  fs::copy_file(shared_dir() / "data/robometer/scripts/example_videos/soar_put_green_stick_in_brown_bowl.mp4",
                ds / "a.mp4");
  auto rec = [](const std::string& id, const std::string& path) {
    return nlohmann::json{{"id", id},
                          {"task", "t"},
                          {"data_source", "s"},
                          {"video", {{"path", path}, {"from_s", 0.0}, {"to_s", nullptr}}},
                          {"num_frames", 32},
                          {"fps", 10.0},
                          {"quality_label", "successful"},
                          {"partial_success", nullptr},
                          {"is_robot", true}}
        .dump();
  };
  {
    std::ofstream r(ds / "trajectories.jsonl");
    r << rec("a", "a.mp4") << "\n"
      << rec("a", "a.mp4") << "\n"
      << rec("b", "../outside.mp4") << "\n"
      << rec("c", "/etc/hostname") << "\n"
      << R"({"id":"d"})"
      << "\n"
      << rec("e", "missing.mp4") << "\n";
    std::ofstream(ds / "manifest.json")
        << R"({"format":"robometer-manifest","version":1,"name":"v","num_trajectories":6})";
  }
  const std::string jsonl = (ds / "trajectories.jsonl").string();
  auto r = run_robometer("data validate --no-videos '" + ds.path().string() + "'");
  EXPECT_EQ(r.code, 1) << r.out;
  for (const std::string& want : std::vector<std::string>{
           jsonl + ":2: duplicate trajectory id 'a' (first at line 1)",
           jsonl + ":3: key 'video.path' (../outside.mp4) leaves the manifest directory",
           jsonl + ":4 ('c'): video /etc/hostname leaves the dataset directory", jsonl + ":5: missing key",
           jsonl + ":6 ('e'): " + (ds / "missing.mp4").string() + " does not exist", "4 trajectories",
           "5 problems"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;

  TempDir empty;
  std::ofstream(empty / "trajectories.jsonl");
  std::ofstream(empty / "manifest.json")
      << R"({"format":"robometer-manifest","version":1,"name":"v","num_trajectories":0})";
  r = run_robometer("data validate '" + empty.path().string() + "'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("the dataset is empty"), std::string::npos) << r.out;
}

// RBM shards carry no frame counts: `--no-probe` turns their rows into problems instead of writing a
// manifest no reader accepts.
TEST(CliIngest, RbmNoProbeNeedsFrameCounts) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  std::string why;
  if (!robometer::test::duckdb_available(why)) GTEST_SKIP() << "DuckDB oracle: " << why;
  TempDir ds, out;
  const std::string clip =
      (shared_dir() / "data/robometer/scripts/example_videos/soar_put_green_stick_in_brown_bowl.mp4")
          .string();
  ASSERT_TRUE(robometer::test::duckdb_write_parquet(
      ds / "shard-000.parquet", "SELECT * FROM (VALUES ('id-a', 'wave', '" + clip +
                                    "', 'successful')) t(id, task, frames, quality_label)"));
  auto r = run_robometer("ingest --format rbm '" + ds.path().string() + "' --out '" + out.path().string() +
                         "' --no-probe");
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("no usable trajectories"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(out / "trajectories.jsonl"));
  std::ifstream report(out / "ingest_report.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(report, line));
  EXPECT_NE(line.find("no frame count or fps"), std::string::npos) << line;
  r = run_robometer("ingest --format rbm '" + ds.path().string() + "' --out '" + out.path().string() + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("ingested 1 of 1 trajectories (32 frames)"), std::string::npos) << r.out;
}
