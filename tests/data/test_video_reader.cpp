// VideoReader: frame-exact random access on generated index videos (4 codecs, VFR, shared
// files), real clips from ../shared, agreement with PyAV, colour handling and bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>

#include "common/test_util.h"
#include "data/video_fixtures.h"
#include "robometer/core/error.h"
#include "robometer/data/video_reader.h"

namespace robometer::data {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

constexpr int kFrames = 40;  // 4 s at 10 fps, GOP 8 → keyframes at 0, 8, ..., 32

// The generated videos, made once per test binary run.
struct Fixtures {
  TempDir dir;
  fs::path h264, h264_no_b, hevc, av1, vp9, vfr, shared;
  bool ok = false;
  Fixtures() {
    h264 = dir / "index_h264.mp4";
    h264_no_b = dir / "index_h264_no_b.mp4";
    hevc = dir / "index_hevc.mkv";
    av1 = dir / "index_av1.mp4";
    vp9 = dir / "index_vp9.webm";
    vfr = dir / "index_vfr.mp4";
    shared = dir / "shared_episodes.mp4";
    // VFR: 10 fps for 20 frames, then 1/0.15 s; a 1 ms time base keeps the times exact.
    const std::string vfr_args =
        "-vf \"settb=1/1000,setpts='(N/10+max(N-20\\,0)*0.05)/TB'\" -fps_mode passthrough "
        "-enc_time_base 1/1000 " +
        test::h264_args();
    ok = test::make_index_video(h264, kFrames, test::h264_args()) &&
         test::make_index_video(h264_no_b, kFrames, test::h264_args(8, 0)) &&
         test::make_index_video(hevc, kFrames, test::hevc_args()) &&
         test::make_index_video(av1, kFrames, test::av1_args()) &&
         test::make_index_video(vp9, kFrames, test::vp9_args()) &&
         test::make_index_video(vfr, kFrames, vfr_args) &&
         test::make_index_video(shared, 50, test::h264_args());
  }
};

const Fixtures& fixtures() {
  static Fixtures f;
  return f;
}

#define REQUIRE_FIXTURES()                                     \
  do {                                                         \
    ROBOMETER_REQUIRE_FFMPEG_CLI();                            \
    ASSERT_TRUE(fixtures().ok) << "making test videos failed"; \
  } while (0)

// Frame numbers read back from a [N,H,W,3] batch.
std::vector<int64_t> decoded_indices(const at::Tensor& t) {
  std::vector<int64_t> out;
  const int h = static_cast<int>(t.size(1)), w = static_cast<int>(t.size(2));
  for (int64_t i = 0; i < t.size(0); ++i)
    out.push_back(test::decode_index_pattern(t[i].contiguous().data_ptr<uint8_t>(), w, h));
  return out;
}

// (pts_time, keyframe) of every packet according to ffprobe, sorted by time.
std::vector<std::pair<double, bool>> ffprobe_packets(const fs::path& file) {
  const std::string cmd =
      "ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,flags "
      "-of csv=p=0 '" +
      file.string() + "'";
  std::vector<std::pair<double, bool>> out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char line[256];
  while (std::fgets(line, sizeof line, p)) {
    double t = 0;
    char flags[16] = {0};
    if (std::sscanf(line, "%lf,%15s", &t, flags) == 2) out.push_back({t, flags[0] == 'K'});
  }
  pclose(p);
  std::sort(out.begin(), out.end());
  return out;
}

void expect_frame_exact(const fs::path& file, const std::vector<int64_t>& want, int threads = 1) {
  VideoReaderOptions o;
  o.threads = threads;
  VideoReader r(file.string(), o);
  at::Tensor t = r.frames(want);
  ASSERT_EQ(t.sizes(), (at::IntArrayRef{static_cast<int64_t>(want.size()), test::kIndexH, test::kIndexW, 3}));
  EXPECT_EQ(decoded_indices(t), want) << file;
}

std::vector<int64_t> random_indices(int n, int64_t hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> d(0, hi - 1);
  std::vector<int64_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// ---------------------------------------------------------------- index and frame-exact reads

class CodecTest : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path file() const {
    const auto& f = fixtures();
    const std::string c = GetParam();
    return c == "h264" ? f.h264 : c == "hevc" ? f.hevc : c == "av1" ? f.av1 : f.vp9;
  }
};

TEST_P(CodecTest, IndexMatchesFfprobe) {
  REQUIRE_FIXTURES();
  VideoReader r(file().string());
  EXPECT_EQ(r.codec_name(), GetParam());
  EXPECT_EQ(r.num_frames(), kFrames);
  EXPECT_EQ(r.source_width(), test::kIndexW);
  EXPECT_EQ(r.source_height(), test::kIndexH);
  EXPECT_NEAR(r.fps(), 10.0, 1e-6);
  EXPECT_NEAR(r.duration_s(), 4.0, 1e-3);
  const auto probe = ffprobe_packets(file());
  ASSERT_EQ(static_cast<int64_t>(probe.size()), r.num_frames());
  const auto ts = r.timestamps_s();
  std::vector<int64_t> keys;
  for (size_t i = 0; i < probe.size(); ++i) {
    EXPECT_NEAR(ts[i], probe[i].first, 1e-6) << i;
    EXPECT_NEAR(ts[i], i / 10.0, 1e-3) << i;
    if (probe[i].second) keys.push_back(static_cast<int64_t>(i));
  }
  EXPECT_EQ(r.keyframe_indices(), keys);
  EXPECT_GE(keys.size(), 5u);  // GOP 8: random access really has to seek
}

TEST_P(CodecTest, EveryFrameInOrder) {
  REQUIRE_FIXTURES();
  std::vector<int64_t> all(kFrames);
  for (int i = 0; i < kFrames; ++i) all[i] = i;
  expect_frame_exact(file(), all);
}

TEST_P(CodecTest, RandomIndexSetsAreFrameExact) {
  REQUIRE_FIXTURES();
  VideoReader r(file().string());
  for (unsigned seed = 1; seed <= 6; ++seed) {  // several calls on one reader: back and forth
    const auto want = random_indices(8, kFrames, seed);
    EXPECT_EQ(decoded_indices(r.frames(want)), want) << "seed " << seed;
  }
  const std::vector<int64_t> backwards = {39, 31, 30, 17, 8, 7, 0};
  EXPECT_EQ(decoded_indices(r.frames(backwards)), backwards);
}

TEST_P(CodecTest, TwoDecoderThreadsGiveTheSameFrames) {
  REQUIRE_FIXTURES();
  const auto want = random_indices(10, kFrames, 42);
  VideoReaderOptions two;
  two.threads = 2;
  VideoReader a(file().string()), b(file().string(), two);
  EXPECT_TRUE(a.frames(want).equal(b.frames(want)));
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecTest, ::testing::Values("h264", "hevc", "av1", "vp9"),
                         [](const auto& info) { return info.param; });

// Without B-frames every frame is a reference frame, so every frame up to a target is decoded
// and the counts are exact.
TEST(VideoReader, DecodeStatsFollowTheSeekRules) {
  REQUIRE_FIXTURES();
  VideoReader r(fixtures().h264_no_b.string());
  // [5,2,5]: frames 0..5 decoded once from the start (no seek), 2 distinct frames converted.
  at::Tensor t = r.frames({5, 2, 5});
  EXPECT_EQ(decoded_indices(t), (std::vector<int64_t>{5, 2, 5}));
  EXPECT_EQ(r.stats().frames_decoded, 6);
  EXPECT_EQ(r.stats().frames_converted, 2);
  EXPECT_EQ(r.stats().seeks, 0);
  // 20 lies past the next keyframe (8): seek to keyframe 16, decode 16..20.
  r.frames({20});
  EXPECT_EQ(r.stats().seeks, 1);
  EXPECT_EQ(r.stats().frames_decoded, 6 + 5);
  // 21, 22 follow on: no seek.
  r.frames({22, 21});
  EXPECT_EQ(r.stats().seeks, 1);
  EXPECT_EQ(r.stats().frames_decoded, 11 + 2);
  // 3 is behind: one backward seek to keyframe 0, then 0..3.
  r.frames({3});
  EXPECT_EQ(r.stats().seeks, 2);
  EXPECT_EQ(r.stats().frames_decoded, 13 + 4);
  // 7 shares keyframe 0 with the position (decode 4..7); 30 needs a seek to 24 (24..30).
  EXPECT_EQ(decoded_indices(r.frames({30, 7})), (std::vector<int64_t>{30, 7}));
  EXPECT_EQ(r.stats().seeks, 3);
  EXPECT_EQ(r.stats().frames_decoded, 17 + 4 + 7);
  EXPECT_EQ(r.stats().frames_converted, 2 + 1 + 2 + 1 + 2);
  EXPECT_GE(r.stats().packets_read, r.stats().frames_decoded);
}

// With B-frames, unwanted non-reference frames are not even decoded (skip_frame NONREF).
TEST(VideoReader, SkipsUnwantedNonReferenceFrames) {
  REQUIRE_FIXTURES();
  VideoReader r(fixtures().h264.string());
  EXPECT_EQ(decoded_indices(r.frames({6})), std::vector<int64_t>{6});
  EXPECT_LT(r.stats().frames_decoded, 7);
  EXPECT_EQ(r.stats().seeks, 0);
  const int64_t before = r.stats().frames_decoded;
  std::vector<int64_t> all(kFrames);
  for (int i = 0; i < kFrames; ++i) all[i] = i;
  EXPECT_EQ(decoded_indices(r.frames(all)), all);  // wanted B-frames are decoded
  EXPECT_EQ(r.stats().seeks, 1);
  EXPECT_EQ(r.stats().frames_decoded - before, kFrames);
}

// Presentation-order frame index of each packet, in the file's (decode) order, per ffprobe.
std::vector<int64_t> ffprobe_decode_order(const fs::path& file) {
  const std::string cmd =
      "ffprobe -v error -select_streams v:0 -show_entries packet=pts_time "
      "-of csv=p=0 '" +
      file.string() + "'";
  std::vector<double> pts;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return {};
  char line[256];
  double t = 0;
  while (std::fgets(line, sizeof line, p))
    if (std::sscanf(line, "%lf", &t) == 1) pts.push_back(t);
  pclose(p);
  std::vector<double> sorted = pts;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> out;
  for (double v : pts) out.push_back(std::lower_bound(sorted.begin(), sorted.end(), v) - sorted.begin());
  return out;
}

// B-frames make the decoder hold frames back; once the packets of every wanted frame are in,
// the reader flushes it instead of decoding the reference frames that follow. A later call
// on the same reader seeks and stays frame-exact.
TEST(VideoReader, StopsReadingOnceEveryWantedPacketIsIn) {
  REQUIRE_FIXTURES();
  const auto order = ffprobe_decode_order(fixtures().h264);
  ASSERT_EQ(static_cast<int64_t>(order.size()), kFrames);
  ASSERT_NE(order, [&] {
    std::vector<int64_t> v(kFrames);
    std::iota(v.begin(), v.end(), 0);
    return v;
  }()) << "the fixture must have B-frames (decode order != presentation order)";
  // All within the first GOP (keyframes every 8 frames): no seek in the first call.
  for (const std::vector<int64_t>& want :
       std::vector<std::vector<int64_t>>{{1}, {6, 2}, {3, 4, 5}, {7, 0, 5}}) {
    VideoReader r(fixtures().h264.string());
    EXPECT_EQ(decoded_indices(r.frames(want)), want);
    int64_t last_position = 0;  // position, in decode order, of the last wanted packet
    for (size_t pos = 0; pos < order.size(); ++pos)
      if (std::find(want.begin(), want.end(), order[pos]) != want.end())
        last_position = static_cast<int64_t>(pos);
    EXPECT_EQ(r.stats().packets_read, last_position + 1) << "want[0] = " << want[0];
    EXPECT_EQ(r.stats().seeks, 0);
    const std::vector<int64_t> next = {want[0] + 1, want[0] + 2};
    EXPECT_EQ(decoded_indices(r.frames(next)), next);
    EXPECT_EQ(r.stats().seeks, 1);
  }
  // flush_early off (chunk-by-chunk reading): the decoder is fed on, so the reorder delay
  // costs extra packets, and the next chunk continues without a seek.
  VideoReaderOptions keep;
  keep.flush_early = false;
  VideoReader r(fixtures().h264.string(), keep);
  EXPECT_EQ(decoded_indices(r.frames({1})), std::vector<int64_t>{1});
  int64_t position_of_1 = 0;
  for (size_t pos = 0; pos < order.size(); ++pos)
    if (order[pos] == 1) position_of_1 = static_cast<int64_t>(pos);
  EXPECT_GT(r.stats().packets_read, position_of_1 + 1);
  EXPECT_EQ(decoded_indices(r.frames({2, 3})), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r.stats().seeks, 0);
}

TEST(VideoReader, EmptyIndexListGivesEmptyBatch) {
  REQUIRE_FIXTURES();
  VideoReader r(fixtures().h264.string());
  at::Tensor t = r.frames({});
  EXPECT_EQ(t.sizes(), (at::IntArrayRef{0, test::kIndexH, test::kIndexW, 3}));
  EXPECT_EQ(r.stats().frames_decoded, 0);
}

TEST(VideoReader, VariableFrameRate) {
  REQUIRE_FIXTURES();
  VideoReader r(fixtures().vfr.string());
  ASSERT_EQ(r.num_frames(), kFrames);
  const auto ts = r.timestamps_s();
  const auto probe = ffprobe_packets(fixtures().vfr);
  ASSERT_EQ(probe.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_NEAR(ts[i], probe[i].first, 1e-6) << i;
    const double expected = i / 10.0 + std::max<int>(static_cast<int>(i) - 20, 0) * 0.05;
    EXPECT_NEAR(ts[i], expected, 0.0015) << i;  // 1 ms time base
  }
  EXPECT_NEAR(ts[5] - ts[4], 0.10, 0.002);  // the rate really changes
  EXPECT_NEAR(ts[35] - ts[34], 0.15, 0.002);
  EXPECT_EQ(decoded_indices(r.frames({39, 3, 25, 20, 19})), (std::vector<int64_t>{39, 3, 25, 20, 19}));
}

// ---------------------------------------------------------------- windows (LeRobot v3.0 shared files)

TEST(VideoReader, WindowsSelectEachEpisodeOfASharedFile) {
  REQUIRE_FIXTURES();
  // Three episodes of 13, 20 and 17 frames in one 10 fps file; bounds as float32 seconds, the
  // way they come out of parquet metadata.
  const int starts[] = {0, 13, 33, 50};
  for (int e = 0; e < 3; ++e) {
    VideoReaderOptions o;
    o.window_from_s = static_cast<float>(starts[e] / 10.0);
    o.window_to_s = static_cast<float>(starts[e + 1] / 10.0);
    VideoReader r(fixtures().shared.string(), o);
    const int64_t n = starts[e + 1] - starts[e];
    ASSERT_EQ(r.num_frames(), n) << "episode " << e;
    EXPECT_NEAR(r.timestamps_s().front(), starts[e] / 10.0, 1e-3);
    EXPECT_NEAR(r.duration_s(), n / 10.0, 1e-3);
    std::vector<int64_t> want = {n - 1, 0, n / 2, 1, n - 1};
    std::vector<int64_t> global;
    for (auto i : want) global.push_back(starts[e] + i);
    EXPECT_EQ(decoded_indices(r.frames(want)), global) << "episode " << e;
    EXPECT_THROW(r.frames({n}), FormatError);
  }
}

TEST(VideoReader, WindowStartRoundsToTheNearestFrame) {
  REQUIRE_FIXTURES();
  // Frames sit at k/10 s. Half-frame tolerance: from ∈ (1.25, 1.35] starts at frame 13.
  for (double from : {1.26, 1.2999999, 1.3, 1.3000001, 1.34}) {
    VideoReaderOptions o;
    o.window_from_s = from;
    VideoReader r(fixtures().shared.string(), o);  // to the end
    EXPECT_EQ(r.num_frames(), 50 - 13) << from;
    EXPECT_EQ(decoded_indices(r.frames({0})), std::vector<int64_t>{13}) << from;
  }
  VideoReaderOptions o;
  o.window_from_s = 1.24;  // nearer to frame 12
  EXPECT_EQ(VideoReader(fixtures().shared.string(), o).num_frames(), 50 - 12);
}

// ---------------------------------------------------------------- resize and colour

TEST(VideoReader, ResizedSizes) {
  int w = 0, h = 0;
  resized_size(ResizeSpec::shortest_edge(240), 640, 480, w, h);
  EXPECT_EQ(w, 320);
  EXPECT_EQ(h, 240);
  resized_size(ResizeSpec::shortest_edge(100), 320, 240, w, h);  // 133.3 → nearest even 134
  EXPECT_EQ(w, 134);
  EXPECT_EQ(h, 100);
  resized_size(ResizeSpec::shortest_edge(100), 240, 320, w, h);  // portrait
  EXPECT_EQ(w, 100);
  EXPECT_EQ(h, 134);
  resized_size(ResizeSpec::shortest_edge(224), 240, 240, w, h);
  EXPECT_EQ(w, 224);
  EXPECT_EQ(h, 224);
  resized_size(ResizeSpec::exact(31, 17), 640, 480, w, h);
  EXPECT_EQ(w, 31);
  EXPECT_EQ(h, 17);
  EXPECT_THROW(resized_size(ResizeSpec::shortest_edge(0), 640, 480, w, h), ConfigError);
  EXPECT_THROW(resized_size(ResizeSpec::exact(0, 10), 640, 480, w, h), ConfigError);
}

TEST(VideoReader, ResizedFramesKeepTheirContent) {
  REQUIRE_FIXTURES();
  VideoReaderOptions o;
  o.resize = ResizeSpec::shortest_edge(96);
  VideoReader r(fixtures().h264.string(), o);
  EXPECT_EQ(r.width(), 128);
  EXPECT_EQ(r.height(), 96);
  at::Tensor t = r.frames({9, 33});
  EXPECT_EQ(t.sizes(), (at::IntArrayRef{2, 96, 128, 3}));
  EXPECT_EQ(decoded_indices(t), (std::vector<int64_t>{9, 33}));

  o.resize = ResizeSpec::exact(90, 50);  // odd row size: goes through the aligned staging buffer
  VideoReader e(fixtures().vp9.string(), o);
  at::Tensor u = e.frames({1, 38});
  EXPECT_EQ(u.sizes(), (at::IntArrayRef{2, 50, 90, 3}));
  EXPECT_EQ(decoded_indices(u), (std::vector<int64_t>{1, 38}));
}

// A flat colour encoded with a given matrix and range must come back as that colour: this
// fails if the reader ignores the frame's colour tags (reading BT.709 as BT.601 moves R by 12
// levels on this colour, limited as full range by 8). The encoder's own RGB→YUV rounding
// costs up to 4 levels, hence the tolerance 5 against the source colour; against the ffmpeg
// CLI, which honours the tags too, we must agree within 1.
TEST(VideoReader, HonoursColourMatrixAndRange) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  const int rgb[3] = {0xC0, 0x30, 0x20};
  for (std::string matrix : {"bt709", "bt470bg"}) {
    for (std::string range : {"tv", "pc"}) {
      const fs::path f = dir / (matrix + "_" + range + ".mp4");
      const fs::path ref = dir / (matrix + "_" + range + ".rgb");
      const std::string sws_matrix = matrix == "bt709" ? "bt709" : "bt601";
      ASSERT_TRUE(test::run_command(
          "ffmpeg -hide_banner -loglevel error -y -f lavfi -i color=c=0xC03020:s=64x48:r=10 "
          "-frames:v 3 -vf format=rgb24,scale=out_color_matrix=" +
          sws_matrix + ":out_range=" + range + ",format=yuv420p -colorspace " + matrix + " -color_range " +
          range + " -c:v libx264 -qp 0 '" + f.string() + "'"));
      ASSERT_TRUE(test::run_command("ffmpeg -hide_banner -loglevel error -y -i '" + f.string() +
                                    "' -frames:v 1 -f rawvideo -pix_fmt rgb24 '" + ref.string() + "'"));
      std::ifstream in(ref, std::ios::binary);
      std::vector<char> cli((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      ASSERT_EQ(cli.size(), 64u * 48 * 3);
      VideoReader r(f.string());
      at::Tensor t = r.frames({0});
      const size_t centre = (24 * 64 + 32) * 3;
      const uint8_t* p = t.data_ptr<uint8_t>() + centre;
      for (int c = 0; c < 3; ++c) {
        EXPECT_NEAR(p[c], rgb[c], 5) << matrix << " " << range << " channel " << c;
        EXPECT_NEAR(p[c], static_cast<uint8_t>(cli[centre + c]), 1)
            << matrix << " " << range << " channel " << c;
      }
    }
  }
}

// ---------------------------------------------------------------- real clips (../shared)

TEST(VideoReader, RobometerExampleClips) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  const fs::path dir = test::shared_dir() / "data/robometer/scripts/example_videos";
  struct Clip {
    const char* name;
    int64_t frames;
    int w, h;
  };
  for (const Clip& c : {Clip{"soar_put_green_stick_in_brown_bowl.mp4", 32, 240, 240},
                        Clip{"berkeley_rpt_stack_cup.mp4", 32, 320, 240},
                        Clip{"jaco_play_pick_up_green_cup.mp4", 64, 240, 240}}) {
    VideoReader r((dir / c.name).string());
    EXPECT_EQ(r.codec_name(), "h264") << c.name;
    EXPECT_EQ(r.num_frames(), c.frames) << c.name;
    EXPECT_EQ(r.source_width(), c.w) << c.name;
    EXPECT_EQ(r.source_height(), c.h) << c.name;
    EXPECT_NEAR(r.fps(), 10.0, 1e-6) << c.name;
    at::Tensor t = r.frames({c.frames - 1, 0});
    EXPECT_EQ(t.sizes(), (at::IntArrayRef{2, c.h, c.w, 3}));
  }
}

TEST(VideoReader, G1LeRobotAv1Clips) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  const fs::path dir =
      test::shared_dir() / "data/G1-policy-train/videos/chunk-000/observation.images.cam_high";
  const std::pair<const char*, int64_t> clips[] = {
      {"episode_000029.mp4", 221}, {"episode_000030.mp4", 277}, {"episode_000059.mp4", 280}};
  for (const auto& [name, frames] : clips) {
    VideoReader r((dir / name).string());
    EXPECT_EQ(r.codec_name(), "av1") << name;
    EXPECT_EQ(r.num_frames(), frames) << name;
    EXPECT_EQ(r.source_width(), 640);
    EXPECT_EQ(r.source_height(), 480);
    EXPECT_NEAR(r.fps(), 30.0, 1e-6);
    EXPECT_NEAR(r.duration_s(), frames / 30.0, 1e-3);
  }
}

