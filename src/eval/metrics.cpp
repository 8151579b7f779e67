// Evaluation metrics (spec §5.1). See metrics.h for the definitions and the edge-case rules.
#include "robometer/eval/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>
#include <utility>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"

namespace robometer::eval {

EvalProtocol parse_eval_protocol(const std::string& s) {
  if (s == "original") return EvalProtocol::Original;
  if (s == "robometer_cpp") return EvalProtocol::RobometerCpp;
  throw ConfigError("eval.protocol must be 'original' or 'robometer_cpp', got '" + s + "'");
}

const char* eval_protocol_name(EvalProtocol p) {
  return p == EvalProtocol::Original ? "original" : "robometer_cpp";
}

namespace {

using json = nlohmann::json;

json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

const char* quality_str(data::Quality q) {
  switch (q) {
    case data::Quality::Successful:
      return "successful";
    case data::Quality::Suboptimal:
      return "suboptimal";
    case data::Quality::Failure:
      return "failure";
  }
  return "?";
}

bool is_constant(const std::vector<double>& v) {
  return std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); });
}

// Same length and finite values: a NaN would otherwise slip through comparisons (it is
// neither constant nor ordered) and come out as a silent NaN or a fake tie.
void check_same_size(const std::vector<double>& x, const std::vector<double>& y, const char* what) {
  if (x.size() != y.size())
    throw Error(std::string(what) + ": sequences differ in length (" + std::to_string(x.size()) + " vs " +
                std::to_string(y.size()) + ")");
  for (const auto* v : {&x, &y})
    for (size_t i = 0; i < v->size(); ++i)
      if (!std::isfinite((*v)[i]))
        throw Error(std::string(what) + ": non-finite value " + std::to_string((*v)[i]) + " at position " +
                    std::to_string(i));
}

int sign(double v) { return (v > 0) - (v < 0); }

std::optional<double> mean_of(const std::vector<double>& v) {
  if (v.empty()) return std::nullopt;
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

// ---------------------------------------------------------------- correlations

std::optional<double> pearson(const std::vector<double>& x, const std::vector<double>& y) {
  check_same_size(x, y, "pearson");
  const size_t n = x.size();
  if (n < 2 || is_constant(x) || is_constant(y)) return std::nullopt;
  // Two-pass (centre first) for accuracy; the same formula scipy.stats.pearsonr uses.
  const double mx = *mean_of(x), my = *mean_of(y);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx == 0 || syy == 0) return std::nullopt;
  const double r = sxy / (std::sqrt(sxx) * std::sqrt(syy));
  return std::clamp(r, -1.0, 1.0);
}

std::vector<double> average_ranks(const std::vector<double>& x) {
  const size_t n = x.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> ranks(n);
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j + 1 < n && x[order[j + 1]] == x[order[i]]) ++j;
    // Positions i..j (0-based) hold ranks i+1..j+1; all get their mean.
    const double r = 0.5 * static_cast<double>(i + j) + 1.0;
    for (size_t k = i; k <= j; ++k) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

std::optional<double> spearman(const std::vector<double>& x, const std::vector<double>& y) {
  check_same_size(x, y, "spearman");
  return pearson(average_ranks(x), average_ranks(y));
}

KendallCounts kendall_counts(const std::vector<double>& x, const std::vector<double>& y) {
  check_same_size(x, y, "kendall");
  KendallCounts c;
  const size_t n = x.size();
  // O(n^2) is fine: per-task groups are tens of trajectories.
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      const int s = sign(x[i] - x[j]) * sign(y[i] - y[j]);
      if (s > 0) ++c.concordant;
      if (s < 0) ++c.discordant;
    }
  }
  c.pairs = static_cast<int64_t>(n) * static_cast<int64_t>(n - (n > 0 ? 1 : 0)) / 2;
  return c;
}

std::optional<double> kendall_tau_a(const std::vector<double>& x, const std::vector<double>& y) {
  const KendallCounts c = kendall_counts(x, y);
  if (x.size() < 2) return std::nullopt;
  return static_cast<double>(c.concordant - c.discordant) / static_cast<double>(c.pairs);
}

