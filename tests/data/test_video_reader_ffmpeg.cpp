// VideoReader against the ffmpeg CLI, byte for byte. Each test makes a clip of one stream class
// that used to go wrong (AVI/TS/PS with B-frames, open GOP, edit list, concat, packed
// bitstream, raw .h264, mkv without timestamps, display rotation) with `ffmpeg`, and every
// frame the reader returns, under several access patterns, must equal the frame of the same
// number in `ffmpeg -i CLIP -f rawvideo -pix_fmt rgb24 -fps_mode passthrough -`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "common/test_util.h"
#include "data/video_fixtures.h"
#include "robometer/core/error.h"
#include "robometer/data/video_reader.h"

namespace robometer::data {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// 120 distinct frames (testsrc2 draws a moving pattern and a frame counter).
const std::string kSource = "-f lavfi -i testsrc2=size=320x240:rate=30:duration=4";

bool ffmpeg(const std::string& args) {
  return test::run_command("ffmpeg -hide_banner -loglevel error -y " + args);
}

bool has_encoder(const std::string& name) {
  return std::system(("ffmpeg -hide_banner -encoders 2>/dev/null | grep -q ' " + name + " '").c_str()) == 0;
}

// ffmpeg's own frames of `clip`, every decoded frame in output order.
std::vector<uint8_t> ffmpeg_frames(const fs::path& clip, bool autorotate) {
  const fs::path raw = clip.string() + (autorotate ? ".auto.rgb" : ".rgb");
  if (!ffmpeg(std::string(autorotate ? "" : "-noautorotate ") + "-i '" + clip.string() +
              "' -f rawvideo -pix_fmt rgb24 -fps_mode passthrough '" + raw.string() + "'"))
    return {};
  std::ifstream in(raw, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Compares frames(indices) with ffmpeg's frames; names the ffmpeg frame a wrong one equals.
void expect_frames(VideoReader& r, const std::vector<int64_t>& indices, const std::vector<uint8_t>& ref,
                   const std::string& what) {
  const size_t frame_bytes = static_cast<size_t>(r.width()) * r.height() * 3;
  const int64_t n = static_cast<int64_t>(ref.size() / frame_bytes);
  at::Tensor t;
  try {
    t = r.frames(indices).contiguous();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": " << e.what();
    return;
  }
  int wrong = 0;
  for (size_t i = 0; i < indices.size(); ++i) {
    const uint8_t* ours = t.data_ptr<uint8_t>() + i * frame_bytes;
    if (indices[i] < n && std::memcmp(ours, ref.data() + indices[i] * frame_bytes, frame_bytes) == 0)
      continue;
    int64_t equals = -1;
    for (int64_t k = 0; k < n && equals < 0; ++k)
      if (std::memcmp(ours, ref.data() + k * frame_bytes, frame_bytes) == 0) equals = k;
    if (wrong++ < 3)
      ADD_FAILURE() << what << ": frame " << indices[i] << " differs from ffmpeg's frame " << indices[i]
                    << (equals >= 0 ? " (it equals ffmpeg's frame " + std::to_string(equals) + ")" : "");
  }
}

// The access patterns of the loader and of sequential readers, all against ffmpeg's frames.
void expect_matches_ffmpeg(const fs::path& clip, VideoReaderOptions o = {}) {
  const std::vector<uint8_t> ref = ffmpeg_frames(clip, o.autorotate);
  ASSERT_FALSE(ref.empty()) << clip;
  VideoReader r(clip.string(), o);
  const size_t frame_bytes = static_cast<size_t>(r.width()) * r.height() * 3;
  ASSERT_EQ(ref.size() % frame_bytes, 0u)
      << clip << ": ffmpeg's output is not a whole number of " << r.width() << "x" << r.height() << " frames";
  const int64_t n = static_cast<int64_t>(ref.size() / frame_bytes);
  ASSERT_EQ(r.num_frames(), n) << clip;
  ASSERT_EQ(static_cast<int64_t>(r.timestamps_s().size()), n);

  std::vector<int64_t> all(n);
  for (int64_t i = 0; i < n; ++i) all[i] = i;
  expect_frames(r, all, ref, clip.filename().string() + " all in order");
  std::mt19937 rng(7);
  for (int call = 0; call < 6; ++call) {  // back and forth on one reader
    std::vector<int64_t> want(6);
    for (auto& w : want) w = static_cast<int64_t>(rng() % n);
    expect_frames(r, want, ref, clip.filename().string() + " random set " + std::to_string(call));
  }
  for (int64_t i = n - 1; i >= 0; i -= 7) expect_frames(r, {i}, ref, clip.filename().string() + " backwards");
  for (int64_t i = 0; i < n; i += 11) {  // the loader: a fresh reader per sample
    VideoReader fresh(clip.string(), o);
    expect_frames(fresh, {i, std::min(i + 3, n - 1)}, ref, clip.filename().string() + " fresh reader");
  }
  VideoReaderOptions chunked = o;
  chunked.flush_early = false;
  chunked.threads = 2;
  VideoReader seq(clip.string(), chunked);
  for (int64_t i = 0; i < n; i += 10) {
    std::vector<int64_t> chunk;
    for (int64_t k = i; k < std::min(i + 10, n); ++k) chunk.push_back(k);
    expect_frames(seq, chunk, ref, clip.filename().string() + " chunks, 2 threads, no early flush");
  }
}

// Encodes kSource with `encoder_args` into a temporary `name` and compares it with ffmpeg.
void expect_generated_clip_matches(const std::string& name, const std::string& encoder_args) {
  TempDir dir;
  ASSERT_TRUE(ffmpeg(kSource + " " + encoder_args + " '" + (dir / name).string() + "'"));
  expect_matches_ffmpeg(dir / name);
}

// ffprobe's pts of the first packets of the video stream ("N/A" when none).
std::vector<std::string> first_packet_pts(const fs::path& clip, int count) {
  std::vector<std::string> out;
  FILE* p = popen(("ffprobe -v error -select_streams v:0 -show_entries packet=pts -of csv=p=0 '" +
                   clip.string() + "' | head -" + std::to_string(count))
                      .c_str(),
                  "r");
  if (!p) return out;
  char line[128];
  while (std::fgets(line, sizeof line, p))
    out.push_back(std::string(line).substr(0, std::strcspn(line, ",\n")));
  pclose(p);
  return out;
}

// ---------------------------------------------------------------- the common case

TEST(VideoReaderVsFfmpeg, H264Mp4WithBFrames) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  expect_generated_clip_matches("b.mp4", "-c:v libx264 -bf 2 -g 12");
}

// ---------------------------------------------------------------- issue 21 items 8-12

// I/P packets carry no pts in AVI and B-frames get their dts as pts: numbering by timestamps
// shifted every frame by one. Such streams are numbered by decoding.
TEST(VideoReaderVsFfmpeg, Mpeg4PartTwoAviWithBFrames) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  ASSERT_TRUE(ffmpeg("-f lavfi -i testsrc2=size=320x240:rate=30:duration=2 -c:v mpeg4 -bf 2 '" +
                     (dir / "a.avi").string() + "'"));
  expect_matches_ffmpeg(dir / "a.avi");
  expect_generated_clip_matches("gop12.avi", "-c:v mpeg4 -bf 2 -g 12");
}

// The first keyframe's pts lies after its dts; the start is reached by reopening, and the
// timestamp searches of random access are checked against the packet order.
TEST(VideoReaderVsFfmpeg, MpegTsWithBFrames) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  expect_generated_clip_matches("t.ts", "-c:v libx264 -bf 2 -g 12");
}

