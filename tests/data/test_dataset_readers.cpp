// Dataset readers (LeRobot v2.1/v3.0, RBM, folder) and probing, on the real fixtures in
// ../shared/data and on synthetic datasets whose videos encode their frame numbers.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "common/test_util.h"
#include "data/video_fixtures.h"
#include "robometer/core/error.h"
#include "robometer/data/dataset_readers.h"
#include "robometer/data/manifest.h"
#include "robometer/data/video_reader.h"
#include "robometer/io/parquet.h"

namespace {

namespace fs = std::filesystem;
namespace rd = robometer::data;
using robometer::test::shared_dir;
using robometer::test::source_dir;
using robometer::test::TempDir;

using robometer::test::duckdb_available;

#define REQUIRE_DUCKDB()                                                    \
  do {                                                                      \
    std::string why_;                                                       \
    if (!duckdb_available(why_)) GTEST_SKIP() << "DuckDB oracle: " << why_; \
  } while (0)

// DuckDB writes `select` to `out`.
bool duckdb_write(const fs::path& out, const std::string& select) {
  return robometer::test::duckdb_write_parquet(out, select);
}

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

TEST(EpisodeList, Parses) {
  EXPECT_EQ(rd::parse_episode_list("3"), (std::vector<int64_t>{3}));
  EXPECT_EQ(rd::parse_episode_list("5-7,1,6"), (std::vector<int64_t>{1, 5, 6, 7}));
  EXPECT_THROW(rd::parse_episode_list("a"), robometer::ConfigError);
  EXPECT_THROW(rd::parse_episode_list("7-5"), robometer::ConfigError);
  EXPECT_THROW(rd::parse_episode_list(""), robometer::ConfigError);
}

TEST(LeRobotV21, G1MissingVideosAreReportedNotDropped) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  const fs::path root = shared_dir() / "data/G1-policy-train";
  rd::DatasetScan scan = rd::scan_lerobot(root.string());
  EXPECT_EQ(scan.format, "lerobot-v2.1");
  ASSERT_EQ(scan.trajectories.size(), 3u);
  EXPECT_EQ(scan.problems.size(), 97u);  // metadata lists 100 episodes, 3 videos exist
  for (const auto& p : scan.problems) EXPECT_EQ(p.reason, "video file is missing");
  rd::ProbeSummary s = rd::probe_trajectories(scan, {2, nullptr});
  EXPECT_EQ(s.files, 3u);
  ASSERT_EQ(scan.trajectories.size(), 3u);
  // Frame counts from the videos must equal the parquet row counts (an independent source).
  for (const auto& t : scan.trajectories) {
    const std::string ep = t.id.substr(t.id.rfind('_') + 1);
    char name[64];
    std::snprintf(name, sizeof name, "data/chunk-000/episode_%06d.parquet", std::stoi(ep));
    robometer::io::ParquetFile pf((root / name).string());
    EXPECT_EQ(t.num_frames, pf.num_rows()) << t.id;
    EXPECT_EQ(t.task, "Pick up the yellow bottle on the table.");
    EXPECT_EQ(t.quality, rd::Quality::Successful);
    EXPECT_NEAR(t.fps, 30.0, 1e-6);
  }
  // Episode filter and camera choice.
  rd::IngestOptions o;
  o.episodes = {29, 31};
  o.cameras = {"observation.images.cam_high"};
  rd::DatasetScan some = rd::scan_lerobot(root.string(), o);
  EXPECT_EQ(some.trajectories.size(), 1u);
  EXPECT_EQ(some.problems.size(), 1u);
  o.cameras = {"no_such_camera"};
  EXPECT_THROW(rd::scan_lerobot(root.string(), o), robometer::ConfigError);
}