// ---------------------------------------------------------------- per-trajectory inputs

std::vector<double> aggregate_prefix_clips(const std::vector<std::vector<double>>& clip_values,
                                           PrefixAggregation how) {
  std::vector<double> out;
  out.reserve(clip_values.size());
  for (size_t k = 0; k < clip_values.size(); ++k) {
    const auto& clip = clip_values[k];
    if (clip.empty()) throw Error("aggregate_prefix_clips: prefix " + std::to_string(k) + " has no outputs");
    if (how == PrefixAggregation::LastFrame) {
      out.push_back(clip.back());
    } else {
      out.push_back(clip[std::min(k, clip.size() - 1)]);  // the original's min(timestep, len-1)
    }
  }
  return out;
}

double TrajectoryScores::last_progress() const {
  if (final_progress) return *final_progress;
  if (pred_progress.empty()) throw Error("trajectory '" + id + "': no progress prediction");
  return pred_progress.back();
}

std::optional<double> TrajectoryScores::last_success() const {
  if (final_success) return final_success;
  if (pred_success.empty()) return std::nullopt;
  return pred_success.back();
}

// ---------------------------------------------------------------- reward alignment

std::vector<int64_t> voc_end_points(int64_t n, int p, bool original) {
  if (n < 1 || p < 1) throw Error("voc_end_points: need >= 1 frame and >= 1 prefix");
  if (!original) return data::linspace_positions(n, p);
  std::vector<int64_t> out;
  if (p > n) {  // `if self.subsample_n_frames > num_frames: end_indices = list(range(num_frames))`
    for (int64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (int i = 0; i < p; ++i) {  // numpy.linspace: i * step, the last exactly n-1; then int()
    const double y =
        p == 1 ? 0.0 : (i == p - 1 ? static_cast<double>(n - 1) : i * (static_cast<double>(n - 1) / (p - 1)));
    out.push_back(static_cast<int64_t>(y));
  }
  return out;
}

VocResult reward_alignment(const std::vector<TrajectoryScores>& trajs, bool successful_only,
                           bool undefined_as_zero) {
  VocResult r;
  std::vector<double> ps, ss;
  for (const auto& t : trajs) {
    if (successful_only && t.quality != data::Quality::Successful) continue;
    ++r.trajectories;
    if (t.gt_progress.size() != t.pred_progress.size())
      throw Error("trajectory '" + t.id + "': gt_progress has " + std::to_string(t.gt_progress.size()) +
                  " entries but pred_progress " + std::to_string(t.pred_progress.size()));
    if (auto p = pearson(t.gt_progress, t.pred_progress))
      ps.push_back(*p);
    else {
      ++r.pearson_undefined;
      if (undefined_as_zero) ps.push_back(0.0);
    }
    if (auto s = spearman(t.gt_progress, t.pred_progress))
      ss.push_back(*s);
    else {
      ++r.spearman_undefined;
      if (undefined_as_zero) ss.push_back(0.0);
    }
  }
  r.pearson = mean_of(ps);
  r.spearman = mean_of(ss);
  return r;
}

// ---------------------------------------------------------------- policy ranking

double gold_rank(const TrajectoryScores& t, bool use_partial_success) {
  if (use_partial_success && t.partial_success) return *t.partial_success;
  switch (t.quality) {
    case data::Quality::Failure:
      return 0.0;
    case data::Quality::Suboptimal:
      return 1.0;
    case data::Quality::Successful:
      return 2.0;
  }
  return 0.0;
}

namespace {

// Per-label-tuple τ-a of one task (see metrics.h); nullopt with < 2 labels present.
std::optional<double> label_tuple_tau(const std::vector<const TrajectoryScores*>& task) {
  std::map<int, std::vector<double>> by_label;  // gold rank -> last-frame progress
  for (const auto* t : task) by_label[static_cast<int>(gold_rank(*t, false))].push_back(t->last_progress());
  if (by_label.size() < 2) return std::nullopt;
  std::vector<double> pair_means;
  for (auto lo = by_label.begin(); lo != by_label.end(); ++lo) {
    for (auto hi = std::next(lo); hi != by_label.end(); ++hi) {
      double s = 0;
      for (double a : lo->second)
        for (double b : hi->second) s += sign(b - a);
      pair_means.push_back(s / static_cast<double>(lo->second.size() * hi->second.size()));
    }
  }
  return mean_of(pair_means);
}

}  // namespace

RankingResult policy_ranking(const std::vector<TrajectoryScores>& trajs, bool use_partial_success) {
  RankingResult r;
  std::map<std::string, std::vector<const TrajectoryScores*>> by_task;
  for (const auto& t : trajs) by_task[t.task].push_back(&t);
  r.tasks = static_cast<int64_t>(by_task.size());
  std::vector<double> taus, tuple_taus;
  int64_t correct = 0, distinct = 0;
  for (const auto& [task, members] : by_task) {
    std::vector<double> gold, pred;
    for (const auto* t : members) {
      gold.push_back(gold_rank(*t, use_partial_success));
      pred.push_back(t->last_progress());
    }
    // A task whose trajectories all share one quality has nothing to rank: skipped, not 0.
    if (auto tau = is_constant(gold) ? std::nullopt : kendall_tau_a(gold, pred)) {
      taus.push_back(*tau);
      r.per_task_tau_a[task] = *tau;
      ++r.tasks_ranked;
    }
    for (size_t i = 0; i < gold.size(); ++i) {
      for (size_t j = i + 1; j < gold.size(); ++j) {
        if (gold[i] == gold[j]) continue;
        ++distinct;
        if (sign(gold[i] - gold[j]) * sign(pred[i] - pred[j]) > 0) ++correct;
      }
    }
    if (!use_partial_success) {
      if (auto tt = label_tuple_tau(members)) {
        tuple_taus.push_back(*tt);
        ++r.tasks_label_tuple;
      }
    }
  }
  r.kendall_tau_a = mean_of(taus);
  r.kendall_tau_a_per_label_tuple = mean_of(tuple_taus);
  if (distinct > 0) r.ranking_accuracy = static_cast<double>(correct) / static_cast<double>(distinct);
  return r;
}

std::optional<double> ranking_acc_rba(const std::vector<TrajectoryScores>& trajs) {
  std::map<std::string, std::vector<const TrajectoryScores*>> by_task;
  for (const auto& t : trajs) by_task[t.task].push_back(&t);
  int64_t correct = 0, total = 0;
  for (const auto& [task, m] : by_task)
    for (size_t i = 0; i < m.size(); ++i)
      for (size_t j = i + 1; j < m.size(); ++j) {
        if (!m[i]->partial_success || !m[j]->partial_success) continue;
        const double pi = *m[i]->partial_success, pj = *m[j]->partial_success;
        if (pi == pj) continue;
        ++total;
        if ((pi > pj) == (m[i]->last_progress() > m[j]->last_progress())) ++correct;
      }
  if (total == 0) return std::nullopt;
  return static_cast<double>(correct) / static_cast<double>(total);
}

// ---------------------------------------------------------------- success–failure difference

SuccFailDiff success_failure_difference(const std::vector<TrajectoryScores>& trajs) {
  SuccFailDiff d;
  std::vector<double> succ, fail;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> by_task;
  for (const auto& t : trajs) {
    if (t.quality == data::Quality::Successful) {
      succ.push_back(t.last_progress());
      by_task[t.task].first.push_back(t.last_progress());
    } else if (t.quality == data::Quality::Failure) {
      fail.push_back(t.last_progress());
      by_task[t.task].second.push_back(t.last_progress());
    }
  }
  d.successful = static_cast<int64_t>(succ.size());
  d.failures = static_cast<int64_t>(fail.size());
  if (!succ.empty() && !fail.empty()) d.pooled = *mean_of(succ) - *mean_of(fail);
  std::vector<double> diffs;
  for (const auto& [task, sf] : by_task)
    if (!sf.first.empty() && !sf.second.empty()) diffs.push_back(*mean_of(sf.first) - *mean_of(sf.second));
  d.per_task_mean = mean_of(diffs);
  return d;
}

// ---------------------------------------------------------------- success detection

DetectionResult binary_detection(const std::vector<double>& scores, const std::vector<bool>& labels,
                                 double threshold) {
  if (scores.size() != labels.size())
    throw Error("binary_detection: " + std::to_string(scores.size()) + " scores but " +
                std::to_string(labels.size()) + " labels");
  DetectionResult d;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i]))
      throw Error("binary_detection: non-finite score " + std::to_string(scores[i]) + " at position " +
                  std::to_string(i));
    const bool pred = scores[i] >= threshold;
    if (labels[i])
      (pred ? d.tp : d.fn)++;
    else
      (pred ? d.fp : d.tn)++;
  }
  if (d.tp + d.fn > 0) d.tpr = static_cast<double>(d.tp) / static_cast<double>(d.tp + d.fn);
  if (d.tn + d.fp > 0) d.tnr = static_cast<double>(d.tn) / static_cast<double>(d.tn + d.fp);
  if (2 * d.tp + d.fp + d.fn > 0)
    d.f1 = 2.0 * static_cast<double>(d.tp) / static_cast<double>(2 * d.tp + d.fp + d.fn);
  if (!scores.empty()) d.accuracy = static_cast<double>(d.tp + d.tn) / static_cast<double>(scores.size());
  return d;
}