TEST(VideoReaderVsFfmpeg, MpegProgramStream) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  expect_generated_clip_matches("p.mpg", "-c:v mpeg2video -bf 2 -g 12");
}

// Keyframes with leading frames: the early flush is off for these streams.
TEST(VideoReaderVsFfmpeg, OpenGopWithAndWithoutBPyramid) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  for (std::string params : {"open-gop=1", "open-gop=1:b-pyramid=none"}) {
    const fs::path clip = dir / ("open_gop_" + std::to_string(params.size()) + ".mp4");
    ASSERT_TRUE(
        ffmpeg(kSource + " -c:v libx264 -bf 3 -g 24 -x264-params " + params + " '" + clip.string() + "'"));
    SCOPED_TRACE(params);
    expect_matches_ffmpeg(clip);
  }
}

// An edit list hides the first 15 frames: they are decoded (references) but not counted.
TEST(VideoReaderVsFfmpeg, Mp4WithEditList) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  ASSERT_TRUE(ffmpeg(kSource + " -c:v libx264 -bf 2 -g 30 '" + (dir / "in.mp4").string() + "'"));
  ASSERT_TRUE(
      ffmpeg("-ss 0.5 -i '" + (dir / "in.mp4").string() + "' -c copy '" + (dir / "cut.mp4").string() + "'"));
  expect_matches_ffmpeg(dir / "cut.mp4");
  EXPECT_EQ(VideoReader((dir / "cut.mp4").string()).num_frames(), 120 - 15);
}