TEST(LeRobotV30, RerunMetadataWithoutVideos) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  const fs::path root = shared_dir() / "data/rerun/tests/assets/lerobot/v30_apple_storage";
  rd::DatasetScan scan = rd::scan_lerobot(root.string());
  EXPECT_EQ(scan.format, "lerobot-v3.0");
  EXPECT_TRUE(scan.trajectories.empty());
  ASSERT_EQ(scan.problems.size(), 3u);  // 3 episodes, the mp4 is not in the fixture
  for (const auto& p : scan.problems) EXPECT_EQ(p.reason, "video file is missing");
  bool frames_note = false;
  for (const auto& n : scan.notes)
    frames_note |=
        n.find("total_frames is 14983") != std::string::npos && n.find("sum to 899") != std::string::npos;
  EXPECT_TRUE(frames_note) << "info.json's total_frames (14983) vs 899 rows must be reported";
}

// Synthetic v3.0: several episodes per mp4, DuckDB-written episode index; frame-exact windows.
TEST(LeRobotV30, SyntheticSharedFilesAreFrameExact) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  REQUIRE_DUCKDB();
  TempDir dir;
  const std::string key = "observation.images.top";
  const std::vector<std::vector<int>> files = {{7, 12, 9}, {5, 6}};  // episode lengths per file
  std::string rows;
  int ep = 0;
  std::vector<int> first_global;  // frame number encoded in each episode's first frame
  for (size_t f = 0; f < files.size(); ++f) {
    int total = 0;
    for (int n : files[f]) total += n;
    const fs::path mp4 = dir / ("videos/" + key + "/chunk-000/file-00" + std::to_string(f) + ".mp4");
    fs::create_directories(mp4.parent_path());
    ASSERT_TRUE(robometer::test::make_index_video(mp4, total, robometer::test::h264_args(4), 10));
    int start = 0;
    for (int n : files[f]) {
      if (!rows.empty()) rows += " UNION ALL ";
      rows += "SELECT " + std::to_string(ep) + "::BIGINT AS episode_index, ['task " + std::to_string(ep % 2) +
              "'] AS tasks, " + std::to_string(n) + "::BIGINT AS length, 0::BIGINT AS \"videos/" + key +
              "/chunk_index\", " + std::to_string(f) + "::BIGINT AS \"videos/" + key + "/file_index\", " +
              std::to_string(start / 10.0) + "::DOUBLE AS \"videos/" + key + "/from_timestamp\", " +
              std::to_string((start + n) / 10.0) + "::DOUBLE AS \"videos/" + key + "/to_timestamp\"";
      first_global.push_back(start);
      start += n;
      ++ep;
    }
  }
  fs::create_directories(dir / "meta/episodes/chunk-000");
  ASSERT_TRUE(
      duckdb_write(dir / "meta/episodes/chunk-000/file-000.parquet", rows + " ORDER BY episode_index"));
  write_text(dir / "meta/info.json",
             R"({"codebase_version":"v3.0","fps":10,"total_episodes":5,"total_frames":39,)"
             R"("video_path":"videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",)"
             R"("features":{"observation.images.top":{"dtype":"video"},"action":{"dtype":"float32"}}})");
  rd::DatasetScan scan = rd::scan_lerobot(dir.path().string());
  ASSERT_EQ(scan.trajectories.size(), 5u);
  EXPECT_TRUE(scan.problems.empty());
  EXPECT_TRUE(scan.notes.empty());
  rd::ProbeSummary s = rd::probe_trajectories(scan, {2, nullptr});
  EXPECT_EQ(s.files, 2u);  // each shared file is opened once
  ASSERT_EQ(scan.trajectories.size(), 5u);
  EXPECT_TRUE(scan.notes.empty()) << scan.notes.front();
  const std::vector<int> lengths = {7, 12, 9, 5, 6};
  for (size_t i = 0; i < 5; ++i) {
    const auto& t = scan.trajectories[i];
    EXPECT_EQ(t.num_frames, lengths[i]) << t.id;
    EXPECT_EQ(t.task, "task " + std::to_string(i % 2));
    rd::VideoReaderOptions vo;
    vo.window_from_s = t.video.from_s;
    vo.window_to_s = t.video.to_s;
    rd::VideoReader v(t.video.path, vo);
    ASSERT_EQ(v.num_frames(), t.num_frames) << t.id;
    std::vector<int64_t> idx(static_cast<size_t>(t.num_frames));
    for (size_t k = 0; k < idx.size(); ++k) idx[k] = static_cast<int64_t>(k);
    at::Tensor fr = v.frames(idx);
    for (size_t k = 0; k < idx.size(); ++k) {
      at::Tensor img = fr[static_cast<int64_t>(k)].contiguous();
      EXPECT_EQ(robometer::test::decode_index_pattern(img.data_ptr<uint8_t>(), v.width(), v.height()),
                first_global[i] + static_cast<int>(k))
          << t.id << " frame " << k;
    }
  }
}