DetectionResult success_detection(const std::vector<TrajectoryScores>& trajs, double threshold) {
  std::vector<double> scores;
  std::vector<bool> labels;
  for (const auto& t : trajs) {
    if (auto p = t.last_success()) {
      scores.push_back(*p);
      labels.push_back(t.quality == data::Quality::Successful);
    }
  }
  return binary_detection(scores, labels, threshold);
}

// ---------------------------------------------------------------- preference accuracy

std::optional<double> AccuracyCount::accuracy() const {
  if (total == 0) return std::nullopt;
  return static_cast<double>(correct) / static_cast<double>(total);
}

std::map<std::string, AccuracyCount> preference_accuracy(const std::vector<PreferenceOutcome>& pairs) {
  std::map<std::string, AccuracyCount> out;
  for (const auto& p : pairs) {
    const bool pred_first = p.prob_first_better >= 0.5;
    const bool ok = pred_first == p.first_is_better;
    for (const std::string& key : {p.kind, std::string("all")}) {
      out[key].total++;
      if (ok) out[key].correct++;
    }
  }
  return out;
}

// ---------------------------------------------------------------- confusion matrix

ConfusionResult confusion_matrix_score(const std::vector<std::vector<double>>& R,
                                       ConfusionNormalization norm) {
  const size_t n = R.size();
  for (size_t i = 0; i < n; ++i)
    if (R[i].size() != n)
      throw Error("confusion matrix: row " + std::to_string(i) + " has " + std::to_string(R[i].size()) +
                  " entries, expected " + std::to_string(n) + " (square)");
  ConfusionResult c;
  c.matrix = R;
  if (n == 0) return c;
  std::vector<double> diag;
  double trace = 0, total = 0;
  for (size_t k = 0; k < n; ++k) {
    // PerVideo: row k (video k over instructions); PerInstruction: column k.
    double sum = 0;
    for (size_t m = 0; m < n; ++m) sum += norm == ConfusionNormalization::PerVideo ? R[k][m] : R[m][k];
    if (sum > 0)
      diag.push_back(R[k][k] / sum);
    else
      ++c.zero_sum_excluded;
    trace += R[k][k];
    for (size_t m = 0; m < n; ++m) total += R[k][m];
  }
  c.diagonal_score = mean_of(diag);
  c.avg_diagonal = trace / static_cast<double>(n);
  if (n > 1) {
    c.avg_off_diagonal = (total - trace) / static_cast<double>(n * n - n);
    c.diagonal_minus_off_diagonal = c.avg_diagonal - *c.avg_off_diagonal;
  }
  return c;
}

