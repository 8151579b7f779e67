#include "robometer/train/token_budget.h"

#include <algorithm>
#include <string>

#include "robometer/core/error.h"

namespace robometer::train {

int64_t forward_tokens(const std::vector<int64_t>& lengths, SampleRange r, bool packing) {
  int64_t sum = 0, longest = 0;
  for (size_t i = r.begin; i < r.end; ++i) {
    sum += lengths[i];
    longest = std::max(longest, lengths[i]);
  }
  return packing ? sum : longest * static_cast<int64_t>(r.size());
}

std::vector<SampleRange> split_by_token_budget(const std::vector<int64_t>& lengths, int64_t budget,
                                               bool packing, size_t min_parts) {
  const size_t n = lengths.size();
  if (n < std::max<size_t>(min_parts, 1))
    throw Error("token budget: " + std::to_string(n) + " samples cannot be run as " +
                std::to_string(std::max<size_t>(min_parts, 1)) + " forwards");
  std::vector<SampleRange> parts;
  if (budget <= 0) {
    parts.push_back({0, n});
  } else {
    SampleRange cur{0, 0};
    for (size_t i = 0; i < n; ++i) {
      const SampleRange grown{cur.begin, i + 1};
      if (cur.size() > 0 && forward_tokens(lengths, grown, packing) > budget) {
        parts.push_back(cur);
        cur = {i, i + 1};
      } else {
        cur = grown;
      }
    }
    parts.push_back(cur);
  }
  while (parts.size() < min_parts) {
    // Halve the costliest range that can be halved (the first of equals: deterministic).
    size_t pick = parts.size();
    int64_t cost = -1;
    for (size_t i = 0; i < parts.size(); ++i)
      if (parts[i].size() >= 2 && forward_tokens(lengths, parts[i], packing) > cost) {
        pick = i;
        cost = forward_tokens(lengths, parts[i], packing);
      }
    const SampleRange r = parts[pick];
    const size_t mid = r.begin + r.size() / 2;
    parts[pick] = {r.begin, mid};
    parts.insert(parts.begin() + static_cast<std::ptrdiff_t>(pick) + 1, SampleRange{mid, r.end});
  }
  return parts;
}

}  // namespace robometer::train