TEST(VideoReaderVsFfmpeg, Mp4CopyOfATenAndThirtyFpsConcat) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  ASSERT_TRUE(ffmpeg("-f lavfi -i testsrc2=size=320x240:rate=10:duration=2 -c:v libx264 -bf 2 -g 6 '" +
                     (dir / "a.mp4").string() + "'"));
  ASSERT_TRUE(ffmpeg("-f lavfi -i testsrc2=size=320x240:rate=30:duration=2 -c:v libx264 -bf 2 -g 12 '" +
                     (dir / "b.mp4").string() + "'"));
  std::ofstream(dir / "list.txt") << "file '" << (dir / "a.mp4").string() << "'\nfile '"
                                  << (dir / "b.mp4").string() << "'\n";
  ASSERT_TRUE(ffmpeg("-f concat -safe 0 -i '" + (dir / "list.txt").string() + "' -c copy '" +
                     (dir / "both.mp4").string() + "'"));
  expect_matches_ffmpeg(dir / "both.mp4");
}

// xvid packs a P- and a B-frame into one AVI chunk and writes a placeholder after it; the
// container also lists empty chunks, so its frame count is no truncation test.
TEST(VideoReaderVsFfmpeg, PackedBitstreamAvi) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  if (!has_encoder("libxvid")) GTEST_SKIP() << "this ffmpeg has no libxvid encoder";
  expect_generated_clip_matches("x.avi", "-c:v libxvid -bf 2 -g 12");
}

TEST(VideoReaderVsFfmpeg, RawH264) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  expect_generated_clip_matches("r.h264", "-c:v libx264 -bf 2 -g 12");
}

// EBML variable-length integer at d[i]: its value (with the length marker when `id`) and length.
std::pair<uint64_t, int> ebml_vint(const std::vector<uint8_t>& d, size_t i, bool id) {
  int n = 1;
  while (n <= 8 && !(d[i] & (0x80 >> (n - 1)))) ++n;
  uint64_t v = id ? d[i] : d[i] & ((0x80 >> (n - 1)) - 1);
  for (int k = 1; k < n; ++k) v = (v << 8) | d[i + k];
  return {v, n};
}