ConfusionResult confusion_matrix_score(const std::vector<ConfusionEntry>& entries,
                                       ConfusionNormalization norm) {
  std::set<std::string> task_set;
  for (const auto& e : entries) {
    task_set.insert(e.video_task);
    task_set.insert(e.instruction_task);
  }
  std::vector<std::string> tasks(task_set.begin(), task_set.end());
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < tasks.size(); ++i) index[tasks[i]] = i;
  const size_t n = tasks.size();
  std::vector<std::vector<double>> sum(n, std::vector<double>(n, 0.0)), count = sum;
  for (const auto& e : entries) {
    sum[index[e.video_task]][index[e.instruction_task]] += e.reward;
    count[index[e.video_task]][index[e.instruction_task]] += 1;
  }
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (count[i][j] > 0) sum[i][j] /= count[i][j];
  ConfusionResult c = confusion_matrix_score(sum, norm);
  c.tasks = tasks;
  return c;
}

// ---------------------------------------------------------------- report

namespace {

bool uses_partial_success(const std::string& source, const std::vector<const TrajectoryScores*>& trajs,
                          const MetricsOptions& o) {
  if (o.protocol ==
      EvalProtocol::Original) {  // compile_results.py: "roboreward" / "roboarena" in data_source
    std::string lower = source;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return lower.find("roboreward") != std::string::npos || lower.find("roboarena") != std::string::npos;
  }
  if (std::find(o.partial_success_sources.begin(), o.partial_success_sources.end(), source) !=
      o.partial_success_sources.end())
    return true;
  if (!o.rank_by_partial_success_when_complete || trajs.empty()) return false;
  return std::all_of(trajs.begin(), trajs.end(),
                     [](const TrajectoryScores* t) { return t->partial_success.has_value(); });
}

json detection_json(const DetectionResult& d) {
  return {{"tp", d.tp},        {"fp", d.fp},        {"tn", d.tn},      {"fn", d.fn},
          {"tpr", opt(d.tpr)}, {"tnr", opt(d.tnr)}, {"f1", opt(d.f1)}, {"accuracy", opt(d.accuracy)}};
}

json block(const std::vector<TrajectoryScores>& trajs, bool partial,
           const std::vector<PreferenceOutcome>& pairs, const MetricsOptions& o) {
  json j;
  j["num_trajectories"] = trajs.size();
  std::map<std::string, int64_t> qcount;
  for (const auto& t : trajs) qcount[quality_str(t.quality)]++;
  j["quality_counts"] = qcount;

  const bool original = o.protocol == EvalProtocol::Original;
  const VocResult v = reward_alignment(trajs, o.voc_successful_only, original);
  j["voc"] = {{"pearson", opt(v.pearson)},
              {"spearman", opt(v.spearman)},
              {"trajectories", v.trajectories},
              {"pearson_undefined", v.pearson_undefined},
              {"spearman_undefined", v.spearman_undefined}};

  const RankingResult r = policy_ranking(trajs, partial);
  j["policy_ranking"] = {{"kendall_tau_a", opt(r.kendall_tau_a)},
                         {"kendall_tau_a_per_label_tuple", opt(r.kendall_tau_a_per_label_tuple)},
                         {"ranking_accuracy", opt(r.ranking_accuracy)},
                         {"gold", partial ? "partial_success" : "quality_label"},
                         {"tasks", r.tasks},
                         {"tasks_ranked", r.tasks_ranked},
                         {"tasks_label_tuple", r.tasks_label_tuple},
                         {"per_task_tau_a", r.per_task_tau_a}};
  if (partial) j["policy_ranking"]["ranking_acc_rba"] = opt(ranking_acc_rba(trajs));
  // The one figure per source that a report leads with, by protocol (MetricsOptions::protocol).
  if (original)
    j["headline"] = {{"voc_pearson", opt(v.pearson)},
                     {"policy_ranking_metric", partial ? "ranking_acc_rba" : "kendall_tau_a_per_label_tuple"},
                     {"policy_ranking", partial ? j["policy_ranking"]["ranking_acc_rba"]
                                                : opt(r.kendall_tau_a_per_label_tuple)}};
  else
    j["headline"] = {{"voc_pearson", opt(v.pearson)},
                     {"policy_ranking_metric", "kendall_tau_a"},
                     {"policy_ranking", opt(r.kendall_tau_a)}};

  const SuccFailDiff d = success_failure_difference(trajs);
  j["succ_fail_diff"] = {{"pooled", opt(d.pooled)},
                         {"per_task_mean", opt(d.per_task_mean)},
                         {"successful", d.successful},
                         {"failures", d.failures}};

  j["success_detection"] = detection_json(success_detection(trajs, o.success_threshold));

  if (!pairs.empty()) {
    json p = json::object();
    for (const auto& [kind, acc] : preference_accuracy(pairs))
      p[kind] = {{"accuracy", opt(acc.accuracy())}, {"correct", acc.correct}, {"total", acc.total}};
    j["preference"] = p;
  }
  return j;
}

json confusion_json(const ConfusionResult& c, ConfusionNormalization norm) {
  return {{"diagonal_score", opt(c.diagonal_score)},
          {"normalization", norm == ConfusionNormalization::PerVideo ? "per_video" : "per_instruction"},
          {"zero_sum_excluded", c.zero_sum_excluded},
          {"avg_diagonal", c.avg_diagonal},
          {"avg_off_diagonal", opt(c.avg_off_diagonal)},
          {"diagonal_minus_off_diagonal", opt(c.diagonal_minus_off_diagonal)},
          {"tasks", c.tasks},
          {"matrix", c.matrix}};
}

}  // namespace