// Python with PyAV + numpy (Debian's python3-av lives in /usr/bin/python3).
std::string pyav_python() {
  static std::string found = [] {
    for (const char* py : {"/usr/bin/python3", "python3"})
      if (std::system((std::string(py) + " -c 'import av, numpy' >/dev/null 2>&1").c_str()) == 0)
        return std::string(py);
    return std::string();
  }();
  return found;
}

// Our frames vs PyAV's to_ndarray('rgb24') at native size. Both use swscale's YUV→RGB; they
// differ only in rounding paths, so a mean below 1 level and a small max is agreement, while a
// wrong matrix/range or a wrong frame gives mean errors of 5+ levels.
void compare_with_pyav(const fs::path& clip, const std::vector<int64_t>& want, int max_tol) {
  const std::string py = pyav_python();
  if (py.empty()) GTEST_SKIP() << "python3 with PyAV (python3-av) not found";
  TempDir dir;
  const fs::path raw = dir / "pyav.rgb";
  std::string list;
  for (auto i : want) list += std::to_string(i) + ",";
  ASSERT_TRUE(test::run_command(py +
                                " -c \"import av, numpy as np, sys\n"
                                "want=[" +
                                list +
                                "]\nout={}\n"
                                "with av.open(sys.argv[1]) as c:\n"
                                "  for i, f in enumerate(c.decode(video=0)):\n"
                                "    if i in want: out[i] = f.to_ndarray(format='rgb24')\n"
                                "    if i >= max(want): break\n"
                                "np.stack([out[i] for i in want]).tofile(sys.argv[2])\" '" +
                                clip.string() + "' '" + raw.string() + "'"));
  VideoReader r(clip.string());
  at::Tensor ours = r.frames(want);
  std::ifstream in(raw, std::ios::binary);
  std::vector<uint8_t> ref(static_cast<size_t>(ours.numel()));
  in.read(reinterpret_cast<char*>(ref.data()), static_cast<std::streamsize>(ref.size()));
  ASSERT_EQ(static_cast<size_t>(in.gcount()), ref.size()) << "PyAV output has the wrong size";
  at::Tensor theirs = at::from_blob(ref.data(), ours.sizes(), at::kByte);
  at::Tensor diff = (ours.to(at::kInt) - theirs.to(at::kInt)).abs();
  const double mean = diff.to(at::kDouble).mean().item<double>();
  const int max = diff.max().item<int>();
  EXPECT_LT(mean, 1.0) << clip;
  EXPECT_LE(max, max_tol) << clip;
  std::printf("[ pyav     ] %s: mean |diff| %.4f, max %d\n", clip.filename().c_str(), mean, max);
}

