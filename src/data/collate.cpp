#include <string>
#include <utility>

#include "robometer/core/error.h"
#include "robometer/data/sample.h"

namespace robometer::data {

const char* strategy_name(Strategy s) {
  switch (s) {
    case Strategy::Rewind:
      return "rewind";
    case Strategy::Suboptimal:
      return "suboptimal";
    case Strategy::DifferentTask:
      return "different_task";
    case Strategy::Reverse:
      return "reverse";
  }
  return "?";
}

namespace {

void check_clip(const Clip& c, int64_t K, size_t i, const char* which) {
  auto bad = [&](const std::string& what) {
    throw Error("collate: sample " + std::to_string(i) + " clip " + which + ": " + what);
  };
  if (!c.progress.defined() || c.progress.dim() != 1 || c.progress.size(0) != K)
    bad("progress must be [K=" + std::to_string(K) + "]");
  if (!c.progress_target.defined() || c.progress_target.dim() != 2 || c.progress_target.size(0) != K ||
      c.progress_target.size(1) != kProgressBins)
    bad("progress_target must be [K, 10]");
  if (!c.success.defined() || c.success.numel() != K) bad("success must be [K]");
  if (!c.success_mask.defined() || c.success_mask.numel() != K) bad("success_mask must be [K]");
  if (c.frames.defined() && c.frames.size(0) != K) bad("frames must have K rows");
  if (c.progress_frame_mask.defined() && c.progress_frame_mask.numel() != K)
    bad("progress_frame_mask must be [K]");
}

at::Tensor frame_mask_or_ones(const Clip& c, int64_t K) {
  return c.progress_frame_mask.defined() ? c.progress_frame_mask.to(at::kFloat).reshape({K})
                                         : at::ones({K}, at::kFloat);
}

}  // namespace

Batch collate(std::vector<PairSample> samples) {
  Batch b;
  if (samples.empty()) throw Error("collate: empty batch");
  const int64_t K = samples[0].a.progress.defined() ? samples[0].a.progress.numel() : 0;
  std::vector<at::Tensor> pa, ta, sa, ma, pb, tb, sb, mb, fa, fb;
  std::vector<float> pref, pma, pmb;
  for (size_t i = 0; i < samples.size(); ++i) {
    const PairSample& s = samples[i];
    check_clip(s.a, K, i, "A");
    check_clip(s.b, K, i, "B");
    pa.push_back(s.a.progress);
    ta.push_back(s.a.progress_target);
    sa.push_back(s.a.success);
    ma.push_back(s.a.success_mask);
    pb.push_back(s.b.progress);
    tb.push_back(s.b.progress_target);
    sb.push_back(s.b.success);
    mb.push_back(s.b.success_mask);
    fa.push_back(frame_mask_or_ones(s.a, K));
    fb.push_back(frame_mask_or_ones(s.b, K));
    pref.push_back(s.preference);
    pma.push_back(s.a.progress_mask);
    pmb.push_back(s.b.progress_mask);
  }
  const auto n = static_cast<int64_t>(samples.size());
  b.preference = at::tensor(pref, at::kFloat);
  b.progress_a = at::stack(pa);
  b.progress_target_a = at::stack(ta);
  b.progress_mask_a = at::tensor(pma, at::kFloat).view({n});
  b.progress_frame_mask_a = at::stack(fa);
  b.success_a = at::stack(sa);
  b.success_mask_a = at::stack(ma);
  b.progress_b = at::stack(pb);
  b.progress_target_b = at::stack(tb);
  b.progress_mask_b = at::tensor(pmb, at::kFloat).view({n});
  b.progress_frame_mask_b = at::stack(fb);
  b.success_b = at::stack(sb);
  b.success_mask_b = at::stack(mb);
  b.samples = std::move(samples);
  return b;
}

Batch slice_batch(const Batch& batch, int64_t begin, int64_t end) {
  if (begin < 0 || end <= begin || end > batch.size())
    throw Error("slice_batch: samples [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") of a batch of " + std::to_string(batch.size()));
  Batch s;
  s.samples.assign(batch.samples.begin() + begin, batch.samples.begin() + end);
  const std::pair<const at::Tensor*, at::Tensor*> fields[] = {
      {&batch.preference, &s.preference},
      {&batch.progress_a, &s.progress_a},
      {&batch.progress_target_a, &s.progress_target_a},
      {&batch.progress_mask_a, &s.progress_mask_a},
      {&batch.progress_frame_mask_a, &s.progress_frame_mask_a},
      {&batch.success_a, &s.success_a},
      {&batch.success_mask_a, &s.success_mask_a},
      {&batch.progress_b, &s.progress_b},
      {&batch.progress_target_b, &s.progress_target_b},
      {&batch.progress_mask_b, &s.progress_mask_b},
      {&batch.progress_frame_mask_b, &s.progress_frame_mask_b},
      {&batch.success_b, &s.success_b},
      {&batch.success_mask_b, &s.success_mask_b}};
  for (const auto& [from, to] : fields)
    if (from->defined()) *to = from->narrow(0, begin, end - begin);
  return s;
}

}  // namespace robometer::data
