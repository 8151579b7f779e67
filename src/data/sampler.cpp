#include "robometer/data/sampler.h"

#include <algorithm>
#include <array>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"

namespace robometer::data {

const char* clip_order_name(ClipOrder o) {
  switch (o) {
    case ClipOrder::Forward:
      return "forward";
    case ClipOrder::Rewind:
      return "rewind";
    case ClipOrder::Reverse:
      return "reverse";
    case ClipOrder::Whole:
      return "whole";
  }
  return "?";
}

namespace {

constexpr int kMaxTrajectoryAttempts = 10;  // per round (the original _try_generate_sample)
constexpr int kMaxStrategyAttempts = 10;    // rebalancing loop (the original _create_pref_sample)
constexpr int kMaxStrategyFailures = 3;     // a strategy is dropped after this many failures
constexpr int kMaxStrategyRetries = 3;      // retries inside one strategy (_execute_strategy)

constexpr std::array<Strategy, 4> kStrategies{Strategy::Rewind, Strategy::Suboptimal, Strategy::DifferentTask,
                                              Strategy::Reverse};

// Index of the weighted choice: cumulative sum until u <= cum (the original's loop).
size_t pick_weighted(Rng& rng, const std::vector<double>& weights) {
  double total = 0;
  for (double w : weights) total += w;
  const double u = rng.uniform();
  double cum = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (weights[i] <= 0) continue;
    cum += weights[i] / total;
    if (u <= cum) return i;
  }
  for (size_t i = weights.size(); i-- > 0;)  // rounding left u above the last sum
    if (weights[i] > 0) return i;
  return 0;
}

// Three distinct sorted frames of [0, n) (random.sample(range(n), 3), sorted).
std::array<int64_t, 3> three_sorted(Rng& rng, int64_t n) {
  std::array<int64_t, 3> f{};
  int picked = 0;
  while (picked < 3) {
    int64_t x = rng.below(n);
    bool dup = false;
    for (int i = 0; i < picked; ++i) dup |= f[static_cast<size_t>(i)] == x;
    if (!dup) f[static_cast<size_t>(picked++)] = x;
  }
  std::sort(f.begin(), f.end());
  return f;
}

}  // namespace

PairSampler::PairSampler(std::shared_ptr<const TrajectoryIndex> index, SamplerOptions opts)
    : index_(std::move(index)), opts_(std::move(opts)) {
  if (!index_ || index_->size() == 0) throw ConfigError("sampler: no trajectories");
  if (opts_.frames_per_clip < 3)
    throw ConfigError("sampler: frames_per_clip must be >= 3, got " + std::to_string(opts_.frames_per_clip));
  if (opts_.max_stored_frames < opts_.frames_per_clip)
    throw ConfigError("sampler: max_stored_frames must be >= frames_per_clip");
  double total = 0;
  for (double r : opts_.strategy_ratios) {
    if (!(r >= 0)) throw ConfigError("sampler: strategy ratios must be >= 0");
    total += r;
  }
  if (!(total > 0)) throw ConfigError("sampler: at least one strategy ratio must be positive");
  auto check_cutoff = [](const std::string& what, double c) {
    if (!(c > 0 && c <= 1)) throw ConfigError("sampler: success cutoff " + what + " must be in (0, 1]");
  };
  check_cutoff("default", opts_.default_success_cutoff);
  for (const auto& [s, c] : opts_.success_cutoffs) check_cutoff("of '" + s + "'", c);
  for (const auto& [s, w] : opts_.source_weights)
    if (!(w >= 0)) throw ConfigError("sampler: weight of source '" + s + "' must be >= 0");
  // A weight of 0 switches a source off as a place to draw from (its successful trajectories
  // may still serve as different-task negatives).
  // Per-source rules resolved once, by source id: the per-pair path compares no strings.
  const auto& names = index_->sources();
  for (uint32_t id = 0; id < names.size(); ++id) {
    const std::string& name = names[id];
    SourceRules r;
    r.weight = source_weight(name);
    r.success_cutoff = success_cutoff(name);
    r.preference_only = opts_.preference_only_sources.count(name) > 0;
    r.partial_progress = name.find(opts_.partial_success_progress_match) != std::string::npos;
    r.has_partial_success = index_->source_has_partial_success(name);
    rules_.push_back(r);
  }
  std::vector<uint32_t> listed;  // _filter_data_sources_by_strategy: is_suboptimal_fail_ds
  for (uint32_t id = 0; id < names.size(); ++id) {
    if (!(rules_[id].weight > 0)) continue;
    active_.ids.push_back(id);
    active_.weights.push_back(rules_[id].weight);
    rbm_weights_.push_back(rules_[id].weight * static_cast<double>(index_->by_source(id).size()));
    if (opts_.suboptimal_fail_sources.count(names[id])) listed.push_back(id);
  }
  if (active_.ids.empty())
    throw ConfigError("sampler: every data source has weight 0; give at least one a positive weight");
  auto check_prob = [](const char* what, double p) {
    if (!(p >= 0 && p <= 1)) throw ConfigError(std::string("sampler: ") + what + " must be in [0, 1]");
  };
  check_prob("different_task_same_source_prob", opts_.different_task_same_source_prob);
  check_prob("min_success", opts_.min_success);
  check_prob("partial_success_threshold", opts_.partial_success_threshold);
  suboptimal_ = active_;
  if (!listed.empty()) {
    suboptimal_ = {};
    for (uint32_t id : listed) {
      suboptimal_.ids.push_back(id);
      suboptimal_.weights.push_back(rules_[id].weight);
    }
  }
}