TEST(VideoReader, MatchesPyAvOnRealH264Clip) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  compare_with_pyav(test::shared_dir() / "data/robometer/scripts/example_videos/berkeley_rpt_stack_cup.mp4",
                    {0, 7, 31}, 2);
}

TEST(VideoReader, MatchesPyAvOnRealAv1Clip) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  compare_with_pyav(
      test::shared_dir() /
          "data/G1-policy-train/videos/chunk-000/observation.images.cam_high/episode_000029.mp4",
      {0, 7, 220}, 2);
}

// ---------------------------------------------------------------- bad inputs

// The message names the file and contains `reason`.
template <typename F>
void expect_format_error(F&& f, const std::string& path, const std::string& reason) {
  try {
    f();
    ADD_FAILURE() << "no FormatError for " << path << " (expected: " << reason << ")";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << e.what();
  }
}

TEST(VideoReaderErrors, MissingEmptyAndNotAVideo) {
  TempDir dir;
  const std::string missing = (dir / "nope.mp4").string();
  expect_format_error([&] { VideoReader r(missing); }, missing, "not found");
  const std::string empty = (dir / "empty.mp4").string();
  std::ofstream(empty).close();
  expect_format_error([&] { VideoReader r(empty); }, empty, "empty");
  const std::string text = (dir / "text.mp4").string();
  std::ofstream(text) << "this is not a video file, just some text\n";
  expect_format_error([&] { VideoReader r(text); }, text, "cannot open");
}