TEST(Rbm, DuckDBShard) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  REQUIRE_DUCKDB();
  TempDir dir;
  fs::create_directories(dir / "trajectory_0000");
  fs::create_directories(dir / "trajectory_0001");
  ASSERT_TRUE(
      robometer::test::make_index_video(dir / "trajectory_0000/a.mp4", 6, robometer::test::h264_args(4), 10));
  ASSERT_TRUE(
      robometer::test::make_index_video(dir / "trajectory_0001/b.mp4", 9, robometer::test::h264_args(4), 10));
  fs::create_directories(dir / "data");
  ASSERT_TRUE(duckdb_write(
      dir / "data/shard-000.parquet",
      "SELECT * FROM (VALUES "
      "('id-a', 'open the drawer', [0.1, 0.2]::FLOAT[], 'libero', 'trajectory_0000/a.mp4', true, "
      "'successful', NULL::FLOAT), "
      "('id-b', 'close the drawer', [0.3]::FLOAT[], 'roboarena', 'trajectory_0001/b.mp4', true, 'failure', "
      "0.25::FLOAT), "
      "('id-c', 'wave', [0.5]::FLOAT[], 'egodex', 'trajectory_0002/missing.mp4', false, 'suboptimal', "
      "0.5::FLOAT)) "
      "t(id, task, lang_vector, data_source, frames, is_robot, quality_label, partial_success)"));
  rd::DatasetScan scan = rd::scan_rbm(dir.path().string());
  ASSERT_EQ(scan.trajectories.size(), 2u);
  ASSERT_EQ(scan.problems.size(), 1u);
  EXPECT_EQ(scan.problems[0].id, "id-c");
  rd::probe_trajectories(scan);
  const auto& a = scan.trajectories[0];
  const auto& b = scan.trajectories[1];
  EXPECT_EQ(a.id, "id-a");
  EXPECT_EQ(a.task, "open the drawer");
  EXPECT_EQ(a.data_source, "libero");
  EXPECT_FALSE(a.partial_success.has_value());
  EXPECT_EQ(a.quality, rd::Quality::Successful);
  EXPECT_EQ(a.num_frames, 6);
  EXPECT_EQ(b.quality, rd::Quality::Failure);
  ASSERT_TRUE(b.partial_success.has_value());
  EXPECT_FLOAT_EQ(*b.partial_success, 0.25f);
  EXPECT_EQ(b.num_frames, 9);
}

