// Qwen3-VL processor: smart_resize, PIL-identical bicubic and HF patch flattening (against
// tests/model/processor_reference.py = numpy + Pillow), and Robometer's prompt layout.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/model/processor.h"
#include "robometer/model/prompt.h"

namespace robometer::model {
namespace {

namespace fs = std::filesystem;

TEST(SmartResize, HandComputedSizes) {
  const int64_t f = 32, lo = 4 * 32 * 32, hi = 16384LL * 32 * 32;
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(smart_resize(240, 320, f, lo, hi), P(256, 320));  // 7.5 rounds half to even -> 8
  EXPECT_EQ(smart_resize(240, 240, f, lo, hi), P(256, 256));
  EXPECT_EQ(smart_resize(208, 208, f, lo, hi), P(192, 192));    // 6.5 -> 6 (Python round)
  EXPECT_EQ(smart_resize(720, 1280, f, lo, hi), P(704, 1280));  // 22.5 -> 22
  EXPECT_EQ(smart_resize(480, 640, f, lo, hi), P(480, 640));
  EXPECT_EQ(smart_resize(333, 517, f, lo, hi), P(320, 512));
  // Too small: 32x32 < min_pixels, scale up by sqrt(4096/300) and ceil to multiples of 32.
  EXPECT_EQ(smart_resize(10, 30, f, lo, hi), P(64, 128));
  // Too large: 6016x8992 > max_pixels, scale down by sqrt(54e6/2^24) and floor.
  EXPECT_EQ(smart_resize(6000, 9000, f, lo, hi), P(3328, 4992));
  EXPECT_THROW(smart_resize(10, 2100, f, lo, hi), Error);  // aspect ratio above 200
  EXPECT_THROW(smart_resize(0, 10, f, lo, hi), Error);
}

// ------------------------------------------------------------------ reference comparison

std::string python_with_numpy_pil_av() {
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    const std::string cmd = std::string(py) + " -c 'import av, numpy, PIL' > /dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return py;
  }
  return {};
}

at::Tensor read_raw(const fs::path& p, at::IntArrayRef shape, at::ScalarType type) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  at::Tensor t = at::empty(shape, type);
  EXPECT_EQ(bytes.size(), static_cast<size_t>(t.nbytes())) << p;
  std::memcpy(t.data_ptr(), bytes.data(), std::min(bytes.size(), static_cast<size_t>(t.nbytes())));
  return t;
}

// Runs the Python reference, then checks resize (exact) and pixel_values (float32 rounding).
void compare_with_reference(const std::string& args) {
  const std::string py = python_with_numpy_pil_av();
  if (py.empty())
    GTEST_SKIP() << "python3 with numpy, Pillow and PyAV needed (apt: python3-numpy python3-pil python3-av)";
  test::TempDir tmp;
  const std::string cmd = py + " \"" + (test::source_dir() / "tests/model/processor_reference.py").string() +
                          "\" " + args + " \"" + tmp.path().string() + "\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream meta_in(tmp / "meta.json");
  const auto meta = nlohmann::json::parse(meta_in);
  const auto fs_ = meta["frame"].get<std::vector<int64_t>>(),
             rs = meta["resized"].get<std::vector<int64_t>>(),
             ps = meta["pixel_values"].get<std::vector<int64_t>>();
  const at::Tensor frame = read_raw(tmp / "frame.u8", fs_, at::kByte);
  const at::Tensor want_resized = read_raw(tmp / "resized.u8", rs, at::kByte);
  const at::Tensor want_pixels = read_raw(tmp / "pixel_values.f32", ps, at::kFloat);

  const ProcessorOptions opts;
  const auto [h, w] = smart_resize(frame.size(0), frame.size(1), 32, opts.min_pixels, opts.max_pixels);
  ASSERT_EQ(h, rs[0]);
  ASSERT_EQ(w, rs[1]);
  const at::Tensor resized = resize_bicubic_pil(frame, h, w);
  const int64_t differing = resized.ne(want_resized).sum().item<int64_t>();
  EXPECT_EQ(differing, 0) << "bytes differing from Pillow, max abs diff "
                          << (resized.to(at::kInt) - want_resized.to(at::kInt)).abs().max().item<int>();

  const ImagePatches got = preprocess_image(frame, opts);
  EXPECT_EQ(got.grid_thw,
            (std::array<int64_t, 3>{meta["grid_thw"][0], meta["grid_thw"][1], meta["grid_thw"][2]}));
  ASSERT_EQ(got.pixel_values.sizes(), want_pixels.sizes());
  EXPECT_LE((got.pixel_values - want_pixels).abs().max().item<float>(), 1e-6f);
}

