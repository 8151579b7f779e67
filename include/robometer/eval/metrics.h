// Offline evaluation metrics of a reward model (spec §5.1): reward alignment (VOC), policy
// ranking (Kendall τ-a), preference accuracy, success detection, success–failure difference and
// the video–language confusion-matrix score. Pure arithmetic on numbers the model produced; the
// `eval` command runs the model and fills TrajectoryScores / PreferenceOutcome.
//
// Convention for undefined values: a metric that is mathematically undefined on its input
// (a correlation of a constant sequence, TPR without positives, ...) is std::nullopt here and
// `null` in JSON, never 0 and never NaN. Aggregates say how many items they skipped.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "robometer/data/trajectory.h"

namespace robometer::eval {

// ---------------------------------------------------------------- correlations

// Pearson r. nullopt when n < 2 or either sequence is constant (zero variance). Throws Error
// when the sizes differ.
std::optional<double> pearson(const std::vector<double>& x, const std::vector<double>& y);

// Ranks 1..n; tied values get the average of the ranks they span (scipy.stats.rankdata
// "average").
std::vector<double> average_ranks(const std::vector<double>& x);

// Spearman ρ = Pearson r of the average ranks. nullopt under the same rule as pearson().
std::optional<double> spearman(const std::vector<double>& x, const std::vector<double>& y);

struct KendallCounts {
  int64_t concordant = 0;
  int64_t discordant = 0;
  int64_t pairs = 0;  // n(n-1)/2; pairs tied in x or y are neither concordant nor discordant
};
KendallCounts kendall_counts(const std::vector<double>& x, const std::vector<double>& y);

// Kendall τ-a = (concordant − discordant) / (n(n−1)/2). Ties count as neither, so ties shrink
// |τ-a| (unlike τ-b, which scipy computes). nullopt when n < 2.
std::optional<double> kendall_tau_a(const std::vector<double>& x, const std::vector<double>& y);

// ---------------------------------------------------------------- per-trajectory inputs

// How the per-prefix clip predictions become one value per prefix (reward alignment protocol:
// prefixes 0..e_k of a trajectory, each subsampled to K frames and scored).
enum class PrefixAggregation {
  // The prediction at the prefix's last frame, i.e. clip position K−1 (after the right
  // padding that repeats the last frame, also the last entry). This is the reward for
  // "the robot has reached frame e_k" and the protocol this project uses.
  LastFrame,
  // robometer's compile_results.py: for the k-th prefix it takes clip position k, which is
  // an earlier frame of the clip, not frame e_k (community PR #21 reports it as a bug).
  // Offered only to reproduce published numbers.
  ClipPosition,
};

// clip_values[k] = the model's per-frame outputs for prefix k (k ascending by end frame).
// Returns one value per prefix. Throws Error on an empty clip.
std::vector<double> aggregate_prefix_clips(const std::vector<std::vector<double>>& clip_values,
                                           PrefixAggregation how = PrefixAggregation::LastFrame);

struct TrajectoryScores {
  std::string id;
  std::string task;
  std::string data_source;
  data::Quality quality = data::Quality::Successful;
  std::optional<double> partial_success;  // in [0,1] when the source grades episodes
  // Reward alignment: one entry per scored prefix (already aggregated, see
  // aggregate_prefix_clips), ground truth progress at the prefix's end frame.
  std::vector<double> gt_progress;
  std::vector<double> pred_progress;
  std::vector<double> pred_success;  // P(success) per prefix; may be empty (no success head)
  std::vector<int64_t> prefix_ends;  // stored-frame index each prefix ends at (plots); may be empty
  // Last-frame progress of the whole trajectory (policy ranking, confusion matrix). When
  // absent, pred_progress.back() is used.
  std::optional<double> final_progress;
  // P(success) at the last frame of the whole trajectory; when absent pred_success.back().
  std::optional<double> final_success;

