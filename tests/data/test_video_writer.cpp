// VideoWriter: H.264/MP4 written through libavcodec decodes back to the same frames, in order.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "common/test_util.h"
#include "data/video_fixtures.h"
#include "robometer/core/error.h"
#include "robometer/data/video_reader.h"
#include "robometer/data/video_support.h"
#include "robometer/data/video_writer.h"

namespace robometer::data {
namespace {

namespace fs = std::filesystem;

void write_index_video(const fs::path& path, int n, double fps = 10) {
  VideoWriter w(path.string(), test::kIndexW, test::kIndexH, fps);
  for (int i = 0; i < n; ++i) w.write(test::index_pattern_frame(i).data());
  EXPECT_EQ(w.frames_written(), n);
  w.close();
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(VideoWriter, DecodesToTheSameFramesInOrder) {
  if (!kVideoSupported) GTEST_SKIP() << "built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)";
  test::TempDir dir;
  const fs::path file = dir / "index.mp4";
  write_index_video(file, 13);
  VideoReader r(file.string());
  EXPECT_EQ(r.codec_name(), "h264");
  ASSERT_EQ(r.num_frames(), 13);
  EXPECT_NEAR(r.fps(), 10.0, 1e-6);
  EXPECT_EQ(r.width(), test::kIndexW);
  EXPECT_EQ(r.height(), test::kIndexH);
  std::vector<int64_t> all(13);
  for (int i = 0; i < 13; ++i) all[i] = i;
  const at::Tensor frames = r.frames(all);
  for (int i = 0; i < 13; ++i) {
    const at::Tensor f = frames[i].contiguous();
    EXPECT_EQ(test::decode_index_pattern(f.data_ptr<uint8_t>(), test::kIndexW, test::kIndexH), i)
        << "frame " << i;
  }
}

TEST(VideoWriter, FfprobeCountsEveryFrame) {
  if (!kVideoSupported) GTEST_SKIP() << "built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)";
  if (std::system("ffprobe -version >/dev/null 2>&1") != 0) GTEST_SKIP() << "ffprobe not installed";
  test::TempDir dir;
  const fs::path file = dir / "v.mp4";
  write_index_video(file, 21, 25);
  const std::string cmd =
      "ffprobe -v error -count_frames -select_streams v:0 -show_entries "
      "stream=nb_read_frames,codec_name,pix_fmt -of csv=p=0 '" +
      file.string() + "'";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256] = {0};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  EXPECT_EQ(std::string(buf, n), "h264,yuv420p,21\n");
}

TEST(VideoWriter, SameFramesGiveSameBytes) {
  if (!kVideoSupported) GTEST_SKIP() << "built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)";
  test::TempDir dir;
  write_index_video(dir / "a.mp4", 6);
  write_index_video(dir / "b.mp4", 6);
  const std::string a = slurp(dir / "a.mp4"), b = slurp(dir / "b.mp4");
  EXPECT_GT(a.size(), 100u);
  EXPECT_EQ(a, b);
}

TEST(VideoWriter, TensorFramesAndErrors) {
  if (!kVideoSupported) GTEST_SKIP() << "built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)";
  test::TempDir dir;
  {
    VideoWriter w((dir / "t.mp4").string(), 32, 16, 10);
    w.write(at::full({16, 32, 3}, 200, at::kByte));
    // A transposed (non-contiguous) view is accepted.
    w.write(at::zeros({32, 16, 3}, at::kByte).transpose(0, 1));
    EXPECT_THROW(w.write(at::zeros({16, 32, 4}, at::kByte)), Error);
    EXPECT_THROW(w.write(at::zeros({16, 32, 3}, at::kFloat)), Error);
    w.close();
    EXPECT_THROW(w.write(at::zeros({16, 32, 3}, at::kByte)), Error);
    w.close();  // idempotent
  }
  VideoReader r((dir / "t.mp4").string());
  EXPECT_EQ(r.num_frames(), 2);
  EXPECT_THROW(VideoWriter((dir / "odd.mp4").string(), 33, 16, 10), ConfigError);
  EXPECT_THROW(VideoWriter((dir / "fps.mp4").string(), 32, 16, 0), ConfigError);
  EXPECT_THROW(VideoWriter((dir / "no/such/dir/v.mp4").string(), 32, 16, 10), Error);
  EXPECT_FALSE(fs::exists(dir / "no/such/dir/v.mp4"));
}

}  // namespace
}  // namespace robometer::data