TEST(ImagePreprocess, MatchesPillowAndNumpyOnRealFrame320x240) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  compare_with_reference(
      "\"" +
      (test::shared_dir() / "data/robometer/scripts/example_videos/berkeley_rpt_stack_cup.mp4").string() +
      "\" 7");
}

TEST(ImagePreprocess, MatchesPillowAndNumpyOnRealFrame240x240) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  compare_with_reference(
      "\"" +
      (test::shared_dir() / "data/robometer/scripts/example_videos/soar_put_green_stick_in_brown_bowl.mp4")
          .string() +
      "\" 3");
}

TEST(ImagePreprocess, MatchesPillowAndNumpyOnRealFrame1280x720) {
  ROBOMETER_REQUIRE_SHARED_DATA();
  compare_with_reference(
      "\"" +
      (test::shared_dir() / "data/LIV/static/videos/realrobot_results/apple_in_tray/1_converted.mp4")
          .string() +
      "\" 20");
}

TEST(ImagePreprocess, MatchesPillowAndNumpyWhenShrinkingBothAxes) {
  compare_with_reference("--synthetic 333 517 11");
}

TEST(ImagePreprocess, MatchesPillowAndNumpyWhenGrowingATinyImage) {
  compare_with_reference("--synthetic 21 45 12");
}

TEST(ImagePreprocess, PatchOrderIsMergeBlockMajor) {
  // A 32x32 image is one 2x2 merge block of four 16x16 patches. Row r of pixel_values is patch
  // (r / 2, r % 2); each row is [channel][temporal copy][16][16].
  at::Tensor img = at::zeros({32, 32, 3}, at::kByte);
  img.index_put_({at::indexing::Slice(0, 16), at::indexing::Slice(16, 32), 0}, 255);  // top-right patch, red
  img.index_put_({at::indexing::Slice(16, 32), at::indexing::Slice(0, 16), 2},
                 255);  // bottom-left patch, blue
  const ImagePatches p = patchify(img, ProcessorOptions{});
  ASSERT_EQ(p.pixel_values.sizes(), (std::vector<int64_t>{4, 1536}));
  EXPECT_EQ(p.grid_thw, (std::array<int64_t, 3>{1, 2, 2}));
  const at::Tensor v = p.pixel_values.view({4, 3, 2, 256});
  EXPECT_TRUE(v[0].eq(-1).all().item<bool>());
  EXPECT_TRUE(v[1][0].eq(1).all().item<bool>());  // red in patch (0,1), both temporal copies
  EXPECT_TRUE(v[1][1].eq(-1).all().item<bool>());
  EXPECT_TRUE(v[2][2].eq(1).all().item<bool>());  // blue in patch (1,0)
  EXPECT_TRUE(v[3].eq(-1).all().item<bool>());
}

// ------------------------------------------------------------------ prompts

TEST(Prompt, ProgressPromptTextAsRenderedByTheTemplate) {
  const std::string expected =
      "<|im_start|>user\n"
      "The task for the robot is 'pick up cup'. Given the trajectory video, predict the task progress at "
      "each "
      "frame, how far along the robot is towards completing the task, a float between 0 and 1, where 0 is "
      "the "
      "starting state and 1 is when the task is completed. If the robot is not performing the same task, "
      "predict 0 progress."
      "Picture 1: <|vision_start|><|image_pad|><|vision_end|><|prog_token|>"
      "Picture 2: <|vision_start|><|image_pad|><|vision_end|><|prog_token|>"
      "<|im_end|>\n";
  EXPECT_EQ(render_progress_prompt("pick up cup", {1, 1}), expected);
}

