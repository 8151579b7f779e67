// The streaming loader: decoded frames are the planned ones, the batch sequence depends only on
// (seed, epoch, rank, world_size), resume is exact, bad videos are replaced or abort the run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "common/test_util.h"
#include "data/video_fixtures.h"
#include "robometer/core/error.h"
#include "robometer/data/loader.h"

using namespace robometer::data;
namespace fs = std::filesystem;
namespace rt = robometer::test;

namespace {

// Index videos (each frame shows its own number) of several lengths, made once per test run.
class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    trajs_->clear();
    if (!rt::ffmpeg_cli_available()) return;
    dir_ = new rt::TempDir();
    struct V {
      const char* id;
      const char* task;
      const char* source;
      int frames;
      Quality q;
    };
    const V vids[] = {
        {"a", "pick", "lab", 40, Quality::Successful},  {"b", "pick", "lab", 24, Quality::Successful},
        {"c", "place", "lab", 64, Quality::Successful}, {"d", "place", "lab", 12, Quality::Failure},
        {"e", "push", "sim", 32, Quality::Successful},  {"f", "push", "sim", 50, Quality::Successful}};
    for (const auto& v : vids) {
      fs::path p = *dir_ / (std::string(v.id) + ".mp4");
      if (!rt::make_index_video(p, v.frames, rt::h264_args(8))) return;
      Trajectory t;
      t.id = v.id;
      t.task = v.task;
      t.data_source = v.source;
      t.video.path = p.string();
      t.num_frames = v.frames;
      t.fps = 10;
      t.quality = v.q;
      trajs_->push_back(t);
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    ROBOMETER_REQUIRE_FFMPEG_CLI();
    ASSERT_EQ(trajs_->size(), 6u) << "test videos could not be made";
  }

  static std::shared_ptr<TrajectoryIndex> index(bool with_bad = false) {
    auto t = *trajs_;
    if (with_bad) {
      Trajectory bad = t[0];
      bad.id = "bad";
      bad.video.path = (*dir_ / "bad.mp4").string();
      std::ofstream(bad.video.path) << "this is not a video";
      t.push_back(bad);
    }
    return std::make_shared<TrajectoryIndex>(t);
  }

  static LoaderOptions options(int workers) {
    LoaderOptions o;
    o.num_workers = workers;
    o.batch_size = 3;
    o.prefetch = 2;
    o.resize = ResizeSpec::exact(64, 48);
    o.seed = 1234;
    o.samples_per_epoch = 12;
    return o;
  }

  static std::vector<Batch> all_batches(Loader& l) {
    std::vector<Batch> out;
    while (auto b = l.next()) out.push_back(std::move(*b));
    return out;
  }

  static rt::TempDir* dir_;
  static std::vector<Trajectory>* trajs_;
};
rt::TempDir* LoaderTest::dir_ = nullptr;
std::vector<Trajectory>* LoaderTest::trajs_ = new std::vector<Trajectory>();

void expect_same_clip(const Clip& x, const Clip& y) {
  EXPECT_EQ(x.trajectory_id, y.trajectory_id);
  EXPECT_EQ(x.frame_indices, y.frame_indices);
  EXPECT_TRUE(at::equal(x.frames, y.frames));
  EXPECT_TRUE(at::equal(x.progress, y.progress));
  EXPECT_TRUE(at::equal(x.success, y.success));
  EXPECT_TRUE(at::equal(x.success_mask, y.success_mask));
  EXPECT_EQ(x.progress_mask, y.progress_mask);
}

void expect_same_samples(const PairSample& x, const PairSample& y) {
  EXPECT_EQ(x.task, y.task);
  EXPECT_EQ(x.preference, y.preference);
  EXPECT_EQ(x.strategy, y.strategy);
  expect_same_clip(x.a, y.a);
  expect_same_clip(x.b, y.b);
}

void expect_same_batches(const std::vector<Batch>& x, const std::vector<Batch>& y) {
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(x[i].size(), y[i].size());
    EXPECT_TRUE(at::equal(x[i].progress_target_a, y[i].progress_target_a));
    for (int64_t k = 0; k < x[i].size(); ++k)
      expect_same_samples(x[i].samples[static_cast<size_t>(k)], y[i].samples[static_cast<size_t>(k)]);
  }
}

}  // namespace

TEST_F(LoaderTest, DecodedFramesAreThePlannedOnes) {
  Loader l(index(), options(0));
  auto batches = all_batches(l);
  ASSERT_EQ(batches.size(), 4u);  // 12 samples / 3
  for (const auto& b : batches) {
    EXPECT_EQ(b.progress_a.sizes(), (at::IntArrayRef{3, 8}));
    EXPECT_EQ(b.progress_target_a.sizes(), (at::IntArrayRef{3, 8, 10}));
    for (const auto& s : b.samples)
      for (const Clip* c : {&s.a, &s.b}) {
        ASSERT_EQ(c->frames.sizes(), (at::IntArrayRef{8, 48, 64, 3}));
        ASSERT_EQ(c->frames.scalar_type(), at::kByte);
        for (int64_t k = 0; k < 8; ++k) {
          at::Tensor f = c->frames[k].contiguous();
          EXPECT_EQ(rt::decode_index_pattern(f.data_ptr<uint8_t>(), 64, 48),
                    c->video_frame_indices[static_cast<size_t>(k)])
              << c->trajectory_id << " frame " << k;
        }
      }
  }
}

