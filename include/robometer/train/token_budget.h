// train.max_tokens_per_batch: a micro-batch whose sequences need more tokens than the budget in
// one forward is run as several forwards over consecutive samples (gradients accumulate; the
// loss is the same sum over the same global denominators, so the step is that of the whole
// micro-batch up to summation order). The batch keeps train.batch_size pairs: the loss means,
// the learning rate's meaning, the sampler and resume stay those of the fixed-size batch.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace robometer::train {

struct SampleRange {
  size_t begin = 0, end = 0;  // [begin, end)
  size_t size() const { return end - begin; }
};

// Tokens one forward over samples [r.begin, r.end) computes: the sum of lengths when packed,
// rows × the longest when padded.
int64_t forward_tokens(const std::vector<int64_t>& lengths, SampleRange r, bool packing);

// Consecutive ranges covering every sample, each within `budget` tokens where possible (greedy,
// in sample order; a sample longer than the budget runs alone). budget <= 0: one range. At least
// `min_parts` ranges (the largest range with two or more samples is halved until there are), so
// that every rank runs the same number of forwards and backwards; throws Error when there are
// fewer samples than `min_parts`.
std::vector<SampleRange> split_by_token_budget(const std::vector<int64_t>& lengths, int64_t budget,
                                               bool packing, size_t min_parts = 1);

}  // namespace robometer::train