TEST(VideoReaderErrors, AudioOnlyFileHasNoVideoStream) {
  ROBOMETER_REQUIRE_FFMPEG_CLI();
  TempDir dir;
  const std::string audio = (dir / "sine.m4a").string();
  ASSERT_TRUE(
      test::run_command("ffmpeg -hide_banner -loglevel error -y -f lavfi -i sine=d=0.5 '" + audio + "'"));
  expect_format_error([&] { VideoReader r(audio); }, audio, "no video stream");
}

// Truncation policy: an mp4 cut in half fails at open (its index is at the end and lost, or —
// with +faststart — it promises frames the file no longer holds).
TEST(VideoReaderErrors, TruncatedMp4FailsAtOpen) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  TempDir dir;
  const fs::path src =
      test::shared_dir() / "data/robometer/scripts/example_videos/jaco_play_pick_up_green_cup.mp4";
  const fs::path faststart = dir / "faststart.mp4";
  ASSERT_TRUE(test::run_command("ffmpeg -hide_banner -loglevel error -y -i '" + src.string() +
                                "' -c copy -movflags +faststart '" + faststart.string() + "'"));
  for (const fs::path& f : {src, faststart}) {
    const fs::path cut = dir / ("cut_" + f.filename().string());
    fs::copy_file(f, cut);
    fs::resize_file(cut, fs::file_size(f) / 2);
    try {
      VideoReader r(cut.string());
      ADD_FAILURE() << "opened a truncated file: " << cut << " with " << r.num_frames() << " frames";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(cut.string()), std::string::npos) << e.what();
    }
  }
}