json compute_metrics(const std::vector<TrajectoryScores>& trajs, const std::vector<PreferenceOutcome>& pairs,
                     const MetricsOptions& o, const std::vector<ConfusionEntry>& confusion) {
  std::map<std::string, std::vector<TrajectoryScores>> by_source;
  for (const auto& t : trajs) by_source[t.data_source].push_back(t);
  std::map<std::string, std::vector<PreferenceOutcome>> pairs_by_source;
  for (const auto& p : pairs) pairs_by_source[p.data_source].push_back(p);

  json out;
  out["by_data_source"] = json::object();
  std::vector<double> voc_means, tau_means, tuple_means, headline_means;
  // Overall ranking groups by (source, task); a source-qualified copy keeps tasks apart.
  std::vector<TrajectoryScores> qualified;
  for (const auto& [source, list] : by_source) {
    std::vector<const TrajectoryScores*> ptrs;
    for (const auto& t : list) ptrs.push_back(&t);
    const bool partial = uses_partial_success(source, ptrs, o);
    json b = block(list, partial, pairs_by_source[source], o);
    if (!b["voc"]["pearson"].is_null()) voc_means.push_back(b["voc"]["pearson"]);
    if (!b["policy_ranking"]["kendall_tau_a"].is_null())
      tau_means.push_back(b["policy_ranking"]["kendall_tau_a"]);
    if (!b["policy_ranking"]["kendall_tau_a_per_label_tuple"].is_null())
      tuple_means.push_back(b["policy_ranking"]["kendall_tau_a_per_label_tuple"]);
    if (!b["headline"]["policy_ranking"].is_null()) headline_means.push_back(b["headline"]["policy_ranking"]);
    out["by_data_source"][source] = std::move(b);
    for (auto t : list) {
      t.task = source + "\x1f" + t.task;
      qualified.push_back(std::move(t));
    }
  }
  // Mixed gold types cannot share one ranking; overall uses quality labels unless every source
  // ranks by partial success.
  bool all_partial = !by_source.empty();
  for (const auto& [source, list] : by_source) {
    std::vector<const TrajectoryScores*> ptrs;
    for (const auto& t : list) ptrs.push_back(&t);
    all_partial = all_partial && uses_partial_success(source, ptrs, o);
  }
  json overall = block(qualified, all_partial, pairs, o);
  overall["policy_ranking"].erase("per_task_tau_a");  // per source already
  overall["source_mean"] = {{"voc_pearson", opt(mean_of(voc_means))},
                            {"kendall_tau_a", opt(mean_of(tau_means))},
                            {"kendall_tau_a_per_label_tuple", opt(mean_of(tuple_means))},
                            {"policy_ranking_headline", opt(mean_of(headline_means))},
                            {"sources", by_source.size()}};
  if (!confusion.empty()) {
    overall["confusion"] = confusion_json(confusion_matrix_score(confusion, o.confusion_normalization),
                                          o.confusion_normalization);
    const bool original = o.protocol == EvalProtocol::Original;  // normalized_trace_minus_offdiag vs ours
    overall["headline"]["confusion_metric"] = original ? "diagonal_minus_off_diagonal" : "diagonal_score";
    overall["headline"]["confusion"] =
        overall["confusion"][original ? "diagonal_minus_off_diagonal" : "diagonal_score"];
  }
  out["overall"] = std::move(overall);
  out["options"] = {{"protocol", eval_protocol_name(o.protocol)},
                    {"voc_successful_only", o.voc_successful_only},
                    {"success_threshold", o.success_threshold},
                    {"partial_success_sources", o.partial_success_sources},
                    {"rank_by_partial_success_when_complete", o.rank_by_partial_success_when_complete},
                    {"prefix_aggregation",
                     o.prefix_aggregation == PrefixAggregation::LastFrame ? "last_frame" : "clip_position"}};
  return out;
}