TEST(Folder, RobometerExampleClips) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  const fs::path clips = shared_dir() / "data/robometer/scripts/example_videos";
  TempDir dir;
  for (const char* f : {"soar_put_green_stick_in_brown_bowl.mp4", "berkeley_rpt_stack_cup.mp4",
                        "jaco_play_pick_up_green_cup.mp4"})
    fs::create_symlink(clips / f, dir / f);
  // Tasks from the clips' SOURCES.md; frame counts there: 32, 32, 64.
  write_text(
      dir / "videos.jsonl",
      R"({"path":"soar_put_green_stick_in_brown_bowl.mp4","task":"Put green stick in brown bowl","quality_label":"successful","data_source":"soar"})"
      "\n"
      R"({"path":"berkeley_rpt_stack_cup.mp4","task":"Pick up the yellow cup and stack it on the other cup","quality_label":"successful","partial_success":0.9})"
      "\n"
      R"({"path":"jaco_play_pick_up_green_cup.mp4","task":"pick up green cup","quality_label":"suboptimal"})"
      "\n"
      R"({"path":"not_there.mp4","task":"x","quality_label":"failure"})"
      "\n");
  rd::DatasetScan scan = rd::scan_folder(dir.path().string());
  ASSERT_EQ(scan.trajectories.size(), 3u);
  ASSERT_EQ(scan.problems.size(), 1u);
  rd::probe_trajectories(scan, {2, nullptr});
  ASSERT_EQ(scan.trajectories.size(), 3u);
  std::map<std::string, int64_t> frames;
  for (const auto& t : scan.trajectories) frames[t.id] = t.num_frames;
  EXPECT_EQ(frames["soar_put_green_stick_in_brown_bowl"], 32);
  EXPECT_EQ(frames["berkeley_rpt_stack_cup"], 32);
  EXPECT_EQ(frames["jaco_play_pick_up_green_cup"], 64);
  EXPECT_EQ(scan.trajectories[0].data_source, "soar");
  EXPECT_FLOAT_EQ(scan.trajectories[1].partial_success.value(), 0.9f);
  EXPECT_EQ(scan.trajectories[2].quality, rd::Quality::Suboptimal);
  // The same folder described by CSV (quoted field with a comma).
  fs::remove(dir / "videos.jsonl");
  write_text(dir / "videos.csv",
             "path,task,quality_label,partial_success\n"
             "soar_put_green_stick_in_brown_bowl.mp4,\"Put green stick, in brown bowl\",failure,\n"
             "jaco_play_pick_up_green_cup.mp4,pick up green cup,successful,1.0\n");
  scan = rd::scan_folder(dir.path().string());
  ASSERT_EQ(scan.trajectories.size(), 2u);
  EXPECT_EQ(scan.trajectories[0].task, "Put green stick, in brown bowl");
  EXPECT_EQ(scan.trajectories[0].quality, rd::Quality::Failure);
  EXPECT_FALSE(scan.trajectories[0].partial_success.has_value());
  write_text(dir / "videos.csv", "path,task,quality_label\nonly_two,fields\n");
  EXPECT_THROW(rd::scan_folder(dir.path().string()), robometer::FormatError);
}