// Garbage in the middle of the media data: either a clear FormatError naming the file, or
// frames that still decode (codecs conceal errors); never a crash. The reader stays usable.
TEST(VideoReaderErrors, CorruptPacketsDoNotCrash) {
  REQUIRE_FIXTURES();
  TempDir dir;
  for (const fs::path& src : {fixtures().h264, fixtures().vp9, fixtures().av1}) {
    const fs::path bad = dir / ("corrupt_" + src.filename().string());
    fs::copy_file(src, bad);
    const auto size = fs::file_size(bad);
    {
      std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
      std::mt19937 rng(7);
      f.seekp(static_cast<std::streamoff>(size * 2 / 5));
      for (size_t i = 0; i < size / 5; ++i) f.put(static_cast<char>(rng()));
    }
    std::vector<int64_t> all(kFrames);
    for (int i = 0; i < kFrames; ++i) all[i] = i;
    int errors = 0;
    try {
      VideoReader r(bad.string());
      try {
        at::Tensor t = r.frames(all);
        EXPECT_EQ(t.size(0), kFrames);
      } catch (const FormatError& e) {
        ++errors;
        EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
      }
      // Frame 0 lies before the damage and must still come back right.
      EXPECT_EQ(decoded_indices(r.frames({0})), std::vector<int64_t>{0}) << bad;
    } catch (const FormatError& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
    }
    std::printf("[ corrupt  ] %s: %s\n", bad.filename().c_str(),
                errors ? "FormatError" : "decoded (concealed)");
  }
}

