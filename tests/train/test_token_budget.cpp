// train.max_tokens_per_batch: how a micro-batch is cut into forwards within the token budget.
#include <gtest/gtest.h>

#include <vector>

#include "robometer/core/error.h"
#include "robometer/train/token_budget.h"

namespace train = robometer::train;

namespace {

std::vector<std::pair<size_t, size_t>> ranges(const std::vector<train::SampleRange>& parts) {
  std::vector<std::pair<size_t, size_t>> out;
  for (const auto& r : parts) out.emplace_back(r.begin, r.end);
  return out;
}

using Ranges = std::vector<std::pair<size_t, size_t>>;

TEST(TokenBudget, PackedCostIsTheSumPaddedIsRowsTimesTheLongest) {
  const std::vector<int64_t> len = {10, 30, 20};
  EXPECT_EQ(train::forward_tokens(len, {0, 3}, true), 60);
  EXPECT_EQ(train::forward_tokens(len, {0, 3}, false), 90);
  EXPECT_EQ(train::forward_tokens(len, {2, 3}, false), 20);
}

TEST(TokenBudget, GreedyInSampleOrderWithinTheBudget) {
  const std::vector<int64_t> len = {10, 30, 20, 40, 5};
  // Packed, budget 50: 10+30 | 20 (+40 > 50) | 40+5.
  EXPECT_EQ(ranges(train::split_by_token_budget(len, 50, true)), (Ranges{{0, 2}, {2, 3}, {3, 5}}));
  // Padded, budget 60: 2x30 | 20 (2x40 > 60) | 40 (2x40 > 60) ... 40 and 5 cost 80.
  EXPECT_EQ(ranges(train::split_by_token_budget(len, 60, false)), (Ranges{{0, 2}, {2, 3}, {3, 4}, {4, 5}}));
  for (const bool packing : {true, false})
    for (const int64_t budget : {40, 45, 60, 100, 1000})
      for (const auto& r : train::split_by_token_budget(len, budget, packing))
        EXPECT_LE(train::forward_tokens(len, r, packing), budget) << budget;
}

TEST(TokenBudget, NoBudgetIsOneForwardAndAnOversizedSampleRunsAlone) {
  const std::vector<int64_t> len = {10, 300, 20};
  EXPECT_EQ(ranges(train::split_by_token_budget(len, 0, true)), (Ranges{{0, 3}}));
  EXPECT_EQ(ranges(train::split_by_token_budget(len, 100, true)), (Ranges{{0, 1}, {1, 2}, {2, 3}}));
  EXPECT_EQ(ranges(train::split_by_token_budget(len, 1, false)), (Ranges{{0, 1}, {1, 2}, {2, 3}}));
}

TEST(TokenBudget, AtLeastMinPartsByHalvingTheCostliestRange) {
  const std::vector<int64_t> len = {10, 10, 10, 10, 40, 40};
  // No budget, 2 parts: halves of the whole. 3 parts: then the costlier half {3,6} is halved.
  EXPECT_EQ(ranges(train::split_by_token_budget(len, 0, true, 2)), (Ranges{{0, 3}, {3, 6}}));
  EXPECT_EQ(ranges(train::split_by_token_budget(len, 0, true, 3)), (Ranges{{0, 3}, {3, 4}, {4, 6}}));
  const auto six = train::split_by_token_budget(len, 0, true, 6);
  EXPECT_EQ(six.size(), 6u);
  for (size_t i = 0; i < six.size(); ++i) EXPECT_EQ(six[i].begin, i);
  EXPECT_THROW(train::split_by_token_budget(len, 0, true, 7), robometer::Error);
  EXPECT_THROW(train::split_by_token_budget({}, 0, true), robometer::Error);
}

}  // namespace