// 10,000 LeRobot v3.0 episodes in 4 shared mp4 files: prints the scan + probe time.
// The `tasks` column as a plain string column is read; any other type, and an info.json value
// of the wrong type, is an error naming the file and the column/key (it was a segfault / a bare
// nlohmann type_error).
TEST(LeRobotV30, TasksColumnShapesAndInfoTypes) {
  REQUIRE_DUCKDB();
  TempDir dir;
  const std::string key = "cam";
  const fs::path mp4 = dir / "videos/cam/chunk-000/file-000.mp4";
  write_text(mp4, "not decoded by the scan");
  auto episodes = [&](const std::string& tasks_expr) {
    return "SELECT i AS episode_index, " + tasks_expr +
           " AS tasks, 2::BIGINT AS length, "
           "0::BIGINT AS \"videos/cam/chunk_index\", 0::BIGINT AS \"videos/cam/file_index\", "
           "(i * 0.2)::DOUBLE AS \"videos/cam/from_timestamp\", (i * 0.2 + 0.2)::DOUBLE AS "
           "\"videos/cam/to_timestamp\" FROM range(3) t(i)";
  };
  const fs::path pq = dir / "meta/episodes/chunk-000/file-000.parquet";
  fs::create_directories(pq.parent_path());
  auto info = [&](const std::string& fps) {
    write_text(dir / "meta/info.json", R"({"codebase_version":"v3.0","fps":)" + fps +
                                           R"(,"total_episodes":3,)"
                                           R"("features":{"cam":{"dtype":"video"}}})");
  };
  info("10");
  ASSERT_TRUE(duckdb_write(pq, episodes("'task ' || i")));  // plain strings
  rd::DatasetScan scan = rd::scan_lerobot(dir.path().string());
  ASSERT_EQ(scan.trajectories.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(scan.trajectories[i].task, "task " + std::to_string(i));

  ASSERT_TRUE(duckdb_write(pq, episodes("[i]")));  // list<int>: not task text
  robometer::test::expect_throw_contains([&] { rd::scan_lerobot(dir.path().string()); },
                                         {pq.filename().string(), "column 'tasks' must hold strings"});

  ASSERT_TRUE(duckdb_write(pq, episodes("['task ' || i]")));
  info("\"10\"");
  robometer::test::expect_throw_contains([&] { rd::scan_lerobot(dir.path().string()); },
                                         {"meta/info.json", "key 'fps'", "\"10\"", "wrong type"});
}

TEST(LeRobotV30, SlowTenThousandEpisodes) {
  if (!std::getenv("ROBOMETER_SLOW_TESTS")) GTEST_SKIP() << "set ROBOMETER_SLOW_TESTS=1";
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  REQUIRE_DUCKDB();
  TempDir dir;
  const std::string key = "cam";
  const int per_file = 2500, frames_per_ep = 2;
  for (int f = 0; f < 4; ++f) {
    const fs::path mp4 = dir / ("videos/cam/chunk-000/file-00" + std::to_string(f) + ".mp4");
    fs::create_directories(mp4.parent_path());
    ASSERT_TRUE(
        robometer::test::make_index_video(mp4, per_file * frames_per_ep, robometer::test::h264_args(30), 10));
  }
  fs::create_directories(dir / "meta/episodes/chunk-000");
  ASSERT_TRUE(
      duckdb_write(dir / "meta/episodes/chunk-000/file-000.parquet",
                   "SELECT i AS episode_index, ['task ' || (i % 7)] AS tasks, 2::BIGINT AS length, 0::BIGINT "
                   "AS \"videos/cam/chunk_index\", "
                   "(i // 2500)::BIGINT AS \"videos/cam/file_index\", ((i % 2500) * 0.2)::DOUBLE AS "
                   "\"videos/cam/from_timestamp\", "
                   "((i % 2500) * 0.2 + 0.2)::DOUBLE AS \"videos/cam/to_timestamp\" FROM range(10000) t(i)"));
  write_text(dir / "meta/info.json",
             R"({"codebase_version":"v3.0","fps":10,"total_episodes":10000,"total_frames":20000,)"
             R"("video_path":"videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",)"
             R"("features":{"cam":{"dtype":"video"}}})");
  const auto t0 = std::chrono::steady_clock::now();
  rd::DatasetScan scan = rd::scan_lerobot(dir.path().string());
  const auto t1 = std::chrono::steady_clock::now();
  rd::ProbeSummary s = rd::probe_trajectories(scan, {2, nullptr});
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.files, 4u);
  ASSERT_EQ(scan.trajectories.size(), 10000u);
  EXPECT_TRUE(scan.problems.empty());
  for (const auto& t : scan.trajectories) ASSERT_EQ(t.num_frames, 2) << t.id;
  std::printf("10000 episodes: scan %.3f s, probe %.3f s (%zu files)\n",
              std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count(),
              s.files);
}

// Issue 21 item 14: a partial_success written as plain SQL literals (0.1, 0.5 are DECIMAL(2,1)
// in DuckDB) is read with its scale, not as the stored integers 1 and 5.
TEST(Rbm, DecimalPartialSuccessIsScaled) {
  REQUIRE_DUCKDB();
  TempDir dir;
  for (const char* v : {"a.mp4", "b.mp4", "c.mp4"})
    write_text(dir / v, "only its existence is checked by the scan");
  ASSERT_TRUE(duckdb_write(
      dir / "shard.parquet",
      "SELECT * FROM (VALUES ('id-a', 'stack', 'a.mp4', 'failure', 0.1), ('id-b', 'stack', 'b.mp4', "
      "'suboptimal', 0.5), "
      "('id-c', 'stack', 'c.mp4', 'successful', 1.0)) t(id, task, frames, quality_label, partial_success)"));
  ASSERT_EQ(robometer::io::ParquetFile((dir / "shard.parquet").string())
                .find_column("partial_success")
                ->decimal_scale,
            1);
  rd::DatasetScan scan = rd::scan_rbm(dir.path().string());
  EXPECT_TRUE(scan.problems.empty()) << scan.problems.front().reason;
  ASSERT_EQ(scan.trajectories.size(), 3u);
  const std::vector<float> want = {0.1f, 0.5f, 1.0f};
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(scan.trajectories[i].partial_success.has_value());
    EXPECT_EQ(*scan.trajectories[i].partial_success, want[i]) << scan.trajectories[i].id;
  }
}