TEST_F(LoaderTest, SameBatchesWithAnyWorkerCount) {
  Loader l0(index(), options(0)), l1(index(), options(1)), l2(index(), options(2));
  auto b0 = all_batches(l0);
  auto b1 = all_batches(l1);
  auto b2 = all_batches(l2);
  expect_same_batches(b0, b1);
  expect_same_batches(b0, b2);
  // Another epoch is a different sequence; the same epoch again is the same.
  l2.start_epoch(1);
  auto e1 = all_batches(l2);
  bool differs = false;
  for (size_t i = 0; i < e1.size(); ++i)
    differs |= e1[i].samples[0].a.frame_indices != b0[i].samples[0].a.frame_indices;
  EXPECT_TRUE(differs);
  l2.start_epoch(0);
  expect_same_batches(b0, all_batches(l2));
}

TEST_F(LoaderTest, RanksAreDisjointShardsOfTheSameSequence) {
  LoaderOptions o = options(2);
  Loader whole(index(), o);
  std::vector<PairSample> world1;
  for (auto& b : all_batches(whole))
    for (auto& s : b.samples) world1.push_back(s);
  ASSERT_EQ(world1.size(), 12u);

  std::set<int64_t> seen;
  for (int r = 0; r < 2; ++r) {
    o.rank = r;
    o.world_size = 2;
    Loader shard(index(), o);
    EXPECT_EQ(shard.samples_per_rank(), 6);
    int64_t pos = 0;
    for (auto& b : all_batches(shard))
      for (auto& s : b.samples) {
        const int64_t gi = shard.global_index(pos++);
        EXPECT_TRUE(seen.insert(gi).second) << "index " << gi << " on two ranks";
        expect_same_samples(s, world1[static_cast<size_t>(gi)]);
      }
  }
  EXPECT_EQ(seen.size(), 12u);  // the union is world 1's sample set
}

TEST_F(LoaderTest, RestoreContinuesExactly) {
  Loader a(index(), options(2));
  ASSERT_TRUE(a.next());
  const std::string saved = a.state().to_json().dump();
  std::vector<Batch> rest;
  while (auto b = a.next()) rest.push_back(std::move(*b));
  EXPECT_EQ(rest.size(), 3u);
  EXPECT_EQ(a.state().next_sample, 12);

  Loader b(index(), options(1));
  b.restore(LoaderState::from_json(nlohmann::json::parse(saved)));
  EXPECT_EQ(b.state().next_sample, 3);
  expect_same_batches(rest, all_batches(b));
  EXPECT_FALSE(b.next());

  EXPECT_THROW(LoaderState::from_json(nlohmann::json{{"epoch", 1}}), robometer::FormatError);
  EXPECT_THROW(LoaderState::from_json(nlohmann::json{{"epoch", -1}, {"next_sample", 0}}),
               robometer::FormatError);
}

TEST_F(LoaderTest, BadVideoIsReplacedDeterministically) {
  LoaderOptions o = options(2);
  o.max_bad_fraction = 1.0;
  o.samples_per_epoch = 30;
  Loader l2(index(true), o);
  auto b2 = all_batches(l2);
  EXPECT_GT(l2.stats().bad_draws, 0);
  EXPECT_EQ(l2.state().bad_draws, l2.stats().bad_draws);
  for (const auto& b : b2)
    for (const auto& s : b.samples) {
      EXPECT_NE(s.a.trajectory_id, "bad");
      EXPECT_NE(s.b.trajectory_id, "bad");
    }
  o.num_workers = 0;
  Loader l0(index(true), o);
  expect_same_batches(b2, all_batches(l0));
  EXPECT_EQ(l0.stats().bad_draws, l2.stats().bad_draws);
}