TEST(VideoReaderErrors, IndexOutOfRange) {
  REQUIRE_FIXTURES();
  const std::string path = fixtures().h264.string();
  VideoReader r(path);
  expect_format_error(
      [&] {
        r.frames({0, -1});
      },
      path, "frame index -1 (position 1) is out of range [0, 40)");
  expect_format_error([&] { r.frames({40}); }, path, "frame index 40");
  EXPECT_EQ(decoded_indices(r.frames({39})), std::vector<int64_t>{39});  // still usable
}

TEST(VideoReaderErrors, BadWindows) {
  REQUIRE_FIXTURES();
  const std::string path = fixtures().h264.string();  // 4.0 s
  auto open = [&](double from, double to) {
    VideoReaderOptions o;
    o.window_from_s = from;
    o.window_to_s = to;
    VideoReader r(path, o);
  };
  expect_format_error([&] { open(4.5, -1); }, path, "holds no frames");
  expect_format_error([&] { open(10.0, 12.0); }, path, "extends past the end");
  expect_format_error([&] { open(3.0, 5.5); }, path, "extends past the end");
  expect_format_error([&] { open(2.0, 1.0); }, path, "is invalid");
  expect_format_error([&] { open(-1.0, 1.0); }, path, "is invalid");
  EXPECT_NO_THROW(open(3.0, 4.0));  // exactly to the end is fine
}

TEST(VideoReader, MoveKeepsTheOpenFile) {
  REQUIRE_FIXTURES();
  VideoReader a(fixtures().h264.string());
  a.frames({3});
  VideoReader b(std::move(a));
  EXPECT_EQ(decoded_indices(b.frames({4, 30})), (std::vector<int64_t>{4, 30}));
  VideoReader c(fixtures().vp9.string());
  c = std::move(b);
  EXPECT_EQ(c.codec_name(), "h264");
  EXPECT_EQ(decoded_indices(c.frames({1})), std::vector<int64_t>{1});
}

TEST(VideoReader, FfmpegVersionString) {
  const std::string v = ffmpeg_version();
  EXPECT_NE(v.find("libavcodec"), std::string::npos) << v;
}

}  // namespace
}  // namespace robometer::data