double PairSampler::success_cutoff(const std::string& source) const {
  auto it = opts_.success_cutoffs.find(source);
  return it == opts_.success_cutoffs.end() ? opts_.default_success_cutoff : it->second;
}

double PairSampler::source_weight(const std::string& source) const {
  auto it = opts_.source_weights.find(source);
  return it == opts_.source_weights.end() ? index_->source_weight(source) : it->second;
}

ClipPlan PairSampler::clip_from_segment(int64_t trajectory, ClipOrder order,
                                        const std::vector<int64_t>& segment, bool zero_labels) const {
  const int64_t num_frames = index_->num_frames(trajectory);
  const Quality quality = index_->quality(trajectory);
  const std::optional<float> partial_success = index_->partial_success(trajectory);
  const SourceRules& rules = rules_[index_->source_id(trajectory)];
  const int K = opts_.frames_per_clip;
  ClipPlan c;
  c.trajectory = trajectory;
  c.order = order;
  c.num_stored = std::min<int64_t>(num_frames, opts_.max_stored_frames);
  const double cutoff = rules.success_cutoff;

  // Labels on the whole segment first, then the same linspace selection (as the original does).
  std::vector<double> g = progress_labels(c.num_stored, segment, cutoff, partial_success);
  c.stored_indices.reserve(static_cast<size_t>(K));
  c.progress.reserve(static_cast<size_t>(K));
  for (int64_t p : linspace_positions(static_cast<int64_t>(segment.size()), K)) {
    c.stored_indices.push_back(segment[static_cast<size_t>(p)]);
    c.progress.push_back(g[static_cast<size_t>(p)]);
  }
  c.valid_frames = static_cast<int64_t>(c.stored_indices.size());
  const bool preference_only = rules.preference_only;
  c.progress_frame_mask = last_frame_progress_mask(
      c.num_stored, c.stored_indices, K, opts_.last_frame_partial_progress, partial_success, preference_only);
  while (static_cast<int>(c.stored_indices.size()) < K) {  // right padding: repeat the last
    c.stored_indices.push_back(c.stored_indices.back());
    c.progress.push_back(c.progress.back());
  }
  c.success = success_labels(c.progress, cutoff, quality);
  if (zero_labels) {  // a different task's video: no progress, no success
    std::fill(c.progress.begin(), c.progress.end(), 0.0);
    std::fill(c.success.begin(), c.success.end(), 0.0);
  }
  c.success_mask = success_inclusion(c.progress, c.success, quality, opts_.min_success);
  // collators/rbm_heads.py should_compute_progress: `partial_success is not None and
  // "roboreward" in data_source`.
  const bool graded_progress = partial_success.has_value() && rules.partial_progress;
  c.progress_mask = progress_mask(quality, preference_only, graded_progress);
  c.video_indices.reserve(c.stored_indices.size());
  for (int64_t i : c.stored_indices)
    c.video_indices.push_back(stored_frame_index(num_frames, opts_.max_stored_frames, i));
  return c;
}