// One bad episode inside a shared file (a window past the video's end) must not take the
// file's other episodes down with it, and which draws are replaced must not depend on what the
// process saw before: restoring mid-epoch in a fresh loader gives the uninterrupted batches.
TEST_F(LoaderTest, BadEpisodeOfASharedFileSparesTheOthersAndResumesExactly) {
  auto t = *trajs_;
  Trajectory good = t[2];  // c.mp4 holds 64 frames at 10 fps
  good.id = "c_first_second";
  good.video.from_s = 0.0;
  good.video.to_s = 1.0;
  good.num_frames = 10;
  Trajectory bad = good;
  bad.id = "c_past_the_end";
  bad.video.from_s = 5.0;
  bad.video.to_s = 99.0;
  bad.num_frames = 940;
  t.push_back(good);
  t.push_back(bad);
  auto idx = std::make_shared<TrajectoryIndex>(t);
  LoaderOptions o = options(2);
  o.max_bad_fraction = 1.0;
  o.samples_per_epoch = 60;
  Loader whole(idx, o);
  std::vector<Batch> all = all_batches(whole);
  ASSERT_GT(whole.stats().bad_draws, 0) << "the bad window was never drawn: grow samples_per_epoch";
  int good_uses = 0;
  for (const auto& b : all)
    for (const auto& smp : b.samples)
      for (const Clip* c : {&smp.a, &smp.b}) {
        EXPECT_NE(c->trajectory_id, "c_past_the_end");
        good_uses += c->trajectory_id == "c_first_second";
      }
  EXPECT_GT(good_uses, 0) << "the good episode of the shared file was never used";

  // The bad window is met in the first half (a fresh process's history differs from here on).
  Loader part(idx, o);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(part.next());
  const LoaderState at10 = part.state();
  LoaderOptions o1 = o;
  o1.num_workers = 1;
  Loader fresh(idx, o1);
  fresh.restore(at10);
  std::vector<Batch> rest = all_batches(fresh);
  expect_same_batches(std::vector<Batch>(all.begin() + 10, all.end()), rest);
}

// The bad-draw counters run across epochs: with small per-rank epochs (fewer draws than
// min_draws_before_abort) a mostly bad dataset must still abort.
TEST_F(LoaderTest, BadFractionCountsAcrossEpochs) {
  LoaderOptions o = options(0);
  o.max_bad_fraction = 0.05;
  o.min_draws_before_abort = 20;
  o.samples_per_epoch = 6;  // < min_draws_before_abort per epoch
  Loader l(index(true), o);
  bool aborted = false;
  for (int epoch = 0; epoch < 40 && !aborted; ++epoch) {
    l.start_epoch(epoch);
    try {
      while (l.next()) {
      }
    } catch (const robometer::Error& e) {
      aborted = true;
      EXPECT_NE(std::string(e.what()).find("max_bad_fraction"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(aborted) << "bad draws " << l.stats().bad_draws << " of " << l.state().draws;
  EXPECT_GE(l.state().draws, 20);
}

TEST_F(LoaderTest, AbortsAboveTheBadFraction) {
  LoaderOptions o = options(1);
  o.max_bad_fraction = 0.0;
  o.min_draws_before_abort = 1;
  o.samples_per_epoch = 30;
  Loader l(index(true), o);
  try {
    while (l.next()) {
    }
    FAIL() << "expected the loader to abort";
  } catch (const robometer::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.mp4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("max_bad_fraction"), std::string::npos) << e.what();
  }
}

TEST_F(LoaderTest, RejectsBadOptions) {
  LoaderOptions o = options(1);
  o.rank = 2;
  o.world_size = 2;
  EXPECT_THROW(Loader(index(), o), robometer::ConfigError);
  o = options(1);
  o.batch_size = 0;
  EXPECT_THROW(Loader(index(), o), robometer::ConfigError);
}

TEST(LoaderRealData, ExampleClipsAndLiv) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  const fs::path data = rt::shared_dir() / "data";
  std::vector<Trajectory> trajs;
  auto add = [&](const fs::path& p, const std::string& task, const std::string& source, int64_t frames) {
    Trajectory t;
    t.id = p.stem().string() + "_" + source;
    t.task = task;
    t.data_source = source;
    t.video.path = p.string();
    t.num_frames = frames;
    t.fps = 10;
    trajs.push_back(t);
  };
  const fs::path ex = data / "robometer/scripts/example_videos";
  add(ex / "soar_put_green_stick_in_brown_bowl.mp4", "Put green stick in brown bowl", "soar", 32);
  add(ex / "berkeley_rpt_stack_cup.mp4", "Pick up the yellow cup and stack it on the other cup",
      "berkeley_rpt", 32);
  add(ex / "jaco_play_pick_up_green_cup.mp4", "pick up green cup", "jaco_play", 64);
  add(data / "LIV/static/videos/realrobot_results/apple_in_tray/1_converted.mp4", "apple in tray", "liv", 90);
  LoaderOptions o;
  o.num_workers = 2;
  o.batch_size = 4;
  o.samples_per_epoch = 4;
  o.resize = ResizeSpec::shortest_edge(240);
  Loader l(std::make_shared<TrajectoryIndex>(trajs), o);
  auto b = l.next();
  ASSERT_TRUE(b);
  ASSERT_EQ(b->size(), 4);
  for (const auto& s : b->samples)
    for (const Clip* c : {&s.a, &s.b}) {
      ASSERT_EQ(c->frames.dim(), 4);
      EXPECT_EQ(c->frames.size(0), 8);
      EXPECT_EQ(std::min(c->frames.size(1), c->frames.size(2)), 240) << c->trajectory_id;
      EXPECT_GT(c->frames.to(at::kFloat).std().item<float>(), 1.0f);  // real picture, not blank
    }
}