  double last_progress() const;                // throws Error when nothing was predicted
  std::optional<double> last_success() const;  // nullopt without a success head
};

// ---------------------------------------------------------------- reward alignment (VOC)

// End frames of the P prefixes of a trajectory of S stored frames. original: the original's
// samplers/eval/reward_alignment.py `np.linspace(0, num_frames - 1, n)` then `int(end_idx)`
// (floor; all S frames when P > S); otherwise data::linspace_positions (rint, at most S).
std::vector<int64_t> voc_end_points(int64_t stored, int prefixes, bool original);

struct VocResult {
  std::optional<double> pearson;  // mean over trajectories with a defined value
  std::optional<double> spearman;
  int64_t trajectories = 0;       // trajectories considered
  int64_t pearson_undefined = 0;  // excluded: constant gt or prediction, or < 2 prefixes
  int64_t spearman_undefined = 0;
};

// Mean per-trajectory Pearson / Spearman between gt_progress and pred_progress.
// Undefined correlations (constant sequence or < 2 points) are EXCLUDED from the mean and
// counted. (robometer's compile_results.py maps them to 0.0 and keeps them, which pulls the
// mean towards 0.) When successful_only, only Quality::Successful trajectories count, as in
// the original (failure trajectories have no meaningful progress target).
// With undefined_as_zero (eval.protocol original: compile_results.py
// run_reward_alignment_eval_per_trajectory, `0.0 if np.isnan(traj_pearson)`), an undefined
// correlation enters the mean as 0 (and is still counted as undefined).
VocResult reward_alignment(const std::vector<TrajectoryScores>& trajs, bool successful_only = true,
                           bool undefined_as_zero = false);

// ---------------------------------------------------------------- policy ranking

// Gold rank of a trajectory: partial_success when use_partial_success (and present), otherwise
// failure 0 < suboptimal 1 < successful 2.
double gold_rank(const TrajectoryScores& t, bool use_partial_success);

struct RankingResult {
  // τ-a per task between gold rank and last-frame progress over ALL trajectories of the task,
  // averaged over tasks with >= 2 trajectories. Same-gold pairs are ties in τ-a's numerator
  // but stay in its n(n−1)/2 denominator.
  std::optional<double> kendall_tau_a;
  // robometer's compile_results.py variant (what the published τ numbers are): per task,
  // τ-a averaged over every tuple that takes one trajectory from each present quality label
  // (needs >= 2 labels; label ranks are distinct so only predicted ties shrink it). Computed
  // exactly as the mean over label pairs of the mean pairwise sign agreement. Only for
  // quality labels (nullopt when use_partial_success).
  std::optional<double> kendall_tau_a_per_label_tuple;
  // Fraction of gold-distinct pairs (within a task) ordered correctly; predicted ties count
  // as wrong.
  std::optional<double> ranking_accuracy;
  int64_t tasks = 0;              // tasks seen
  int64_t tasks_ranked = 0;       // tasks with >= 2 trajectories (kendall_tau_a)
  int64_t tasks_label_tuple = 0;  // tasks with >= 2 quality labels present
  std::map<std::string, double> per_task_tau_a;
};

RankingResult policy_ranking(const std::vector<TrajectoryScores>& trajs, bool use_partial_success);

// compile_results.py _compute_policy_ranking_metrics_partial_success "ranking_acc_rba": per task,
// every pair with different partial_success counts, correct iff (ps_i > ps_j) == (r_i > r_j) with
// r the last-frame progress (so a predicted tie is correct when ps_i < ps_j); pooled over tasks.
// nullopt without such a pair.
std::optional<double> ranking_acc_rba(const std::vector<TrajectoryScores>& trajs);

// ---------------------------------------------------------------- success–failure difference

struct SuccFailDiff {
  // Mean last-frame progress of successful minus failure trajectories, pooled over tasks.
  std::optional<double> pooled;
  // Per task (tasks with both labels), averaged over tasks: robometer's avg_succ_fail_diff.
  std::optional<double> per_task_mean;
  int64_t successful = 0, failures = 0;
};
SuccFailDiff success_failure_difference(const std::vector<TrajectoryScores>& trajs);

// ---------------------------------------------------------------- success detection

struct DetectionResult {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  std::optional<double> tpr;       // TP/(TP+FN); nullopt without positives
  std::optional<double> tnr;       // TN/(TN+FP); nullopt without negatives
  std::optional<double> f1;        // 2TP/(2TP+FP+FN); nullopt when no positives exist or are predicted
  std::optional<double> accuracy;  // nullopt on empty input
};

// Predicted positive iff score >= threshold.
DetectionResult binary_detection(const std::vector<double>& scores, const std::vector<bool>& labels,
                                 double threshold = 0.5);

// Trajectory-level success detection: score = last-frame P(success), label = Quality::Successful.
// Trajectories without a success prediction are skipped.
DetectionResult success_detection(const std::vector<TrajectoryScores>& trajs, double threshold = 0.5);

// ---------------------------------------------------------------- preference accuracy

struct PreferenceOutcome {
  std::string data_source;
  // Pair kind, e.g. "same_task_quality" (same task, different quality), "different_task",
  // "rewind", "reverse". Free-form: accuracy is reported per distinct kind.
  std::string kind;
  double prob_first_better = 0.5;  // model's P(first trajectory is the better one)
  bool first_is_better = true;     // ground truth
};

struct AccuracyCount {
  int64_t correct = 0, total = 0;
  std::optional<double> accuracy() const;
};

// Predicted "first better" iff prob_first_better >= 0.5. Key "all" holds every pair.
std::map<std::string, AccuracyCount> preference_accuracy(const std::vector<PreferenceOutcome>& pairs);

// ---------------------------------------------------------------- confusion matrix

// Which way the reward matrix is normalised before taking the diagonal.
enum class ConfusionNormalization {
  // Each VIDEO's rewards over all instructions sum to 1: the diagonal is the share of a video's
  // reward that goes to its own instruction. In robometer's plot the matrix is indexed
  // [instruction][video], so this is its column normalisation.
  PerVideo,
  // Each INSTRUCTION's rewards over all videos sum to 1.
  PerInstruction,
};

struct ConfusionResult {
  std::vector<std::vector<double>> matrix;  // [video task][instruction task], mean reward
  std::vector<std::string> tasks;           // row/column order (sorted)
  // Mean of the normalised diagonal over tasks whose normalising sum is > 0. Chance level is
  // 1/n for uninformative rewards.
  std::optional<double> diagonal_score;
  int64_t zero_sum_excluded = 0;
  // robometer's compile_results.py metrics on the raw (unnormalised) matrix.
  double avg_diagonal = 0.0;
  std::optional<double> avg_off_diagonal;  // nullopt for n == 1
  std::optional<double> diagonal_minus_off_diagonal;
};

// R[i][j] = reward of video i under instruction j (square). Throws Error if not square.
ConfusionResult confusion_matrix_score(const std::vector<std::vector<double>>& R,
                                       ConfusionNormalization norm = ConfusionNormalization::PerVideo);

struct ConfusionEntry {
  std::string video_task;
  std::string instruction_task;
  double reward = 0.0;  // final progress of the video scored under the instruction
};
// Averages entries into a [video task][instruction task] matrix over the union of tasks
// (cells without entries are 0, as in the original), then scores it.
ConfusionResult confusion_matrix_score(const std::vector<ConfusionEntry>& entries,
                                       ConfusionNormalization norm = ConfusionNormalization::PerVideo);

// ---------------------------------------------------------------- report

// eval.protocol, parsed once from the config: the original's (compile_results.py and its eval
// samplers) or this project's.
enum class EvalProtocol { RobometerCpp, Original };
EvalProtocol parse_eval_protocol(const std::string& s);  // ConfigError naming eval.protocol
const char* eval_protocol_name(EvalProtocol p);          // "robometer_cpp" | "original"

struct MetricsOptions {
  bool voc_successful_only = true;
  double success_threshold = 0.5;
  // Rank by partial_success instead of quality labels for these data sources (robometer does
  // this for sources named *roboarena* / *roboreward*), or for all when every trajectory of a
  // source has one and rank_by_partial_success_when_complete.
  std::vector<std::string> partial_success_sources;
  bool rank_by_partial_success_when_complete = false;
  ConfusionNormalization confusion_normalization = ConfusionNormalization::PerVideo;
  // How the caller aggregated prefix clips (see aggregate_prefix_clips); recorded in the JSON
  // so reports made with the original's indexing are labelled as such.
  PrefixAggregation prefix_aggregation = PrefixAggregation::LastFrame;
  // eval.protocol: "original" (compile_results.py: undefined VOC correlations count as 0; sources
  // named *roboreward* / *roboarena* rank by partial_success with ranking_acc_rba as their
  // headline, others by the per-label-tuple τ ("kendall_last"); confusion headline = mean
  // diagonal − mean off-diagonal of the raw matrix) or "robometer_cpp" (undefined excluded,
  // τ-a over all trajectories, per-video normalised diagonal). Recorded in "options".
  EvalProtocol protocol = EvalProtocol::RobometerCpp;
};

// All metrics per data source and overall:
// {"overall": {...}, "by_data_source": {"<src>": {...}}, "options": {...}}
// Each block has "num_trajectories", "voc", "policy_ranking", "succ_fail_diff",
// "success_detection", "preference" (when pairs are given) and "confusion" (when given).
// Overall policy ranking groups by (data_source, task); overall also has "source_mean" with
// the unweighted mean over sources of the headline numbers (how the paper averages).
nlohmann::json compute_metrics(const std::vector<TrajectoryScores>& trajs,
                               const std::vector<PreferenceOutcome>& pairs = {},
                               const MetricsOptions& opts = {},
                               const std::vector<ConfusionEntry>& confusion = {});

// A Markdown table of the headline numbers of compute_metrics' JSON: one row per data source
// plus "overall" ("–" where a metric is undefined).
std::string render_markdown(const nlohmann::json& metrics);

}  // namespace robometer::eval