TEST(Prompt, PairPromptTextAsRenderedByTheTemplate) {
  const std::string expected =
      "<|im_start|>user\n"
      "Given these two trajectories for the task 'open drawer', evaluate which one makes more progress "
      "towards "
      "the task. Return A for the first trajectory and B for the second trajectory. Also predict the task "
      "progress at each frame of the first trajectory, how far along the robot is towards completing the "
      "task, "
      "a float between 0 and 1, where 0 is the starting state and 1 is when the task is completed. If the "
      "robot "
      "is not performing the same task, predict 0 progress."
      "This is Trajectory A. "
      "Picture 1: <|vision_start|><|image_pad|><|image_pad|><|vision_end|><|prog_token|>"
      "<|split_token|>This is Trajectory B. "
      "Picture 2: <|vision_start|><|image_pad|><|image_pad|><|vision_end|><|prog_token|>"
      "Picture 3: <|vision_start|><|image_pad|><|image_pad|><|vision_end|><|prog_token|>"
      "Now predict the preference between the two trajectories.<|pref_token|><|im_end|>\n";
  EXPECT_EQ(render_pair_prompt("open drawer", {2}, {2, 2}, true), expected);
  EXPECT_EQ(render_pair_prompt("x", {1}, {1}, false).find("Also predict"), std::string::npos);
}

// ------------------------------------------------------------------ full inputs

const Tokenizer* robometer_tokenizer() {
  static std::unique_ptr<Tokenizer> tok = [] {
    const fs::path p = locate_tokenizer_json();
    if (p.empty() || !fs::exists(p)) return std::unique_ptr<Tokenizer>();
    return std::make_unique<Tokenizer>(Tokenizer::robometer_from_file(p));
  }();
  return tok.get();
}

#define REQUIRE_TOKENIZER() \
  if (!robometer_tokenizer()) GTEST_SKIP() << "Qwen3 tokenizer.json not found: run scripts/deps-node"

at::Tensor noise_frames(int64_t k, int64_t h, int64_t w, int seed) {
  at::manual_seed(seed);
  return at::randint(0, 256, {k, h, w, 3}, at::kByte);
}

int64_t count(const at::Tensor& row, int64_t id) { return row.eq(id).sum().item<int64_t>(); }