// Issue 21 item 17: a column of the wrong type in one shard of many names that shard.
TEST(Rbm, ColumnTypeErrorsNameTheShard) {
  REQUIRE_DUCKDB();
  TempDir dir;
  write_text(dir / "a.mp4", "x");
  const std::string good =
      "SELECT 'id-a' AS id, 'stack' AS task, 'a.mp4' AS frames, 'successful' AS quality_label";
  fs::create_directories(dir / "data");
  ASSERT_TRUE(duckdb_write(dir / "data/shard-000.parquet", good));
  ASSERT_TRUE(duckdb_write(dir / "data/shard-001.parquet",
                           "SELECT 'id-b' AS id, 'stack' AS task, 'a.mp4' AS frames, 1 AS quality_label"));
  ASSERT_TRUE(duckdb_write(dir / "data/shard-002.parquet", good));
  robometer::test::expect_throw_contains([&] { rd::scan_rbm(dir.path().string()); },
                                         {(dir / "data/shard-001.parquet").string(),
                                          "parquet column 'quality_label' (INT32): is not a string column"});
}

// Issue 21 item 14: LeRobot v3.0 windows stored as DECIMAL (plain literals) keep their scale,
// an unsigned episode_index reads as its value, and one above INT64_MAX is refused by name.
TEST(LeRobotV30, DecimalTimestampsAndUnsignedEpisodeIndex) {
  REQUIRE_DUCKDB();
  const std::string key = "observation.images.top";
  const auto dataset = [&](const TempDir& dir, const std::string& second_episode) {
    write_text(dir / ("videos/" + key + "/chunk-000/file-000.mp4"),
               "only its existence is checked by the scan");
    write_text(dir / "meta/info.json",
               R"({"codebase_version":"v3.0","fps":10,"total_episodes":2,"total_frames":13,)"
               R"("video_path":"videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",)"
               R"("features":{")" +
                   key + R"(":{"dtype":"video"}}})");
    const std::string cols = "episode_index, tasks, length, \"videos/" + key + "/chunk_index\", \"videos/" +
                             key + "/file_index\", \"videos/" + key + "/from_timestamp\", \"videos/" + key +
                             "/to_timestamp\"";
    fs::create_directories(dir / "meta/episodes/chunk-000");
    return duckdb_write(
        dir / "meta/episodes/chunk-000/file-000.parquet",
        "SELECT * FROM (VALUES (0::UBIGINT, ['pick'], 5, 0::UBIGINT, 0::UBIGINT, 0.0, 0.5), (" +
            second_episode + "::UBIGINT, ['place'], 8, 0::UBIGINT, 0::UBIGINT, 0.5, 1.3)) t(" + cols + ")");
  };
  TempDir dir;
  ASSERT_TRUE(dataset(dir, "1"));
  robometer::io::ParquetFile pf((dir / "meta/episodes/chunk-000/file-000.parquet").string());
  ASSERT_EQ(pf.find_column("videos/" + key + "/to_timestamp")->decimal_scale, 1);
  ASSERT_TRUE(pf.find_column("episode_index")->is_unsigned);
  rd::DatasetScan scan = rd::scan_lerobot(dir.path().string());
  EXPECT_TRUE(scan.problems.empty()) << scan.problems.front().reason;
  ASSERT_EQ(scan.trajectories.size(), 2u);
  EXPECT_EQ(scan.trajectories[0].video.from_s, 0.0);
  EXPECT_EQ(scan.trajectories[0].video.to_s, 0.5);
  EXPECT_EQ(scan.trajectories[1].video.from_s, 0.5);
  EXPECT_EQ(scan.trajectories[1].video.to_s, 1.3);
  EXPECT_EQ(scan.trajectories[1].task, "place");

  TempDir huge;
  ASSERT_TRUE(dataset(huge, "9223372036854775808"));  // 2^63
  robometer::test::expect_throw_contains(
      [&] { rd::scan_lerobot(huge.path().string()); },
      {(huge / "meta/episodes/chunk-000/file-000.parquet").string(), "'episode_index'", "row 1",
       "9223372036854775808 does not fit in a signed 64-bit integer"});
}

}  // namespace