// Sets the relative time of the first `blocks` SimpleBlocks of the first cluster to -30000:
// before the cluster start, which the matroska demuxer reports as "no timestamp".
bool strip_first_block_timestamps(const fs::path& mkv, int blocks) {
  std::ifstream in(mkv, std::ios::binary);
  std::vector<uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const uint8_t cluster_id[4] = {0x1F, 0x43, 0xB6, 0x75};
  auto it = std::search(d.begin(), d.end(), cluster_id, cluster_id + 4);
  if (it == d.end()) return false;
  const size_t start = static_cast<size_t>(it - d.begin()) + 4;
  const auto [size, size_len] = ebml_vint(d, start, false);
  size_t j = start + size_len;
  const size_t end = std::min(d.size(), j + static_cast<size_t>(size));
  int done = 0;
  while (j < end && done < blocks) {
    const auto [eid, id_len] = ebml_vint(d, j, true);
    const auto [len, len_len] = ebml_vint(d, j + id_len, false);
    if (eid == 0xA3) {  // SimpleBlock: track number (vint), int16 relative time, flags
      const size_t p = j + id_len + len_len;
      const int track_len = ebml_vint(d, p, false).second;
      d[p + track_len] = 0x8A;
      d[p + track_len + 1] = 0xD0;
      ++done;
    }
    j += id_len + len_len + static_cast<size_t>(len);
  }
  std::ofstream(mkv, std::ios::binary)
      .write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
  return done == blocks;
}

TEST(VideoReaderVsFfmpeg, MkvWhoseFirstPacketsHaveNoTimestamps) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  const fs::path clip = dir / "m.mkv";
  ASSERT_TRUE(ffmpeg(kSource + " -c:v libx264 -bf 2 -g 12 -cluster_time_limit 500 -write_crc32 0 '" +
                     clip.string() + "'"));
  ASSERT_TRUE(strip_first_block_timestamps(clip, 3));
  ASSERT_EQ(first_packet_pts(clip, 4), (std::vector<std::string>{"N/A", "N/A", "N/A", "67"}))
      << "the fixture must start with packets without timestamps";
  expect_matches_ffmpeg(clip);
}

// ---------------------------------------------------------------- issue 21 item 13

TEST(VideoReaderVsFfmpeg, DisplayRotationIsAppliedAsFfmpegDoes) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  const fs::path plain = dir / "plain.mp4";
  ASSERT_TRUE(ffmpeg(kSource + " -c:v libx264 -bf 2 -g 12 '" + plain.string() + "'"));
  const std::vector<uint8_t> stored = ffmpeg_frames(plain, false);
  for (int angle : {90, 180, 270}) {
    SCOPED_TRACE("rotate=" + std::to_string(angle));
    const fs::path clip = dir / ("rot" + std::to_string(angle) + ".mp4");
    ASSERT_TRUE(ffmpeg("-i '" + plain.string() + "' -c copy -metadata:s:v:0 rotate=" + std::to_string(angle) +
                       " '" + clip.string() + "'"));
    VideoReader r(clip.string());
    EXPECT_EQ(r.source_width(), 320);
    EXPECT_EQ(r.width(), angle == 180 ? 320 : 240);
    EXPECT_EQ(r.height(), angle == 180 ? 240 : 320);
    expect_matches_ffmpeg(clip);  // autorotate on both sides
    const std::vector<uint8_t> turned = ffmpeg_frames(clip, true);
    EXPECT_NE(turned, stored) << "ffmpeg must rotate this clip, or the test proves nothing";
    VideoReaderOptions off;
    off.autorotate = false;
    VideoReader raw(clip.string(), off);
    EXPECT_EQ(raw.width(), 320);
    expect_frames(raw, {0, 50, 119}, stored, "autorotate off");
    // The resize applies to the displayed picture.
    VideoReaderOptions small;
    small.resize = ResizeSpec::shortest_edge(120);
    VideoReader s(clip.string(), small);
    EXPECT_EQ(s.width(), angle == 180 ? 160 : 120);
    EXPECT_EQ(s.height(), angle == 180 ? 120 : 160);
  }
}

}  // namespace
}  // namespace robometer::data