TEST(Processor, ProgressBatchLayout) {
  REQUIRE_TOKENIZER();
  const Processor proc(*robometer_tokenizer());
  const ModelInputs in = proc.progress_inputs(
      {{"pick up cup", noise_frames(3, 240, 320, 1)}, {"open the drawer", noise_frames(2, 240, 240, 2)}});
  const int64_t image_pad = 151655, prog = 151673, vision_end = 151653, pad = 151643;
  ASSERT_EQ(in.input_ids.size(0), 2);
  // 240x320 -> 256x320 -> 16x20 patches -> 80 tokens; 240x240 -> 256x256 -> 64 tokens.
  EXPECT_EQ(count(in.input_ids[0], image_pad), 3 * 80);
  EXPECT_EQ(count(in.input_ids[1].masked_select(in.attention_mask[1].to(at::kBool)), image_pad), 2 * 64);
  EXPECT_EQ(in.pixel_values.size(0), 3 * 320 + 2 * 256);
  EXPECT_EQ(in.pixel_values.size(1), 1536);
  EXPECT_TRUE(in.image_grid_thw.equal(
      at::tensor({1, 16, 20, 1, 16, 20, 1, 16, 20, 1, 16, 16, 1, 16, 16}, at::kLong).view({5, 3})));
  ASSERT_EQ(in.prog_positions.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(in.prog_positions[1][2].item<int64_t>(), -1);
  for (int b = 0; b < 2; ++b) {
    EXPECT_EQ(in.pref_positions[b].item<int64_t>(), -1);
    const int64_t len = in.attention_mask[b].sum().item<int64_t>();
    EXPECT_EQ(in.input_ids[b][0].item<int64_t>(), 151644);        // <|im_start|>
    EXPECT_EQ(in.input_ids[b][len - 2].item<int64_t>(), 151645);  // <|im_end|>
    EXPECT_EQ(in.input_ids[b][len - 1].item<int64_t>(), 198);     // "\n"
    EXPECT_EQ(in.input_ids[b][len - 3].item<int64_t>(), prog);    // last frame's prog token
    for (int t = 0; t < (b == 0 ? 3 : 2); ++t) {
      const int64_t pos = in.prog_positions[b][t].item<int64_t>();
      EXPECT_EQ(in.input_ids[b][pos].item<int64_t>(), prog);
      EXPECT_EQ(in.input_ids[b][pos - 1].item<int64_t>(), vision_end);  // right after its image
    }
    if (len < in.input_ids.size(1)) {
      EXPECT_TRUE(in.input_ids[b].slice(0, len).eq(pad).all().item<bool>());
      EXPECT_TRUE(in.attention_mask[b].slice(0, len).eq(0).all().item<bool>());
    }
  }
  // The text before the first image tokenizes exactly as the rendered prefix does on its own.
  const Tokenizer& tok = *robometer_tokenizer();
  const auto prefix =
      tok.encode("<|im_start|>user\n" + progress_instruction("pick up cup") + "Picture 1: <|vision_start|>");
  const at::Tensor head = in.input_ids[0].slice(0, 0, static_cast<int64_t>(prefix.size()));
  EXPECT_TRUE(head.equal(at::tensor(prefix, at::kLong)));
  EXPECT_EQ(in.input_ids[0][static_cast<int64_t>(prefix.size())].item<int64_t>(), image_pad);
}

TEST(Processor, PairLayoutPutsAFirstThenSplitThenBThenPref) {
  REQUIRE_TOKENIZER();
  const Processor proc(*robometer_tokenizer());
  const ModelInputs in =
      proc.pair_inputs({{"stack the cups", noise_frames(2, 240, 320, 3), noise_frames(2, 240, 320, 4)}});
  const int64_t split = 151669, pref = 151671;
  ASSERT_EQ(in.prog_positions.sizes(), (std::vector<int64_t>{1, 4}));
  const at::Tensor ids = in.input_ids[0];
  const int64_t len = ids.size(0);
  EXPECT_EQ(count(ids, split), 1);
  EXPECT_EQ(count(ids, pref), 1);
  EXPECT_EQ(count(ids, 151655), 4 * 80);
  const int64_t split_pos = ids.eq(split).nonzero().item<int64_t>();
  EXPECT_LT(in.prog_positions[0][1].item<int64_t>(), split_pos);
  EXPECT_GT(in.prog_positions[0][2].item<int64_t>(), split_pos);
  EXPECT_EQ(in.pref_positions[0].item<int64_t>(), len - 3);  // ...<|pref_token|><|im_end|>\n
  EXPECT_EQ(in.image_grid_thw.size(0), 4);
  EXPECT_EQ(in.pixel_values.size(0), 4 * 320);
  // Frames of A come first in pixel_values.
  const ImagePatches a0 = preprocess_image(noise_frames(2, 240, 320, 3)[0], proc.options());
  EXPECT_TRUE(in.pixel_values.slice(0, 0, 320).equal(a0.pixel_values));
}

TEST(Processor, RejectsBadFramesAndSpecialTokensInTasks) {
  REQUIRE_TOKENIZER();
  const Processor proc(*robometer_tokenizer());
  EXPECT_THROW(proc.progress_inputs({{"x", at::zeros({2, 32, 32, 3}, at::kFloat)}}), Error);
  EXPECT_THROW(proc.progress_inputs({{"x", at::zeros({32, 32, 3}, at::kByte)}}), Error);
  EXPECT_THROW(proc.progress_inputs({}), Error);
  EXPECT_THROW(proc.progress_inputs({{"<|image_pad|>", noise_frames(1, 64, 64, 5)}}), Error);
}

}  // namespace
}  // namespace robometer::model
