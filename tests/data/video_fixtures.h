// Test videos made on the fly with the `ffmpeg` CLI. Each frame of an "index video" encodes its
// own frame number as 16 black/white blocks (4×4 grid, one bit each), big enough that lossy
// codecs never flip a bit, so a test can check that frame i really is frame i.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace robometer::test {

// 256×192: 16 blocks of 64×48 pixels.
constexpr int kIndexW = 256;
constexpr int kIndexH = 192;

inline bool ffmpeg_cli_available() {
  static const bool ok = std::system("ffmpeg -hide_banner -version >/dev/null 2>&1") == 0;
  return ok;
}

#define ROBOMETER_REQUIRE_FFMPEG_CLI()                                              \
  do {                                                                              \
    if (!::robometer::test::ffmpeg_cli_available())                                 \
      GTEST_SKIP() << "the ffmpeg command-line tool is needed to make test videos"; \
  } while (0)

// RGB24 image (kIndexW × kIndexH) whose block b (row-major in the 4×4 grid) is white iff bit b
// of `index` is set.
inline std::vector<uint8_t> index_pattern_frame(int index) {
  std::vector<uint8_t> rgb(static_cast<size_t>(kIndexW) * kIndexH * 3);
  for (int y = 0; y < kIndexH; ++y)
    for (int x = 0; x < kIndexW; ++x) {
      const int bit = (y / (kIndexH / 4)) * 4 + x / (kIndexW / 4);
      const uint8_t v = ((index >> bit) & 1) ? 255 : 0;
      uint8_t* p = &rgb[(static_cast<size_t>(y) * kIndexW + x) * 3];
      p[0] = p[1] = p[2] = v;
    }
  return rgb;
}

// Reads the index back from an RGB24 HWC image of any size (the pattern scales with the
// image): mean of the central half of each block, thresholded at 128.
inline int decode_index_pattern(const uint8_t* rgb, int w, int h) {
  int index = 0;
  for (int bit = 0; bit < 16; ++bit) {
    const int bx = bit % 4, by = bit / 4;
    const int x0 = bx * w / 4 + w / 16, x1 = (bx + 1) * w / 4 - w / 16;
    const int y0 = by * h / 4 + h / 16, y1 = (by + 1) * h / 4 - h / 16;
    double sum = 0;
    int n = 0;
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x)
        for (int c = 0; c < 3; ++c, ++n) sum += rgb[(static_cast<size_t>(y) * w + x) * 3 + c];
    if (sum / n >= 128.0) index |= 1 << bit;
  }
  return index;
}

// Encodes frames 0..num_frames-1 of the index pattern at `fps` into `out` with
// `ffmpeg -f rawvideo ... -i - <encoder_args> out`. Returns false (and prints the command)
// when ffmpeg fails. `first_index` offsets the numbers written into the frames.
inline bool make_index_video(const std::filesystem::path& out, int num_frames,
                             const std::string& encoder_args, int fps = 10, int first_index = 0) {
  const std::string cmd = "SVT_LOG=1 ffmpeg -hide_banner -loglevel error -y -f rawvideo -pix_fmt rgb24 -s " +
                          std::to_string(kIndexW) + "x" + std::to_string(kIndexH) + " -r " +
                          std::to_string(fps) + " -i - " + encoder_args + " '" + out.string() + "'";
  FILE* pipe = popen(cmd.c_str(), "w");
  if (!pipe) return false;
  for (int i = 0; i < num_frames; ++i) {
    const auto rgb = index_pattern_frame(first_index + i);
    if (std::fwrite(rgb.data(), 1, rgb.size(), pipe) != rgb.size()) break;
  }
  const int rc = pclose(pipe);
  if (rc != 0 || !std::filesystem::exists(out)) {
    ADD_FAILURE() << "ffmpeg failed (" << rc << "): " << cmd;
    return false;
  }
  return true;
}

// Runs a shell command (ffmpeg, python3) and reports failure as a test failure.
inline bool run_command(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  if (rc != 0) ADD_FAILURE() << "command failed (" << rc << "): " << cmd;
  return rc == 0;
}

// Encoder arguments for the four codecs the reader must handle: small GOPs so random access
// really seeks, B-frames where the codec has them.
inline std::string h264_args(int gop = 8, int bframes = 2) {
  return "-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g " + std::to_string(gop) + " -bf " +
         std::to_string(bframes) + " -x264-params scenecut=0:keyint_min=" + std::to_string(gop);
}
inline std::string hevc_args(int gop = 8) {
  return "-c:v libx265 -preset ultrafast -pix_fmt yuv420p -x265-params log-level=error:keyint=" +
         std::to_string(gop) + ":min-keyint=" + std::to_string(gop) + ":scenecut=0:bframes=2";
}
inline std::string av1_args(int gop = 8) {
  return "-c:v libsvtav1 -preset 12 -pix_fmt yuv420p -g " + std::to_string(gop);
}
inline std::string vp9_args(int gop = 8) {
  return "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -pix_fmt yuv420p -g " + std::to_string(gop) +
         " -b:v 400k";
}

}  // namespace robometer::test
