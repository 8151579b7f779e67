#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/data/manifest.h"

using namespace robometer::data;
namespace fs = std::filesystem;

namespace {

void touch(const fs::path& p, const std::string& bytes = "x") {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << bytes;
}

std::vector<Trajectory> two_trajectories(const fs::path& dir, const fs::path& outside) {
  touch(dir / "videos/a.mp4", "abc");
  touch(outside);
  Trajectory a;
  a.id = "a";
  a.task = "pick up the cup";
  a.data_source = "lab";
  a.video.path = (dir / "videos/a.mp4").string();
  a.num_frames = 40;
  a.fps = 10;
  Trajectory b = a;
  b.id = "b";
  b.video.path = outside.string();
  b.video.from_s = 1.5;
  b.video.to_s = 3.0;
  b.quality = Quality::Failure;
  b.partial_success = 0.25f;
  b.is_robot = false;
  return {a, b};
}

// Writes a manifest dir by hand: header + the given jsonl lines.
fs::path hand_made(const robometer::test::TempDir& tmp, const std::string& header,
                   const std::vector<std::string>& lines) {
  fs::path d = tmp / "m";
  fs::create_directories(d);
  std::ofstream(d / "manifest.json") << header;
  std::ofstream out(d / "trajectories.jsonl");
  for (const auto& l : lines) out << l << "\n";
  return d;
}

const char* kHeader1 = R"({"format":"robometer-manifest","version":1,"name":"t","num_trajectories":1})";
const char* kGood =
    R"({"id":"a","task":"t","data_source":"s","video":{"path":"a.mp4","from_s":0,"to_s":null},)"
    R"("num_frames":10,"fps":10.0,"quality_label":"successful","partial_success":null,"is_robot":true})";

std::string error_of(const fs::path& dir) {
  try {
    read_manifest(dir.string());
  } catch (const robometer::FormatError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string with(std::string rec, const std::string& from, const std::string& to) {
  auto p = rec.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return rec.replace(p, from.size(), to);
}

}  // namespace

TEST(Manifest, RoundTrip) {
  robometer::test::TempDir tmp;
  auto trajs = two_trajectories(tmp / "ds", tmp / "elsewhere/b.mp4");
  write_manifest((tmp / "ds").string(), "demo", trajs, {{"tool", "test"}});
  EXPECT_TRUE(fs::exists(tmp / "ds/manifest.json"));
  for (const auto& e : fs::directory_iterator(tmp / "ds"))  // no temp files left behind
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  // The path under the manifest dir is stored relative, the other absolute.
  std::ifstream in(tmp / "ds/trajectories.jsonl");
  std::string line;
  std::getline(in, line);
  EXPECT_NE(line.find("\"path\":\"videos/a.mp4\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"video_size\":3"), std::string::npos) << line;

  Manifest m = read_manifest((tmp / "ds").string());
  EXPECT_EQ(m.name, "demo");
  EXPECT_EQ(m.source["tool"], "test");
  ASSERT_EQ(m.trajectories.size(), 2u);
  const auto& a = m.trajectories[0];
  const auto& b = m.trajectories[1];
  EXPECT_EQ(a.video.path, (tmp / "ds/videos/a.mp4").lexically_normal().string());
  EXPECT_EQ(a.task, "pick up the cup");
  EXPECT_EQ(a.num_frames, 40);
  EXPECT_EQ(a.quality, Quality::Successful);
  EXPECT_FALSE(a.partial_success);
  EXPECT_EQ(a.video.to_s, -1.0);
  EXPECT_EQ(b.video.path, (tmp / "elsewhere/b.mp4").string());
  EXPECT_EQ(b.video.from_s, 1.5);
  EXPECT_EQ(b.video.to_s, 3.0);
  EXPECT_EQ(b.quality, Quality::Failure);
  ASSERT_TRUE(b.partial_success);
  EXPECT_FLOAT_EQ(*b.partial_success, 0.25f);
  EXPECT_FALSE(b.is_robot);
}

TEST(Manifest, WriteRefusesMissingVideo) {
  robometer::test::TempDir tmp;
  Trajectory a;
  a.id = "a";
  a.video.path = (tmp / "missing.mp4").string();
  a.num_frames = 1;
  a.fps = 1;
  EXPECT_THROW(write_manifest((tmp / "ds").string(), "x", {a}), robometer::Error);
  EXPECT_FALSE(fs::exists(tmp / "ds/manifest.json"));
}

TEST(Manifest, Quality) {
  EXPECT_EQ(parse_quality("success"), Quality::Successful);
  EXPECT_EQ(parse_quality("failed"), Quality::Failure);
  EXPECT_EQ(parse_quality("suboptimal"), Quality::Suboptimal);
  EXPECT_THROW(parse_quality("meh"), robometer::Error);
  EXPECT_STREQ(quality_name(Quality::Failure), "failure");
}

TEST(Manifest, GoodHandMadeRecordReads) {
  robometer::test::TempDir tmp;
  auto d = hand_made(tmp, kHeader1, {kGood, ""});  // a trailing blank line is fine
  Manifest m = read_manifest(d.string());
  ASSERT_EQ(m.trajectories.size(), 1u);
  EXPECT_EQ(m.trajectories[0].video.path, (fs::absolute(d) / "a.mp4").lexically_normal().string());
}

TEST(Manifest, BadRecordsNameFileAndLine) {
  robometer::test::TempDir tmp;
  const std::string header2 = with(kHeader1, "\"num_trajectories\":1", "\"num_trajectories\":2");
  struct Case {
    std::string record, expect;
  };
  std::vector<Case> cases{
      {with(kGood, R"("task":"t",)", ""), "missing key 'task'"},
      {with(kGood, R"("num_frames":10)", R"("num_frames":"10")"), "'num_frames' must be an integer"},
      {with(kGood, R"("quality_label":"successful")", R"("quality_label":"great")"),
       "unknown quality label 'great'"},
      {with(kGood, R"("partial_success":null)", R"("partial_success":1.5)"),
       "partial_success' must be null or in [0,1]"},
      {with(kGood, R"("is_robot":true)", R"("is_robot":1)"), "'is_robot' must be a boolean"},
      {with(kGood, R"("num_frames":10)", R"("num_frames":0)"), "'num_frames' must be positive"},
      {"{not json", "invalid JSON"},
  };
  for (const auto& c : cases) {
    auto d = hand_made(tmp, header2, {kGood, c.record});
    std::string err = error_of(d);
    EXPECT_NE(err.find("trajectories.jsonl:2"), std::string::npos) << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << "want '" << c.expect << "' in: " << err;
  }
}

TEST(Manifest, BadHeaders) {
  robometer::test::TempDir tmp;
  auto d = hand_made(tmp, with(kHeader1, "\"version\":1", "\"version\":7"), {kGood});
  EXPECT_NE(error_of(d).find("unknown version 7"), std::string::npos) << error_of(d);
  d = hand_made(tmp, with(kHeader1, "robometer-manifest", "other"), {kGood});
  EXPECT_NE(error_of(d).find("format"), std::string::npos);
  d = hand_made(tmp, with(kHeader1, "\"num_trajectories\":1", "\"num_trajectories\":3"), {kGood});
  EXPECT_NE(error_of(d).find("num_trajectories is 3"), std::string::npos) << error_of(d);
  EXPECT_NE(error_of(tmp / "absent").find("cannot open"), std::string::npos);
}
