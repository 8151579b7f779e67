// Streaming rewards (model/stream_session.h): a KV-cached session fed frame by frame gives the
// numbers of one `all`-mode forward over the same frames (fp32 CPU, tiny model).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "eval_test_util.h"
#include "robometer/eval/scorer.h"
#include "robometer/model/rotary.h"
#include "robometer/model/stream_session.h"

namespace robometer::eval {
namespace {

class Stream : public test::TinyModelSuite {};

void expect_relative(const std::vector<double>& got, const std::vector<double>& want,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_LE(std::abs(got[i] - want[i]), 1e-5 * std::abs(want[i]))
        << what << " frame " << i << ": " << got[i] << " vs " << want[i];
}

// The stream's tokens and M-RoPE positions are the full prompt's, up to its last <|prog_token|>.
TEST_F(Stream, TokensAndPositionsEqualTheFullPrompt) {
  auto& b = *bundle_;
  model::StreamModel sm(b);
  const std::string task = "put the red block in the blue bowl";
  auto s = sm.open(task);
  // More than 9 pictures ("Picture 10: " tokenizes differently), 1 and 3 frames per append.
  const at::Tensor frames = test::test_frames(11, 64, 3);
  std::vector<int64_t> ids, pos[3];
  for (int64_t i = 0; i < 11; i += i == 4 ? 3 : 1) {
    const auto a = sm.prepare(*s, frames.slice(0, i, i == 4 ? 7 : i + 1));
    ids.insert(ids.end(), a.ids.begin(), a.ids.end());
    for (int d = 0; d < 3; ++d) pos[d].insert(pos[d].end(), a.positions[d].begin(), a.positions[d].end());
    sm.run({a});
  }
  EXPECT_EQ(s->frames(), 11);
  EXPECT_EQ(s->tokens(), static_cast<int64_t>(ids.size()));

  const auto in = b.processor->progress_inputs({{task, frames}});
  const auto full_pos = model::mrope_position_ids(in.input_ids, in.attention_mask, in.image_grid_thw,
                                                  b.model->config().backbone);
  const int64_t last_prog = in.prog_positions[0][10].item<int64_t>();
  ASSERT_EQ(static_cast<int64_t>(ids.size()), last_prog + 1);
  for (int64_t j = 0; j <= last_prog; ++j) {
    ASSERT_EQ(ids[j], in.input_ids[0][j].item<int64_t>()) << "token " << j;
    for (int d = 0; d < 3; ++d)
      ASSERT_EQ(pos[d][j], full_pos[d][0][j].item<int64_t>()) << "position " << d << "," << j;
  }
}

TEST_F(Stream, OneFrameAtATimeEqualsAllModeFor1_8And64Frames) {
  Scorer scorer(*bundle_, {4, 8});
  for (int64_t t : {1, 8, 64}) {
    const at::Tensor frames = test::test_frames(t, 64, 10 + t);
    const auto all = scorer.all_frames(frames, "open the drawer");
    const auto st = scorer.stream(frames, "open the drawer");
    EXPECT_EQ(st.frame_indices, all.frame_indices);
    expect_relative(st.progress, all.progress, "progress T=" + std::to_string(t));
    expect_relative(st.success, all.success, "success T=" + std::to_string(t));
  }
}

// Sessions of different tasks, lengths and frame sizes in one packed forward, several frames per
// append: each still equals its own `all` forward (per-session and padded attention alike).
void ragged_sessions_equal_all_mode(model::ModelBundle& bundle, bool padded) {
  SCOPED_TRACE(padded ? "padded attention" : "per-session attention");
  Scorer scorer(bundle, {4, 8});
  model::StreamOptions opts;
  opts.padded_attention = padded;
  model::StreamModel sm(bundle, opts);
  const at::Tensor a = test::test_frames(7, 64, 21);
  at::manual_seed(22);
  const at::Tensor c = at::randint(0, 256, {5, 96, 64, 3}, at::kByte);
  auto sa = sm.open("open the drawer");
  auto sc = sm.open("fold the towel");
  std::vector<double> pa, pc, ua, uc;
  auto take = [](std::vector<double>& p, std::vector<double>& u, const model::StreamFrameOutputs& o) {
    p.insert(p.end(), o.progress.begin(), o.progress.end());
    u.insert(u.end(), o.success.begin(), o.success.end());
  };
  // a: 3 + 1 + 3 frames; c: 1 + 4 frames; steps batch both sessions while both have frames.
  auto r1 = sm.append({sa.get(), sc.get()}, {a.slice(0, 0, 3), c.slice(0, 0, 1)});
  take(pa, ua, r1[0]);
  take(pc, uc, r1[1]);
  auto r2 = sm.append({sc.get(), sa.get()}, {c.slice(0, 1, 5), a.slice(0, 3, 4)});
  take(pc, uc, r2[0]);
  take(pa, ua, r2[1]);
  take(pa, ua, sm.append({sa.get()}, {a.slice(0, 4, 7)})[0]);
  const auto all_a = scorer.all_frames(a, "open the drawer");
  const auto all_c = scorer.all_frames(c, "fold the towel");
  expect_relative(pa, all_a.progress, "session a progress");
  expect_relative(ua, all_a.success, "session a success");
  expect_relative(pc, all_c.progress, "session c progress");
  expect_relative(uc, all_c.success, "session c success");
  EXPECT_THROW(sm.append({sa.get(), sa.get()}, {a.slice(0, 0, 1), a.slice(0, 1, 2)}), robometer::Error);
}

TEST_F(Stream, BatchedRaggedSessionsAndMultiFrameAppends) {
  ragged_sessions_equal_all_mode(*bundle_, false);
  ragged_sessions_equal_all_mode(*bundle_, true);
}

TEST_F(Stream, FrameLimitAndCacheBudgetRefuseWithoutChangingTheSession) {
  model::StreamOptions o;
  o.max_frames_per_session = 3;
  o.budget = std::make_shared<model::KvCacheBudget>(0);
  model::StreamModel sm(*bundle_, o);
  const at::Tensor f = test::test_frames(4, 64, 5);
  auto s = sm.open("open the drawer");
  sm.append({s.get()}, {f.slice(0, 0, 2)});
  const int64_t tokens = s->tokens();
  EXPECT_THROW(sm.append({s.get()}, {f.slice(0, 2, 4)}), model::StreamFrameLimit);
  EXPECT_EQ(s->frames(), 2);
  EXPECT_EQ(s->tokens(), tokens);
  sm.append({s.get()}, {f.slice(0, 2, 3)});
  EXPECT_EQ(s->frames(), 3);

  // Budget: charged exactly the cache tensors' bytes; released when the session goes.
  const auto& t = bundle_->model->config().backbone.text;
  const int64_t per_token = 2 * t.num_hidden_layers * t.num_key_value_heads * t.head_dim * 4;  // fp32
  EXPECT_EQ(o.budget->used(), s->cache_bytes());
  EXPECT_EQ(s->cache_bytes() % per_token, 0);
  EXPECT_GE(s->cache_bytes() / per_token, s->tokens());
  s.reset();
  EXPECT_EQ(o.budget->used(), 0);

  o.max_frames_per_session = 0;
  o.budget = std::make_shared<model::KvCacheBudget>(100 * per_token);  // < the first 256-token block
  model::StreamModel tight(*bundle_, o);
  auto s2 = tight.open("open the drawer");
  EXPECT_THROW(tight.append({s2.get()}, {f.slice(0, 0, 1)}), model::KvCacheBudgetExceeded);
  EXPECT_EQ(s2->frames(), 0);
  EXPECT_EQ(o.budget->used(), 0);
  EXPECT_THROW(tight.open("bad <|prog_token|> task"), robometer::Error);
}

}  // namespace
}  // namespace robometer::eval
