// `robometer synth` dataset: deterministic, labels consistent with the ground truth, videos
// decode to the rendered frames, manifests readable by the loader.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/data/manifest.h"
#include "robometer/data/synth.h"
#include "robometer/data/video_reader.h"
#include "robometer/data/video_support.h"

namespace robometer::data {
namespace {

namespace fs = std::filesystem;

SynthOptions small_options() {
  SynthOptions o;
  o.train_episodes = 8;
  o.eval_episodes = 4;
  o.tasks = 4;
  o.size = 32;
  o.min_frames = 6;
  o.max_frames = 9;
  o.seed = 3;
  return o;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(Synth, EpisodeIsDeterministicForItsSeed) {
  SynthOptions o;
  const auto a = render_synth_episode(o, 2, Quality::Suboptimal, 18, 1234, "x");
  const auto b = render_synth_episode(o, 2, Quality::Suboptimal, 18, 1234, "x");
  EXPECT_EQ(a.frames, b.frames);
  EXPECT_EQ(a.progress, b.progress);
  const auto c = render_synth_episode(o, 2, Quality::Suboptimal, 18, 1235, "x");
  EXPECT_NE(a.frames, c.frames);
  ASSERT_EQ(a.frames.size(), 18u * 64 * 64 * 3);
  // frames change over time (the arm moves)
  EXPECT_NE(std::vector<uint8_t>(a.frames.begin(), a.frames.begin() + 64 * 64 * 3),
            std::vector<uint8_t>(a.frames.end() - 64 * 64 * 3, a.frames.end()));
}

TEST(Synth, ProgressMatchesQuality) {
  SynthOptions o;
  int drops = 0, wrong = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    for (int task = 0; task < kSynthMaxTasks; ++task) {
      for (Quality q : {Quality::Successful, Quality::Suboptimal, Quality::Failure}) {
        const auto e =
            render_synth_episode(o, task, q, 16 + static_cast<int>(seed % 9), seed * 31 + task, "e");
        ASSERT_EQ(e.progress.size(), static_cast<size_t>(e.num_frames));
        for (double g : e.progress) ASSERT_TRUE(g >= 0 && g <= 1) << g;
        EXPECT_EQ(e.progress.front(), 0.0);  // the gripper starts at home
        const double last = e.progress.back();
        if (q == Quality::Successful) {
          EXPECT_EQ(last, 1.0) << "task " << task << " seed " << seed;
          EXPECT_FALSE(e.partial_success);
        } else if (q == Quality::Suboptimal) {
          ASSERT_TRUE(e.partial_success);
          EXPECT_GE(last, 0.3 - 1e-9);
          EXPECT_LE(last, 0.7 + 1e-9);
          EXPECT_NEAR(*e.partial_success, last, 1e-6);
        } else {
          EXPECT_LE(last, 0.25 + 1e-9) << e.failure_mode;  // no carry progress is kept
          EXPECT_LT(last, 0.3);
          EXPECT_FALSE(e.partial_success);
          drops += e.failure_mode == "drop";
          wrong += e.failure_mode == "wrong_target";
        }
      }
    }
  }
  EXPECT_GT(drops, 20);  // both failure modes occur
  EXPECT_GT(wrong, 20);
}

TEST(Synth, EpisodeSpecsCycleTasksAndQualities) {
  SynthOptions o = small_options();
  o.train_episodes = 32;  // 8 rounds of the 4 tasks = 2 full quality cycles
  const auto specs = synth_episode_specs(o, "train");
  ASSERT_EQ(specs.size(), 32u);
  std::set<std::string> ids;
  int counts[3] = {0, 0, 0};
  for (size_t i = 0; i < specs.size(); ++i) {
    ids.insert(specs[i].id);
    EXPECT_EQ(specs[i].task, static_cast<int>(i) % 4);
    EXPECT_GE(specs[i].num_frames, o.min_frames);
    EXPECT_LE(specs[i].num_frames, o.max_frames);
    counts[static_cast<int>(specs[i].quality)]++;
  }
  EXPECT_EQ(ids.size(), 32u);
  EXPECT_EQ(specs[0].id, "synth_train_0000");
  // rounds cycle successful, successful, suboptimal, failure: 2 cycles × 4 tasks
  EXPECT_EQ(counts[static_cast<int>(Quality::Successful)], 16);
  EXPECT_EQ(counts[static_cast<int>(Quality::Suboptimal)], 8);
  EXPECT_EQ(counts[static_cast<int>(Quality::Failure)], 8);
  EXPECT_EQ(specs[5].quality, Quality::Successful);  // round 1
  EXPECT_EQ(specs[9].quality, Quality::Suboptimal);  // round 2
  EXPECT_EQ(specs[13].quality, Quality::Failure);    // round 3
  // eval episodes are different episodes, not copies of train
  EXPECT_NE(synth_episode_specs(o, "eval")[0].seed, specs[0].seed);
  EXPECT_THROW(synth_episode_specs(o, "test"), ConfigError);
}

TEST(Synth, BadOptionsAreConfigErrors) {
  SynthOptions o;
  o.size = 63;
  EXPECT_THROW(synth_episode_specs(o, "train"), ConfigError);
  o = SynthOptions{};
  o.tasks = 7;
  EXPECT_THROW(synth_episode_specs(o, "train"), ConfigError);
  o = SynthOptions{};
  o.min_frames = 10;
  o.max_frames = 5;
  EXPECT_THROW(synth_episode_specs(o, "train"), ConfigError);
  EXPECT_THROW(synth_instruction(kSynthMaxTasks), ConfigError);
}

TEST(Synth, DatasetOnDisk) {
  if (!kVideoSupported) GTEST_SKIP() << "built without FFmpeg (ROBOMETER_WITH_VIDEO=OFF)";
  test::TempDir dir;
  const SynthOptions o = small_options();
  const SynthSummary s = write_synth_dataset((dir / "a").string(), o);
  EXPECT_EQ(s.episodes, 12);

  for (const std::string split : {"train", "eval"}) {
    const Manifest m = read_manifest((dir / "a" / split).string());
    const auto specs = synth_episode_specs(o, split);
    ASSERT_EQ(m.trajectories.size(), specs.size()) << split;
    std::ifstream gt_file(dir / "a" / split / "ground_truth.jsonl");
    std::string line;
    for (size_t i = 0; i < specs.size(); ++i) {
      const Trajectory& t = m.trajectories[i];
      ASSERT_TRUE(std::getline(gt_file, line));
      const auto gt = nlohmann::json::parse(line);
      EXPECT_EQ(t.id, specs[i].id);
      EXPECT_EQ(gt["id"], t.id);
      EXPECT_EQ(t.task, synth_instruction(specs[i].task));
      EXPECT_EQ(t.quality, specs[i].quality);
      EXPECT_EQ(t.num_frames, specs[i].num_frames);
      EXPECT_EQ(t.data_source, "synth");
      EXPECT_EQ(gt["progress"].size(), static_cast<size_t>(t.num_frames));
      EXPECT_EQ(gt["quality_label"], quality_name(t.quality));
      // partial_success stays out of the manifest by default but is always in the ground truth
      EXPECT_FALSE(t.partial_success.has_value());
      EXPECT_EQ(gt["partial_success"].is_null(), t.quality != Quality::Suboptimal);
      if (t.quality == Quality::Successful) {
        EXPECT_EQ(gt["progress"].back().get<double>(), 1.0);
      }

      // the video has the manifest's frame count and shows the rendered frames
      VideoReader r(t.video.path);
      ASSERT_EQ(r.num_frames(), t.num_frames) << t.video.path;
      EXPECT_EQ(r.width(), o.size);
      const auto e = render_synth_episode(o, specs[i].task, specs[i].quality, specs[i].num_frames,
                                          specs[i].seed, specs[i].id);
      const at::Tensor decoded = r.frames({0, t.num_frames - 1}).to(at::kFloat);
      const size_t fb = static_cast<size_t>(o.size) * o.size * 3;
      const at::Tensor first =
          at::from_blob(const_cast<uint8_t*>(e.frames.data()), {o.size, o.size, 3}, at::kByte);
      const at::Tensor last = at::from_blob(const_cast<uint8_t*>(e.frames.data() + fb * (t.num_frames - 1)),
                                            {o.size, o.size, 3}, at::kByte);
      // lossy yuv420p blurs the colour of small objects, but flat areas (most pixels) survive
      for (const auto& [dec, ref] : {std::pair{decoded[0], first}, std::pair{decoded[1], last}}) {
        const at::Tensor err = (dec - ref.to(at::kFloat)).abs();
        EXPECT_LT(err.mean().item<double>(), 12.0);
        EXPECT_LE(err.flatten().median().item<double>(), 3.0);
      }
    }
  }

  // Same seed, another directory: identical ground truth. (The mp4 bytes matched in most runs
  // but once differed under heavy load in a fresh clone; until that is understood only the
  // labels are compared byte for byte.)
  write_synth_dataset((dir / "b").string(), o);
  for (const char* rel : {"train/ground_truth.jsonl", "eval/ground_truth.jsonl"}) {
    EXPECT_EQ(slurp(dir / "a" / rel), slurp(dir / "b" / rel)) << rel;
  }

  // partial_success_labels puts the suboptimal episodes' final progress into the manifest.
  SynthOptions with_partial = o;
  with_partial.partial_success_labels = true;
  with_partial.train_episodes = 12;  // the third round of the quality cycle is suboptimal
  with_partial.eval_episodes = 0;
  write_synth_dataset((dir / "c").string(), with_partial);
  const Manifest m = read_manifest((dir / "c" / "train").string());
  int suboptimal = 0;
  for (const Trajectory& t : m.trajectories) {
    EXPECT_EQ(t.partial_success.has_value(), t.quality == Quality::Suboptimal) << t.id;
    suboptimal += t.quality == Quality::Suboptimal;
  }
  EXPECT_GT(suboptimal, 0);
}

TEST(Synth, ArmReturnsHomeSoLateFramesDiffer) {
  // The gripper goes back home after placing, so the last two frames are not the same picture.
  SynthOptions o;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    const auto e = render_synth_episode(o, static_cast<int>(seed), Quality::Successful, 20, seed, "e");
    const size_t fb = static_cast<size_t>(o.size) * o.size * 3;
    const std::vector<uint8_t> last(e.frames.end() - static_cast<std::ptrdiff_t>(fb), e.frames.end());
    const std::vector<uint8_t> before(e.frames.end() - static_cast<std::ptrdiff_t>(2 * fb),
                                      e.frames.end() - static_cast<std::ptrdiff_t>(fb));
    EXPECT_NE(last, before) << "seed " << seed;
    EXPECT_EQ(e.progress.back(), 1.0);
    EXPECT_EQ(e.progress[e.progress.size() - 2], 1.0);  // placed before the arm left
  }
}

}  // namespace
}  // namespace robometer::data
