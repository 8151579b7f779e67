#include "robometer/data/labels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "robometer/core/error.h"

namespace robometer::data {

int64_t stored_frame_index(int64_t n, int max_stored, int64_t j) {
  return max_stored <= 0 || n <= max_stored ? j : j * n / max_stored;
}

std::vector<int64_t> stored_frame_indices(int64_t n, int max_stored) {
  if (n <= 0) return {};
  const int64_t s = max_stored <= 0 ? n : std::min<int64_t>(n, max_stored);
  std::vector<int64_t> idx(static_cast<size_t>(s));
  for (int64_t j = 0; j < s; ++j) idx[static_cast<size_t>(j)] = stored_frame_index(n, max_stored, j);
  return idx;
}

std::vector<int64_t> linspace_positions(int64_t n, int k) {
  std::vector<int64_t> pos;
  if (n <= 0) return pos;
  pos.reserve(static_cast<size_t>(std::min<int64_t>(n, std::max(k, 1))));
  if (n <= k) {
    for (int64_t i = 0; i < n; ++i) pos.push_back(i);
    return pos;
  }
  if (k == 1) return {n - 1};  // the original keeps the last frame when asked for one
  // numpy.linspace: step = (stop - start) / (num - 1), y_i = i * step, last = stop exactly.
  const double step = static_cast<double>(n - 1) / static_cast<double>(k - 1);
  for (int i = 0; i < k; ++i) {
    double y = i == k - 1 ? static_cast<double>(n - 1) : i * step;
    pos.push_back(static_cast<int64_t>(std::nearbyint(y)));  // default rounding: half to even
  }
  pos.front() = 0;
  pos.back() = n - 1;
  for (size_t i = 1; i < pos.size(); ++i) pos[i] = std::min(std::max(pos[i], pos[i - 1]), n - 1);
  return pos;
}

namespace {
void append_range(std::vector<int64_t>& out, int64_t from, int64_t to) {  // inclusive, either way
  out.reserve(out.size() + static_cast<size_t>(std::abs(to - from) + 1));
  if (from <= to) {
    for (int64_t i = from; i <= to; ++i) out.push_back(i);
  } else {
    for (int64_t i = from; i >= to; --i) out.push_back(i);
  }
}
}  // namespace

std::vector<int64_t> segment_indices(int64_t s, int64_t start, int64_t end, std::optional<int64_t> middle) {
  if (s <= 0) return {};
  if (s == 1) return {0};
  if (s == 2) return {0, 1};
  auto clamp = [s](int64_t i) { return std::max<int64_t>(0, std::min(i, s - 1)); };
  start = clamp(start);
  end = clamp(end);
  std::vector<int64_t> out;
  if (!middle) {
    append_range(out, start, end);
    return out;
  }
  const int64_t mid = clamp(*middle);
  append_range(out, start, mid);
  std::vector<int64_t> second;
  append_range(second, mid, end);
  for (int64_t i : second)
    if (i != mid) out.push_back(i);  // the original drops every copy of the middle index
  return out;
}

std::vector<double> progress_labels(int64_t num_stored, const std::vector<int64_t>& indices, double cutoff,
                                    std::optional<float> partial_success) {
  std::vector<double> g;
  if (indices.empty()) return g;
  g.reserve(indices.size());
  const int64_t s = *std::min_element(indices.begin(), indices.end());
  // The original applies the cutoff whenever c > 0 (c = 1 gives C = S, the plain formula).
  const int64_t cutoff_index = static_cast<int64_t>(cutoff * static_cast<double>(num_stored));
  const double denom = static_cast<double>(std::max<int64_t>(1, cutoff_index - s - 1));
  for (int64_t i : indices) g.push_back(std::min(1.0, static_cast<double>(i - s) / denom));

  if (partial_success && std::abs(static_cast<double>(*partial_success) - 1.0) > 1e-6) {
    auto last = std::find(indices.begin(), indices.end(), num_stored - 1);
    if (last != indices.end()) {
      std::fill(g.begin(), g.end(), 0.0);
      g[static_cast<size_t>(last - indices.begin())] = static_cast<double>(*partial_success);
    }
  }
  return g;
}

std::vector<double> success_labels(const std::vector<double>& progress, double cutoff, Quality quality) {
  std::vector<double> y(progress.size(), 0.0);
  if (quality != Quality::Successful) return y;
  for (size_t t = 0; t < progress.size(); ++t) y[t] = progress[t] >= cutoff ? 1.0 : 0.0;
  return y;
}

std::vector<double> success_inclusion(const std::vector<double>& progress, const std::vector<double>& success,
                                      Quality quality, double min_success) {
  if (progress.size() != success.size())
    throw Error("success_inclusion: progress and success lengths differ");
  std::vector<double> m(progress.size());
  for (size_t t = 0; t < progress.size(); ++t) {
    bool include = progress[t] < min_success || success[t] > 0.5 || quality != Quality::Successful;
    m[t] = include ? 1.0 : 0.0;
  }
  return m;
}

float progress_mask(Quality quality, bool preference_only_source, bool has_partial_success) {
  if (preference_only_source) return 0.f;
  if (has_partial_success) return 1.f;
  return quality == Quality::Successful ? 1.f : 0.f;
}

std::vector<double> last_frame_progress_mask(int64_t num_stored, const std::vector<int64_t>& indices, int K,
                                             bool enabled, std::optional<float> partial_success,
                                             bool preference_only_source) {
  std::vector<double> m(static_cast<size_t>(std::max<int64_t>(K, static_cast<int64_t>(indices.size()))), 1.0);
  if (!enabled || !partial_success) return m;
  if (*partial_success == 1.0f && !preference_only_source) return m;
  std::fill(m.begin(), m.end(), 0.0);
  for (size_t i = 0; i < indices.size(); ++i)
    if (indices[i] == num_stored - 1) m[i] = 1.0;
  return m;
}

at::Tensor two_hot(const std::vector<double>& progress, int bins) {
  if (bins < 2) throw Error("two_hot: need at least 2 bins");
  at::Tensor q = at::zeros({static_cast<int64_t>(progress.size()), bins}, at::kFloat);
  auto acc = q.accessor<float, 2>();
  for (size_t t = 0; t < progress.size(); ++t) {
    const double g = std::min(1.0, std::max(0.0, progress[t]));
    const double b = g * (bins - 1);
    const int64_t lo = static_cast<int64_t>(std::floor(b));
    const int64_t hi = static_cast<int64_t>(std::ceil(b));
    if (lo == hi) {
      acc[t][lo] = 1.f;
    } else {
      acc[t][lo] += static_cast<float>(static_cast<double>(hi) - b);
      acc[t][hi] += static_cast<float>(b - static_cast<double>(lo));
    }
  }
  return q;
}

}  // namespace robometer::data
