#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "eval_test_util.h"
#include "robometer/core/error.h"
#include "robometer/eval/scorer.h"
#include "robometer/export/load.h"

namespace robometer::eval {
namespace {

using test::TempDir;

TEST(Scorer, PrefixPositionsHandComputed) {
  EXPECT_EQ(prefix_positions(0, 4), (std::vector<int64_t>{0, 0, 0, 0}));
  EXPECT_EQ(prefix_positions(2, 6), (std::vector<int64_t>{0, 1, 2, 2, 2, 2}));
  EXPECT_EQ(prefix_positions(9, 4), (std::vector<int64_t>{0, 3, 6, 9}));
  // numpy rint(linspace(0, 31, 8)) = 0 4 9 13 18 22 27 31
  EXPECT_EQ(prefix_positions(31, 8), (std::vector<int64_t>{0, 4, 9, 13, 18, 22, 27, 31}));
  EXPECT_THROW(prefix_positions(-1, 4), Error);
}

TEST(Scorer, ParseMode) {
  EXPECT_EQ(parse_score_mode("dense"), ScoreMode::Dense);
  EXPECT_EQ(parse_score_mode("linspace"), ScoreMode::Linspace);
  EXPECT_THROW(parse_score_mode("sparse"), ConfigError);
}

class ScorerModel : public test::TinyModelSuite {};

TEST_F(ScorerModel, LinspaceMatchesADirectForward) {
  Scorer s(*bundle_, {4, 8});
  const auto frames = test::test_frames(10);
  const auto r = s.linspace(frames, "pick up the cube");
  ASSERT_EQ(r.frame_indices, (std::vector<int64_t>{0, 3, 6, 9}));
  torch::NoGradGuard ng;
  const auto in =
      bundle_->processor->progress_inputs({{"pick up the cube", select_frames(frames, r.frame_indices)}});
  const auto out = bundle_->model->forward(in);
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(r.progress[i], out.progress[0][i].item<double>(), 1e-6);
    EXPECT_NEAR(r.success[i], torch::sigmoid(out.success_logits[0][i]).item<double>(), 1e-6);
    EXPECT_GE(r.progress[i], 0.0);
    EXPECT_LE(r.progress[i], 1.0);
  }
}

TEST_F(ScorerModel, DenseIsLastFrameOfEachPrefixAndBatchInvariant) {
  const auto frames = test::test_frames(6);
  Scorer one(*bundle_, {4, 1});
  Scorer many(*bundle_, {4, 4});
  const auto a = one.dense(frames, "open the drawer");
  const auto b = many.dense(frames, "open the drawer");
  ASSERT_EQ(a.progress.size(), 6u);
  for (size_t t = 0; t < 6; ++t) {
    EXPECT_NEAR(a.progress[t], b.progress[t], 1e-5) << t;
    EXPECT_NEAR(a.success[t], b.success[t], 1e-5) << t;
  }
  // Frame 3's reward is the last position of the clip of prefix 0..3.
  const auto clip = one.score_clips({{"open the drawer", select_frames(frames, prefix_positions(3, 4))}});
  EXPECT_NEAR(a.progress[3], clip[0].progress.back(), 1e-6);
}

TEST_F(ScorerModel, PreferenceIsAProbabilityAndOrderMatters) {
  Scorer s(*bundle_, {4, 4});
  const auto x = test::test_frames(5, 64, 1), y = test::test_frames(5, 64, 2);
  const double ab = s.preference(x, y, "stack the cups");
  const double ba = s.preference(y, x, "stack the cups");
  EXPECT_GT(ab, 0.0);
  EXPECT_LT(ab, 1.0);
  EXPECT_NE(ab, ba);
}

TEST_F(ScorerModel, BadInputsThrow) {
  Scorer s(*bundle_);
  EXPECT_THROW(s.linspace(at::zeros({3, 8, 8}, at::kByte), "x"), Error);
  EXPECT_THROW(s.linspace(test::test_frames(2), ""), Error);
  EXPECT_THROW(s.dense(at::zeros({2, 8, 8, 3}, at::kFloat), "x"), Error);
}

// ------------------------------------------------------------------ reference check (4B weights)

// A 1-D little-endian float32 .npy (format 1.0/2.0): header parsed by hand.
std::vector<float> read_npy_f32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw Error(path + ": not .npy");
  const int major = static_cast<uint8_t>(bytes[6]);
  size_t hlen, off;
  if (major == 1) {
    hlen = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    off = 10;
  } else {
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    off = 12;
  }
  const std::string header = bytes.substr(off, hlen);
  if (header.find("'<f4'") == std::string::npos || header.find("'fortran_order': False") == std::string::npos)
    throw Error(path + ": expected little-endian float32, C order: " + header);
  const size_t n = (bytes.size() - off - hlen) / 4;
  std::vector<float> v(n);
  std::memcpy(v.data(), bytes.data() + off + hlen, n * 4);
  return v;
}

TEST(ScorerReference, NpyReaderOnPublishedFile) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  const auto p = test::shared_dir() /
                 "data/robometer/scripts/example_videos/soar_put_green_stick_in_brown_bowl_rewards.npy";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << p << " missing";
  const auto v = read_npy_f32(p.string());
  ASSERT_EQ(v.size(), 10u);  // SOURCES.md: soar run with --fps 3 -> 10 values
  for (float x : v) {
    EXPECT_GE(x, 0.f);
    EXPECT_LE(x, 1.f);
  }
}

// The original example_inference_local.py: frames subsampled to round(n * fps / 10), ALL of them
// in one query, no 8-frame subsampling. Compared with the published *_rewards.npy.
TEST(ScorerReference, ExampleClipsMatchPublishedRewards) {
  const char* dir = std::getenv("ROBOMETER_4B_DIR");
  if (!dir || !*dir)
    GTEST_SKIP() << "set ROBOMETER_4B_DIR to the released Robometer-4B weights (a dir with config.yaml, "
                    "config.json, model*.safetensors, tokenizer.json) to run this check";
  ROBOMETER_REQUIRE_SHARED_DATA();
  const auto ex = test::shared_dir() / "data/robometer/scripts/example_videos";
  struct Case {
    const char* video;
    const char* npy;
    const char* task;
    double fps;
  };
  const Case cases[] = {
      {"soar_put_green_stick_in_brown_bowl.mp4", "soar_put_green_stick_in_brown_bowl_rewards.npy",
       "Put green stick in brown bowl", 3},
      {"berkeley_rpt_stack_cup.mp4", "berkeley_rpt_stack_cup_rewards.npy",
       "Pick up the yellow cup and stack it on the other cup", 3},
      {"jaco_play_pick_up_green_cup.mp4", "pick_up_green_cup_rewards.npy", "pick up green cup", 2}};
  const at::Device device = pick_device("auto");
  LoadedModel m = load_checkpoint(dir, device);
  Scorer s(m.bundle, {8, 1});
  for (const auto& c : cases) {
    const auto expect = read_npy_f32((ex / c.npy).string());
    const at::Tensor frames = read_video((ex / c.video).string(), data::ResizeSpec::none(), c.fps);
    ASSERT_EQ(frames.size(0), static_cast<int64_t>(expect.size())) << c.video;
    const auto r = s.all_frames(frames, c.task);
    double worst = 0;
    for (size_t i = 0; i < expect.size(); ++i) worst = std::max(worst, std::abs(r.progress[i] - expect[i]));
    EXPECT_LE(worst, 0.02) << c.video;
  }
}

}  // namespace
}  // namespace robometer::eval