std::optional<ClipPlan> PairSampler::make_clip(int64_t trajectory, ClipOrder order, Rng& rng,
                                               bool zero_labels) const {
  const int64_t S = std::min<int64_t>(index_->num_frames(trajectory), opts_.max_stored_frames);
  std::vector<int64_t> segment;
  if (order == ClipOrder::Whole) {
    segment = segment_indices(S, 0, S - 1);
  } else {
    if (S < 3) return std::nullopt;
    auto [f1, f2, f3] = three_sorted(rng, S);
    switch (order) {
      case ClipOrder::Forward:
        segment = segment_indices(S, f1, f3);
        break;  // middle unused
      case ClipOrder::Rewind:
        segment = segment_indices(S, f1, f2, f3);
        break;  // end=f2, mid=f3
      case ClipOrder::Reverse:
        segment = segment_indices(S, f3, f1);
        break;  // start=f3, end=f1
      case ClipOrder::Whole:
        break;
    }
  }
  return clip_from_segment(trajectory, order, segment, zero_labels);
}

std::optional<int64_t> PairSampler::same_task_unsuccessful(int64_t ref, Rng& rng) const {
  if (index_->partial_success(ref)) return different_partial_success(ref, rng);
  const auto group = index_->unsuccessful_by_task(index_->task_id(ref));
  std::vector<int64_t> cands;
  cands.reserve(group.size());
  for (int64_t i : group)
    if (i != ref) cands.push_back(i);
  if (cands.empty()) return std::nullopt;
  return rng.choice(cands);
}

std::optional<int64_t> PairSampler::different_partial_success(int64_t ref, Rng& rng) const {
  const auto ps = index_->partial_success(ref);
  std::vector<int64_t> cands;
  for (int64_t i : index_->by_task(index_->task_id(ref))) {
    const auto other = index_->partial_success(i);
    if (i == ref || !other) continue;
    if (std::abs(static_cast<double>(*ps) - static_cast<double>(*other)) >= opts_.partial_success_threshold)
      cands.push_back(i);
  }
  if (cands.empty()) return std::nullopt;
  return rng.choice(cands);
}

std::optional<int64_t> PairSampler::different_task(int64_t ref, Rng& rng) const {
  // Task lists are sorted task ids; "all but the own task" is read in place, not copied.
  const uint32_t own = index_->task_id(ref);
  struct Others {
    Span<uint32_t> tasks;
    size_t skip;  // position of the own task, or tasks.size()
    size_t size() const { return tasks.size() - (skip < tasks.size() ? 1 : 0); }
    uint32_t operator[](size_t k) const { return tasks[k < skip ? k : k + 1]; }
  };
  auto others = [own](Span<uint32_t> tasks) {
    const uint32_t* it = std::lower_bound(tasks.begin(), tasks.end(), own);
    return Others{tasks,
                  it != tasks.end() && *it == own ? static_cast<size_t>(it - tasks.begin()) : tasks.size()};
  };
  Others other{};
  if (rng.bernoulli(opts_.different_task_same_source_prob))
    other = others(index_->task_ids_of_source(index_->source_id(ref)));
  if (other.size() == 0) other = others(index_->tasks_with_successful());
  if (other.size() == 0) return std::nullopt;
  for (int attempt = 0; attempt < 2; ++attempt) {  // a source's task may lack successes
    const auto ids =
        index_->successful_by_task(other[static_cast<size_t>(rng.below(static_cast<int64_t>(other.size())))]);
    if (!ids.empty()) return rng.choice(ids);
  }
  return std::nullopt;
}