// ------------------------------------------------------------------ streamed ingest (issue 17 item 3)

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> sorted_lines(const fs::path& p) {
  std::vector<std::string> lines;
  std::ifstream in(p);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// The in-memory path `ingest` took before streaming: the whole scan, probed, then written.
void ingest_in_memory(const std::string& format, const fs::path& src, const fs::path& out) {
  rd::DatasetScan scan = rd::scan_dataset(format, src.string());
  rd::probe_trajectories(scan, {2, nullptr});
  fs::create_directories(out);
  std::ofstream r(out / "ingest_report.jsonl");
  for (const auto& p : scan.problems) r << p.to_json().dump() << '\n';
  for (const auto& n : scan.notes) r << nlohmann::json{{"note", n}}.dump() << '\n';
  rd::write_manifest(out.string(), "x", scan.trajectories);
}

struct Streamed {
  size_t kept, problems, notes, files;
};
Streamed ingest_streamed(const std::string& format, const fs::path& src, const fs::path& out, size_t chunk) {
  rd::IngestWriter::Options o;
  o.threads = 2;
  o.chunk = chunk;
  rd::IngestWriter w(out.string(), o);
  rd::read_dataset(format, src.string(), {}, w);
  w.finish();
  w.commit("x", nlohmann::json::object());
  return {w.kept(), w.problems(), w.notes(), w.files_probed()};
}

}  // namespace

// The real G1 LeRobot v2.1 fixture (3 videos present, 97 missing): streamed in
// one chunk the files equal the in-memory path's byte for byte; in chunks of 2 records the manifest
// is the same and the report holds the same lines (problems of each chunk as they come).
TEST(IngestWriter, StreamedEqualsInMemoryOnG1) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  const fs::path src = shared_dir() / "data/G1-policy-train";
  TempDir mem, one, chunked;
  ingest_in_memory("lerobot", src, mem.path());
  const Streamed a = ingest_streamed("lerobot", src, one.path(), 8192);
  EXPECT_EQ(a.kept, 3u);
  EXPECT_EQ(a.problems, 97u);
  EXPECT_EQ(a.files, 3u);
  const std::string records = read_all(mem / "trajectories.jsonl");
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(read_all(one / "trajectories.jsonl"), records);
  EXPECT_EQ(read_all(one / "ingest_report.jsonl"), read_all(mem / "ingest_report.jsonl"));
  const Streamed b = ingest_streamed("lerobot", src, chunked.path(), 2);
  EXPECT_EQ(b.kept, 3u);
  EXPECT_EQ(b.problems, 97u);
  EXPECT_EQ(read_all(chunked / "trajectories.jsonl"), records);
  EXPECT_EQ(sorted_lines(chunked / "ingest_report.jsonl"), sorted_lines(mem / "ingest_report.jsonl"));
  // Notes (if any) still come after every problem.
  const auto lines = [&] {
    std::vector<std::string> v;
    std::ifstream in(chunked / "ingest_report.jsonl");
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
  }();
  ASSERT_EQ(lines.size(), b.problems + b.notes);
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(nlohmann::json::parse(lines[i]).contains("note"), i >= b.problems) << lines[i];
  EXPECT_EQ(rd::read_manifest_header(chunked.path().string()).num_trajectories, 3);
}

