// `robometer data frames` through the real binary: raw RGB on stdout, .rgb and .npy files and
// PNGs all hold ffmpeg's own frames (checked byte for byte, PNGs decoded back by ffmpeg), on an
// AVI with B-frames (a stream class the reader once numbered wrong); errors name file and index.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "common/test_util.h"
#include "data/video_fixtures.h"

namespace fs = std::filesystem;
using robometer::test::TempDir;

namespace {

constexpr size_t kFrameBytes = 320 * 240 * 3;

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Frames `indices` of ffmpeg's full decode, back to back.
std::vector<uint8_t> pick(const std::vector<uint8_t>& all, const std::vector<int>& indices) {
  std::vector<uint8_t> out;
  for (int i : indices)
    out.insert(out.end(), all.begin() + static_cast<std::ptrdiff_t>(i * kFrameBytes),
               all.begin() + static_cast<std::ptrdiff_t>((i + 1) * kFrameBytes));
  return out;
}

bool ffmpeg(const std::string& args) {
  return robometer::test::run_command("ffmpeg -hide_banner -loglevel error -y " + args);
}

int exit_status(int rc) { return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1; }

std::string binary() {
  const char* bin = std::getenv("ROBOMETER_BINARY");
  return bin ? bin : "robometer";
}

}  // namespace

TEST(CliDataFrames, WritesFfmpegsFramesAsRgbNpyAndPng) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  const fs::path clip = dir / "a.avi";
  ASSERT_TRUE(ffmpeg("-f lavfi -i testsrc2=size=320x240:rate=30:duration=2 -c:v mpeg4 -bf 2 '" +
                     clip.string() + "'"));
  ASSERT_TRUE(ffmpeg("-noautorotate -i '" + clip.string() +
                     "' -f rawvideo -pix_fmt rgb24 -fps_mode passthrough '" + (dir / "ffmpeg.rgb").string() +
                     "'"));
  const std::vector<uint8_t> all = read_bytes(dir / "ffmpeg.rgb");
  ASSERT_EQ(all.size(), 60 * kFrameBytes);
  const std::vector<uint8_t> want = pick(all, {0, 5, 9});
  const std::string base = "'" + binary() + "' data frames '" + clip.string() + "' --indices 0,5,9 ";

  // stdout
  ASSERT_EQ(exit_status(std::system(
                (base + "--out - > '" + (dir / "stdout.rgb").string() + "' 2>/dev/null").c_str())),
            0);
  EXPECT_EQ(read_bytes(dir / "stdout.rgb"), want);
  // one .rgb file, one .npy array
  auto r = robometer::test::run_robometer("data frames '" + clip.string() + "' --indices 0,5,9 --out '" +
                                          (dir / "f.rgb").string() + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("3 frame(s) of 320x240 RGB"), std::string::npos) << r.out;
  EXPECT_EQ(read_bytes(dir / "f.rgb"), want);
  r = robometer::test::run_robometer("data frames '" + clip.string() + "' --indices 0,5,9 --out '" +
                                     (dir / "f.npy").string() + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::vector<uint8_t> npy = read_bytes(dir / "f.npy");
  ASSERT_GT(npy.size(), want.size());
  const size_t header = npy.size() - want.size();
  EXPECT_EQ(header % 64, 0u);
  const std::string head(npy.begin(), npy.begin() + static_cast<std::ptrdiff_t>(header));
  EXPECT_EQ(head.substr(1, 5), "NUMPY");
  EXPECT_NE(head.find("'shape': (3, 240, 320, 3)"), std::string::npos) << head;
  EXPECT_NE(head.find("'descr': '|u1'"), std::string::npos) << head;
  EXPECT_TRUE(std::equal(want.begin(), want.end(), npy.begin() + static_cast<std::ptrdiff_t>(header)));
  // PNGs into a directory, decoded back by ffmpeg
  r = robometer::test::run_robometer("data frames '" + clip.string() + "' --indices 9,5 --out '" +
                                     (dir / "png").string() + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  for (int i : {5, 9}) {
    char name[32];
    std::snprintf(name, sizeof name, "frame_%06d.png", i);
    const fs::path png = dir / "png" / name, back = dir / (std::string(name) + ".rgb");
    ASSERT_TRUE(fs::exists(png)) << png;
    ASSERT_TRUE(ffmpeg("-i '" + png.string() + "' -f rawvideo -pix_fmt rgb24 '" + back.string() + "'"));
    EXPECT_EQ(read_bytes(back), pick(all, {i})) << name;
  }
  // the loader's resize: the short edge 120 → 160x120
  r = robometer::test::run_robometer("data frames '" + clip.string() + "' --indices 1 --resize 120 --out '" +
                                     (dir / "small.rgb").string() + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(read_bytes(dir / "small.rgb").size(), 160u * 120 * 3);
}

TEST(CliDataFrames, ErrorsNameTheFileAndTheIndex) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  const fs::path clip = dir / "a.mp4";
  ASSERT_TRUE(
      ffmpeg("-f lavfi -i testsrc2=size=64x48:rate=10:duration=1 -c:v libx264 '" + clip.string() + "'"));
  auto r = robometer::test::run_robometer("data frames '" + clip.string() + "' --indices 0,10 --out '" +
                                          (dir / "x.rgb").string() + "'");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(clip.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("frame index 10"), std::string::npos) << r.out;
  r = robometer::test::run_robometer("data frames '" + clip.string() + "' --indices 0,x --out '" +
                                     (dir / "x.rgb").string() + "'");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("'x' is not a frame index"), std::string::npos) << r.out;
  const fs::path text = dir / "not_a_video.mp4";
  std::ofstream(text) << "not a video\n";
  r = robometer::test::run_robometer("data frames '" + text.string() + "' --indices 0 --out -");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(text.string()), std::string::npos) << r.out;
}
