// Packing of padded processor outputs (see model_inputs.h).
#include "robometer/model/model_inputs.h"

#include <algorithm>
#include <string>

#include "robometer/core/error.h"

namespace robometer::model {

ModelInputs pack_inputs(const ModelInputs& padded) {
  if (padded.seq_lens.defined()) return padded;
  if (!padded.input_ids.defined() || padded.input_ids.dim() != 2 || !padded.input_ids.is_cpu())
    throw Error("pack_inputs: needs host input_ids [B, L]");
  const int64_t B = padded.input_ids.size(0), L = padded.input_ids.size(1);
  const at::Tensor mask = padded.attention_mask.defined() ? padded.attention_mask.to(at::kLong).contiguous()
                                                          : at::ones({B, L}, at::kLong);
  const at::Tensor ids = padded.input_ids.to(at::kLong).contiguous();
  auto M = mask.accessor<int64_t, 2>();
  ModelInputs out = padded;
  out.attention_mask = at::Tensor();
  out.seq_lens = at::empty({B}, at::kLong);
  auto lens = out.seq_lens.accessor<int64_t, 1>();
  std::vector<int64_t> offset(static_cast<size_t>(B));
  int64_t total = 0;
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = 0;
    while (n < L && M[b][n] == 1) ++n;  // right padding: the real tokens come first
    for (int64_t j = n; j < L; ++j)
      if (M[b][j] != 0) throw Error("pack_inputs: sample " + std::to_string(b) + " is not right-padded");
    if (n == 0) throw Error("pack_inputs: sample " + std::to_string(b) + " has no token");
    lens[b] = n;
    offset[static_cast<size_t>(b)] = total;
    total += n;
  }
  out.input_ids = at::empty({1, total}, at::kLong);
  int64_t* dst = out.input_ids.data_ptr<int64_t>();
  const int64_t* src = ids.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b)
    std::copy(src + b * L, src + b * L + lens[b], dst + offset[static_cast<size_t>(b)]);
  // Head positions index the packed row; -1 (none) stays -1.
  auto shift = [&](const at::Tensor& pos) {
    if (!pos.defined() || pos.numel() == 0) return pos;
    at::Tensor p = pos.to(at::kLong).contiguous().clone();
    const int64_t per = p.numel() / B;
    int64_t* v = p.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < per; ++t) {
        int64_t& x = v[b * per + t];
        if (x >= lens[b])
          throw Error("pack_inputs: a head position of sample " + std::to_string(b) + " is padding");
        if (x >= 0) x += offset[static_cast<size_t>(b)];
      }
    return p;
  };
  out.prog_positions = shift(padded.prog_positions);
  out.pref_positions = shift(padded.pref_positions);
  return out;
}

std::vector<int64_t> packed_lengths(const ModelInputs& in) {
  if (!in.seq_lens.defined()) return {};
  const at::Tensor l = in.seq_lens.to(at::kCPU, at::kLong).contiguous();
  return std::vector<int64_t>(l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
}

}  // namespace robometer::model