namespace {

std::string cell(const json& v, int digits = 3) {
  if (v.is_null() || !v.is_number()) return "–";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v.get<double>());
  return buf;
}

const json& at_path(const json& j, std::initializer_list<const char*> path) {
  static const json null_value;
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return null_value;
    cur = &(*cur)[k];
  }
  return *cur;
}

std::string row(const std::string& name, const json& b, const std::vector<std::string>& kinds) {
  std::string s = "| " + name + " | " + std::to_string(b.value("num_trajectories", 0)) + " | " +
                  cell(at_path(b, {"voc", "pearson"})) + " | " + cell(at_path(b, {"voc", "spearman"})) +
                  " | " + cell(at_path(b, {"policy_ranking", "kendall_tau_a"})) + " | " +
                  cell(at_path(b, {"policy_ranking", "kendall_tau_a_per_label_tuple"})) + " | " +
                  cell(at_path(b, {"succ_fail_diff", "pooled"})) + " | " +
                  cell(at_path(b, {"success_detection", "tpr"})) + " | " +
                  cell(at_path(b, {"success_detection", "tnr"})) + " | " +
                  cell(at_path(b, {"success_detection", "f1"})) + " |";
  for (const auto& k : kinds) {
    const json* p = nullptr;
    if (b.contains("preference") && b["preference"].contains(k)) p = &b["preference"][k]["accuracy"];
    s += " " + (p ? cell(*p) : std::string("–")) + " |";
  }
  return s + "\n";
}

}  // namespace