// v3.0 episodes of one mp4 split across chunks: the probe cache opens each file once, and the
// windows' frame counts are those of the in-memory path.
TEST(IngestWriter, SharedFilesAcrossChunksAreProbedOnce) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  REQUIRE_DUCKDB();
  TempDir dir;
  for (int f = 0; f < 3; ++f) {
    const fs::path mp4 = dir / ("videos/cam/chunk-000/file-00" + std::to_string(f) + ".mp4");
    fs::create_directories(mp4.parent_path());
    ASSERT_TRUE(robometer::test::make_index_video(mp4, 21, robometer::test::h264_args(4), 10));
  }
  fs::create_directories(dir / "meta/episodes/chunk-000");
  // 7 episodes of 3 frames per file; episode 20 claims 2 frames (a note after probing).
  ASSERT_TRUE(
      duckdb_write(dir / "meta/episodes/chunk-000/file-000.parquet",
                   "SELECT i AS episode_index, ['task ' || (i % 3)] AS tasks, "
                   "(CASE WHEN i = 20 THEN 2 ELSE 3 END)::BIGINT AS length, 0::BIGINT AS "
                   "\"videos/cam/chunk_index\", (i // 7)::BIGINT AS \"videos/cam/file_index\", "
                   "((i % 7) * 0.3)::DOUBLE AS \"videos/cam/from_timestamp\", "
                   "((i % 7) * 0.3 + 0.3)::DOUBLE AS \"videos/cam/to_timestamp\" FROM range(21) t(i)"));
  write_text(dir / "meta/info.json", R"({"codebase_version":"v3.0","fps":10,"total_episodes":21,)"
                                     R"("features":{"cam":{"dtype":"video"}}})");
  TempDir mem, streamed;
  ingest_in_memory("lerobot", dir.path(), mem.path());
  const Streamed s = ingest_streamed("lerobot", dir.path(), streamed.path(), 5);
  EXPECT_EQ(s.kept, 21u);
  EXPECT_EQ(s.problems, 0u);
  EXPECT_EQ(s.notes, 1u);
  EXPECT_EQ(s.files, 3u);  // not 7 (once per chunk that touches a file)
  EXPECT_EQ(read_all(streamed / "trajectories.jsonl"), read_all(mem / "trajectories.jsonl"));
  EXPECT_EQ(read_all(streamed / "ingest_report.jsonl"), read_all(mem / "ingest_report.jsonl"));
  rd::Manifest m = rd::read_manifest(streamed.path().string());
  ASSERT_EQ(m.trajectories.size(), 21u);
  for (const auto& t : m.trajectories) EXPECT_EQ(t.num_frames, 3) << t.id;
}

// A failed ingest leaves no trajectories.jsonl behind (temp file until commit).
TEST(IngestWriter, NoManifestWithoutCommit) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir out;
  {
    rd::IngestWriter w(out.path().string(), {});
    rd::read_dataset("lerobot", (shared_dir() / "data/G1-policy-train").string(), {}, w);
    w.finish();
  }
  EXPECT_FALSE(fs::exists(out / "trajectories.jsonl"));
  EXPECT_FALSE(fs::exists(out / "manifest.json"));
  EXPECT_TRUE(fs::exists(out / "ingest_report.jsonl"));
  for (const auto& e : fs::directory_iterator(out.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
}

// Notes are all in the report (after the problems), the first kNotesKept also in memory for the
// manifest header: a million metadata mismatches must not end up in manifest.json.
TEST(IngestWriter, NotesCappedInMemoryAllInReport) {
  TempDir out;
  rd::IngestWriter::Options o;
  o.chunk = 3;
  rd::IngestWriter w(out.path().string(), o);
  w.begin("folder", out.path().string(), -1);
  const size_t n = rd::IngestWriter::kNotesKept + 5;
  for (size_t i = 0; i < n; ++i) {
    w.note("note " + std::to_string(i));
    if (i % 100 == 0) w.problem({"id" + std::to_string(i), "p", "r"});
  }
  w.finish();
  EXPECT_EQ(w.notes(), n);
  ASSERT_EQ(w.first_notes().size(), rd::IngestWriter::kNotesKept);
  EXPECT_EQ(w.first_notes().back(), "note " + std::to_string(rd::IngestWriter::kNotesKept - 1));
  std::ifstream in(out / "ingest_report.jsonl");
  std::vector<nlohmann::json> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(nlohmann::json::parse(l));
  ASSERT_EQ(lines.size(), n + w.problems());
  EXPECT_EQ(w.problems(), 11u);
  for (size_t i = 0; i < w.problems(); ++i) EXPECT_FALSE(lines[i].contains("note")) << i;
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(lines[w.problems() + i]["note"], "note " + std::to_string(i));
}