std::optional<PairSampler::Rejected> PairSampler::execute(Strategy s, int64_t chosen, Rng& rng) const {
  // The chosen side is a successful or a graded trajectory (the original PrefSampler takes a
  // graded one whatever its quality, for every strategy). An ungraded failure only gets here
  // when its task has no successful trajectory, which data.drop_tasks_without_success removes
  // as the original does; kept off, it must not become a rewind/reverse "positive".
  const bool successful = index_->is_successful(chosen);
  const bool graded = index_->partial_success(chosen).has_value();
  if (!successful && !graded) return std::nullopt;
  switch (s) {
    case Strategy::Rewind:
      return Rejected{chosen, chosen, ClipOrder::Rewind};
    case Strategy::Reverse:
      return Rejected{chosen, chosen, ClipOrder::Reverse};
    case Strategy::Suboptimal:
      for (int i = 0; i < kMaxStrategyRetries; ++i) {
        if (auto r = same_task_unsuccessful(chosen, rng)) {
          const auto pc = index_->partial_success(chosen);
          const auto pr = index_->partial_success(*r);
          if (pc && pr && *pr > *pc) return Rejected{chosen, *r, ClipOrder::Forward};  // swap
          return Rejected{*r, chosen, ClipOrder::Forward};
        }
      }
      return std::nullopt;
    case Strategy::DifferentTask:
      for (int i = 0; i < kMaxStrategyRetries; ++i)
        if (auto r = different_task(chosen, rng)) return Rejected{*r, chosen, ClipOrder::Forward};
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<PairPlan> PairSampler::create_pair(int64_t chosen, std::optional<Strategy> preferred,
                                                 Rng& rng) const {
  std::optional<Rejected> rej;
  Strategy used = Strategy::Rewind;
  int attempts = 1;
  if (preferred) {
    rej = execute(*preferred, chosen, rng);
    used = *preferred;
  } else {
    // Rebalancing: draw among the remaining strategies; drop one after 3 failures.
    std::vector<Strategy> strategies;
    std::vector<double> ratios;
    for (size_t i = 0; i < kStrategies.size(); ++i) {
      if (opts_.strategy_ratios[i] <= 0) continue;
      if (kStrategies[i] == Strategy::Suboptimal && !index_->has_unsuccessful()) continue;
      strategies.push_back(kStrategies[i]);
      ratios.push_back(opts_.strategy_ratios[i]);
    }
    std::array<int, kStrategies.size()> failures{};
    for (attempts = 1; attempts <= kMaxStrategyAttempts && !strategies.empty(); ++attempts) {
      size_t k = pick_weighted(rng, ratios);
      rej = execute(strategies[k], chosen, rng);
      if (rej) {
        used = strategies[k];
        break;
      }
      if (++failures[static_cast<size_t>(strategies[k])] >= kMaxStrategyFailures) {
        strategies.erase(strategies.begin() + static_cast<std::ptrdiff_t>(k));
        ratios.erase(ratios.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }
  }
  if (!rej) return std::nullopt;

  auto chosen_clip = make_clip(rej->chosen, ClipOrder::Forward, rng);
  auto rejected_clip = make_clip(rej->rejected, rej->order, rng, used == Strategy::DifferentTask);
  if (!chosen_clip || !rejected_clip) return std::nullopt;
  PairPlan p;
  p.chosen = std::move(*chosen_clip);
  p.rejected = std::move(*rejected_clip);
  p.strategy = used;
  p.task = std::string(index_->task_name(index_->task_id(rej->chosen)));
  p.attempts = attempts;
  return p;
}

std::optional<PairPlan> PairSampler::sample_for(int64_t item, std::optional<Strategy> preferred,
                                                Rng& rng) const {
  const uint32_t task = index_->task_id(item);
  std::optional<PairPlan> plan;
  // A drawn non-successful trajectory becomes the rejected one; a random successful trajectory of
  // its task the chosen one; both shown whole (the original PrefSampler._generate_sample).
  if (!index_->is_successful(item) && !index_->partial_success(item) &&
      !index_->successful_by_task(task).empty()) {
    const int64_t chosen = rng.choice(index_->successful_by_task(task));
    PairPlan p;
    p.chosen = *make_clip(chosen, ClipOrder::Whole, rng);
    p.rejected = *make_clip(item, ClipOrder::Whole, rng);
    p.strategy = Strategy::Suboptimal;
    p.task = std::string(index_->task_name(index_->task_id(chosen)));
    plan = std::move(p);
  } else {
    plan = create_pair(item, preferred, rng);
  }
  if (plan) plan->chosen_first = opts_.is_eval ? true : rng.bernoulli(0.5);
  return plan;
}

uint32_t PairSampler::pick_source(Rng& rng, const SourceSet& sources) const {
  if (sources.ids.size() == 1) return sources.ids[0];
  return sources.ids[pick_weighted(rng, sources.weights)];
}

TrajectoryIndex::Ids PairSampler::eligible(uint32_t src, std::optional<Strategy> s) const {
  // The filtered lists are precomputed tables of the index (same positions, same order).
  const auto ids = index_->by_source(src);
  if (!s) return ids;
  switch (*s) {
    case Strategy::Rewind:
    case Strategy::Reverse:  // need a successful trajectory to rewind / reverse
      return index_->successful_by_source(src);
    case Strategy::Suboptimal:
      // Graded sources pair by partial_success, so no task filter (the original's RoboArena /
      // RoboReward exception); others need tasks with both outcomes.
      if (rules_[src].has_partial_success) return ids;
      return index_->both_outcomes_by_source(src);
    case Strategy::DifferentTask:
      return ids;
  }
  return ids;
}

std::optional<PairPlan> PairSampler::try_sources(Rng& rng, const SourceSet& sources,
                                                 std::optional<Strategy> filter,
                                                 std::optional<Strategy> preferred) const {
  for (int attempt = 0; attempt < kMaxTrajectoryAttempts; ++attempt) {
    const auto cands = eligible(pick_source(rng, sources), filter);  // a view: no copy per draw
    if (cands.empty()) continue;
    if (auto plan = sample_for(rng.choice(cands), preferred, rng)) {
      plan->attempts = attempt + 1;
      return plan;
    }
  }
  return std::nullopt;
}

PairPlan PairSampler::sample_rbm(Rng& rng) const {
  // RBMDataset.__getitem__: a trajectory of the concatenated dataset (so each source in
  // proportion to its size), here with replacement and scaled by the source weight; then
  // PrefSampler._generate_sample with the rebalancing strategy loop.
  for (int attempt = 0; attempt < kMaxTrajectoryAttempts; ++attempt) {
    const auto ids = index_->by_source(active_.ids[pick_weighted(rng, rbm_weights_)]);
    if (auto plan = sample_for(rng.choice(ids), std::nullopt, rng)) {
      plan->attempts = attempt + 1;
      return std::move(*plan);
    }
  }
  throw Error("sampler: could not build a preference pair from " + std::to_string(kMaxTrajectoryAttempts) +
              " trajectories drawn in turn (data.mixing=rbm); the data needs successful or graded "
              "trajectories with at least 3 frames");
}

PairPlan PairSampler::sample(Rng& rng) const {
  if (opts_.mixing == Mixing::Rbm) return sample_rbm(rng);
  // Suboptimal needs non-successful trajectories somewhere (the original's _has_suboptimal).
  std::vector<double> ratios(opts_.strategy_ratios.begin(), opts_.strategy_ratios.end());
  if (!index_->has_unsuccessful()) ratios[static_cast<size_t>(Strategy::Suboptimal)] = 0;
  if (!(ratios[0] + ratios[1] + ratios[2] + ratios[3] > 0))
    throw Error(
        "sampler: no usable strategy: only 'suboptimal' has a positive ratio but no "
        "trajectory is labelled suboptimal or failure");
  const Strategy strategy = kStrategies[pick_weighted(rng, ratios)];

  const SourceSet& sources = strategy == Strategy::Suboptimal ? suboptimal_ : active_;
  if (auto p = try_sources(rng, sources, strategy, strategy)) return std::move(*p);
  // The drawn strategy failed: any trajectory of any source, and the rebalancing loop picks the
  // strategy. (The original keeps the strategy's trajectory filter here and raises when that
  // leaves nothing.)
  if (auto p = try_sources(rng, active_, std::nullopt, std::nullopt)) return std::move(*p);
  throw Error("sampler: could not build a preference pair after " +
              std::to_string(2 * kMaxTrajectoryAttempts) + " trajectories (strategy " +
              strategy_name(strategy) + "); the data needs successful trajectories with at least 3 frames");
}

}  // namespace robometer::data