std::string render_markdown(const json& m) {
  std::set<std::string> kind_set;
  auto collect = [&](const json& b) {
    if (b.contains("preference"))
      for (auto it = b["preference"].begin(); it != b["preference"].end(); ++it) kind_set.insert(it.key());
  };
  if (m.contains("overall")) collect(m["overall"]);
  const std::vector<std::string> kinds(kind_set.begin(), kind_set.end());

  std::string s =
      "| data source | n | VOC r | VOC ρ | τ-a | τ-a (label tuples) | succ−fail | TPR | TNR | F1 |";
  for (const auto& k : kinds) s += " pref " + k + " |";
  s += "\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
  for (size_t i = 0; i < kinds.size(); ++i) s += "---:|";
  s += "\n";
  if (m.contains("by_data_source"))
    for (auto it = m["by_data_source"].begin(); it != m["by_data_source"].end(); ++it)
      s += row(it.key(), it.value(), kinds);
  if (m.contains("overall")) s += row("**overall**", m["overall"], kinds);
  const json& cd = at_path(m, {"overall", "confusion", "diagonal_score"});
  if (!cd.is_null())
    s += "\nConfusion-matrix diagonal score (" +
         at_path(m, {"overall", "confusion", "normalization"}).get<std::string>() +
         " normalised): " + cell(cd) + "\n";
  return s;
}

}  // namespace robometer::eval
