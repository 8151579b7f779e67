// The typed configuration of a run, one struct per layer. YAML is mapped onto these once, at
// the edge (cli/), and validated before any heavy work starts. Field lists live in visit().
#pragma once
#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "robometer/config/field.h"

namespace robometer::config {

struct DatasetEntry {
  std::string path;     // a manifest directory (robometer ingest/synth output)
  double weight = 1.0;  // sampling weight of this dataset
  template <class V>
  void visit(V& v) {
    v("path", path, doc("manifest directory").existing_path());
    v("weight", weight, doc("sampling weight").non_negative());
  }
};

struct ResizeConfig {
  std::string mode = "short_edge";  // none | exact | short_edge
  int short_edge = 240;
  int width = 0, height = 0;
  bool keep_square = true;  // short_edge leaves square frames as they are (RBM storage did)
  template <class V>
  void visit(V& v) {
    v("mode", mode, doc("frame resize mode").choices({"none", "exact", "short_edge"}));
    v("short_edge", short_edge, doc("shorter side in px for short_edge").positive());
    v("width", width, doc("width for exact").non_negative());
    v("height", height, doc("height for exact").non_negative());
    v("keep_square", keep_square, doc("short_edge: square frames keep their size"));
  }
};

struct StrategyRatios {
  double rewind = 1, suboptimal = 1, different_task = 1, reverse = 1;
  template <class V>
  void visit(V& v) {
    v("rewind", rewind, doc("video rewinding negatives").non_negative());
    v("suboptimal", suboptimal, doc("same-task failed/suboptimal negatives").non_negative());
    v("different_task", different_task, doc("mismatched-instruction negatives").non_negative());
    v("reverse", reverse, doc("time-reversed negatives").non_negative());
  }
};

struct DataConfig {
  std::vector<DatasetEntry> train;
  std::vector<DatasetEntry> eval;
  int frames_per_trajectory = 8;  // K
  int max_stored_frames = 32;
  ResizeConfig resize;
  int num_workers = 2;
  int prefetch = 4;
  StrategyRatios strategy_ratios;
  double different_task_same_source_prob = 0.5;
  bool predict_last_frame_partial_progress = false;
  std::map<std::string, double> success_cutoffs;  // per data source, default 1.0
  std::vector<std::string> preference_only_sources;
  double max_bad_fraction = 0.05;
  int samples_per_epoch = 0;   // 0: number of trajectories
  bool autorotate = true;      // apply a video's display rotation, as the ffmpeg CLI does
  std::string index = "auto";  // trajectories.rbmidx: auto (build/rebuild) | require | off (JSONL)
  std::string mixing = "rbm";  // rbm: trajectory first (the original's default); strategy_first
  // Per data source: preference_only | suboptimal_fail | preference_only+suboptimal_fail | none
  // (the original dataset_category.py; shipped in configs/sources/robometer_original.yaml).
  std::map<std::string, std::string> source_categories;
  std::string partial_success_progress_match = "roboreward";  // "" = every graded source
  int min_frames = 5;                      // trajectories with <= this many frames are dropped
  bool drop_tasks_without_success = true;  // ungraded tasks with no successful trajectory
  template <class V>
  void visit(V& v) {
    v("train", train, doc("training datasets"));
    v("eval", eval, doc("held-out datasets"));
    v("frames_per_trajectory", frames_per_trajectory, doc("K frames per trajectory").range(1, 64));
    v("max_stored_frames", max_stored_frames, doc("uniform cap per trajectory").range(2, 4096));
    v("resize", resize);
    v("num_workers", num_workers, doc("decode threads").range(1, 256));
    v("prefetch", prefetch, doc("queued batches").range(1, 1024));
    v("strategy_ratios", strategy_ratios);
    v("different_task_same_source_prob", different_task_same_source_prob, doc("").range(0, 1));
    v("predict_last_frame_partial_progress", predict_last_frame_partial_progress,
      doc("partial_success trajectories: progress label on the last stored frame only"));
    v("success_cutoffs", success_cutoffs, doc("per-source success cutoff c in (0,1]").range(0, 1));
    v("preference_only_sources", preference_only_sources, doc("no progress supervision"));
    v("max_bad_fraction", max_bad_fraction, doc("abort above this share of bad videos").range(0, 1));
    v("samples_per_epoch", samples_per_epoch, doc("0 = number of trajectories").non_negative());
    v("autorotate", autorotate, doc("apply the display rotation stored with a video"));
    v("index", index,
      doc("binary trajectory index: auto (build or rebuild when stale), require, off (parse JSONL)")
          .choices({"auto", "require", "off"}));
    v("mixing", mixing, doc("how pairs are drawn").choices({"rbm", "strategy_first"}));
    v("source_categories", source_categories,
      doc("per-source category")
          .choices({"preference_only", "suboptimal_fail", "preference_only+suboptimal_fail", "none"}));
    v("partial_success_progress_match", partial_success_progress_match,
      doc("partial_success gives progress labels only on sources whose name contains this"));
    v("min_frames", min_frames, doc("drop trajectories with <= this many frames").non_negative());
    v("drop_tasks_without_success", drop_tasks_without_success,
      doc("drop ungraded tasks that have no successful trajectory"));
  }
};

struct LoraConfig {
  bool enabled = false;
  int r = 32;
  double alpha = 64;
  double dropout = 0.05;
  std::vector<std::string> targets = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                      "gate_proj", "up_proj", "down_proj"};
  template <class V>
  void visit(V& v) {
    v("enabled", enabled, doc("train LoRA adapters instead of the full LLM"));
    v("r", r, doc("rank").range(1, 4096));
    v("alpha", alpha, doc("scaling numerator").positive());
    v("dropout", dropout, doc("").range(0, 1));
    v("targets", targets, doc("module names"));
  }
};

// model.activation_checkpointing: none | full | selective | N (first N layers), true/false (and
// on/off, yes/no) as aliases of full/none. The model parses it (model::CheckpointPlan::parse,
// the same rules); this only rejects a bad value where the config is read.
inline std::string activation_checkpointing_rule(const std::string& value) {
  std::string v;
  for (unsigned char c : value) v += static_cast<char>(std::tolower(c));
  static const char* words[] = {"none", "full", "selective", "true", "false", "on", "off", "yes", "no"};
  for (const char* w : words)
    if (v == w) return "";
  const bool digits = !v.empty() && v.size() <= 6 &&
                      std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
  return digits ? "" : "none, full, selective or a layer count N (true/false mean full/none)";
}

struct ModelConfig {
  std::string config_json;  // HF-style config.json of the backbone (+ Robometer fields)
  std::string pretrained;   // HF or Robometer safetensors dir; empty = random init
  std::string tokenizer;    // tokenizer.json; empty = auto (ROBOMETER_TOKENIZER or .deps)
  std::string dtype = "float32";
  std::vector<std::string> freeze = {"model.visual."};
  std::string activation_checkpointing = "none";
  LoraConfig lora;
  int min_pixels = 0;  // 0 = processor default
  int max_pixels = 0;
  template <class V>
  void visit(V& v) {
    v("config_json", config_json, doc("backbone config.json").existing_path());
    v("pretrained", pretrained, doc("weights to start from").existing_path());
    v("tokenizer", tokenizer, doc("tokenizer.json"));
    v("dtype", dtype, doc("parameter dtype").choices({"float32", "bfloat16"}));
    v("freeze", freeze, doc("parameter-name prefixes kept frozen"));
    v("activation_checkpointing", activation_checkpointing,
      doc("recompute in backward: none | full | selective | N first layers")
          .checked_by(activation_checkpointing_rule));
    v("lora", lora);
    v("min_pixels", min_pixels, doc("").non_negative());
    v("max_pixels", max_pixels, doc("").non_negative());
  }
};

struct LossWeights {
  double preference = 1, progress = 1, success = 1;
  template <class V>
  void visit(V& v) {
    v("preference", preference, doc("").non_negative());
    v("progress", progress, doc("").non_negative());
    v("success", success, doc("").non_negative());
  }
};

struct TrainConfig {
  int max_steps = 1000;
  int batch_size = 16;  // pairs per device per micro-step
  int grad_accum = 1;
  bool packing = false;          // the batch's sequences end to end in one row: no padding computed
  int max_tokens_per_batch = 0;  // tokens per forward; a larger micro-batch runs as several (0: any)
  double lr = 2e-5;
  double head_lr = 0;    // 0 = lr
  double vision_lr = 0;  // 0 = lr (only when vision layers are trainable)
  double weight_decay = 0.01;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  std::string schedule = "cosine";
  double warmup_ratio = 0.1;
  double min_lr = 0;
  double max_grad_norm = 10;
  int seed = 42;
  std::string compute_dtype = "auto";  // auto: bf16 on CUDA, fp32 on CPU
  LossWeights loss_weights;
  std::string progress_loss_scale = "mean";
  int eval_every = 250;
  int eval_batches = 8;
  int checkpoint_every = 1000;
  int keep_last_n = 3;
  int keep_best = 5;                             // the original keeps its top 5 (save_best)
  std::string best_metric = "eval_kendall_tau";  // ... by policy-ranking Kendall τ
  std::string nan_rule = "original";
  int nan_abort_after = 10;
  int log_every = 1;
  template <class V>
  void visit(V& v) {
    v("max_steps", max_steps, doc("optimizer steps").range(1, 1e9));
    v("batch_size", batch_size, doc("pairs per device per micro-step").range(1, 1e6));
    v("grad_accum", grad_accum, doc("micro-steps per optimizer step").range(1, 1e6));
    v("packing", packing,
      doc("lay each batch's sequences end to end (each attends only to itself): no padding computed"));
    v("max_tokens_per_batch", max_tokens_per_batch,
      doc("tokens one forward may compute (packed: the sum of lengths; padded: rows x longest); a "
          "micro-batch that needs more runs as several forwards with the same loss; 0 = no limit")
          .range(0, 1e9));
    v("lr", lr, doc("peak learning rate").range(0, 1));
    v("head_lr", head_lr, doc("heads' lr (0 = lr)").range(0, 1));
    v("vision_lr", vision_lr, doc("trainable vision layers' lr (0 = lr)").range(0, 1));
    v("weight_decay", weight_decay, doc("decoupled AdamW decay").range(0, 1));
    v("beta1", beta1, doc("").range(0, 1));
    v("beta2", beta2, doc("").range(0, 1));
    v("eps", eps, doc("").positive());
    v("schedule", schedule, doc("lr schedule").choices({"cosine", "linear", "constant"}));
    v("warmup_ratio", warmup_ratio, doc("share of max_steps for linear warm-up").range(0, 1));
    v("min_lr", min_lr, doc("").range(0, 1));
    v("max_grad_norm", max_grad_norm, doc("global L2 clip (0 = off)").non_negative());
    v("seed", seed, doc("one seed for model init, sampling and dropout").non_negative());
    v("compute_dtype", compute_dtype, doc("").choices({"auto", "float32", "bfloat16"}));
    v("loss_weights", loss_weights);
    v("progress_loss_scale", progress_loss_scale,
      doc("mean, or reference (the original's extra 1/K)").choices({"mean", "reference"}));
    v("eval_every", eval_every, doc("steps between evaluations (0 = never)").non_negative());
    v("eval_batches", eval_batches, doc("batches per evaluation").range(1, 1e6));
    v("checkpoint_every", checkpoint_every, doc("steps between checkpoints (0 = end only)").non_negative());
    v("keep_last_n", keep_last_n, doc("checkpoints kept").range(1, 1e6));
    v("keep_best", keep_best,
      doc("best checkpoints by best_metric kept besides the last n (0 = none)").range(0, 1e6));
    v("best_metric", best_metric,
      doc("eval metric ranking checkpoints (higher is better unless it ends in loss)"));
    v("nan_rule", nan_rule,
      doc("original: a NaN progress term drops the pair loss; per_term: only that term")
          .choices({"original", "per_term"}));
    v("nan_abort_after", nan_abort_after, doc("consecutive non-finite steps before abort").range(1, 1e6));
    v("log_every", log_every, doc("steps between log lines").range(1, 1e9));
  }
};

struct DistConfig {
  std::string backend = "auto";  // auto: nccl on CUDA, gloo on CPU
  double bucket_mb = 25;
  // What is split across ranks: none (DDP), optimizer (ZeRO-1: fp32 master + AdamW moments),
  // gradients (ZeRO-2: also the gradients), parameters (ZeRO-3: also the weights).
  std::string shard = "none";
  bool zero1 = false;  // the older spelling of shard: optimizer
  int timeout_s = 300;
  template <class V>
  void visit(V& v) {
    v("backend", backend, doc("").choices({"auto", "gloo", "nccl"}));
    v("bucket_mb", bucket_mb, doc("gradient bucket size").positive());
    v("shard", shard,
      doc("state split across ranks").choices({"none", "optimizer", "gradients", "parameters"}));
    v("zero1", zero1, doc("alias of shard: optimizer"));
    v("timeout_s", timeout_s, doc("collective timeout").range(1, 86400));
  }
  // The sharding in effect: `zero1: true` with the default `shard: none` means optimizer.
  std::string shard_mode() const { return zero1 && shard == "none" ? "optimizer" : shard; }
  // Cross-key rule, run by the validator after the fields: `where(key)` names the file/override
  // that set dist.<key>. zero1 together with another sharding is refused, not silently resolved.
  template <class Where>
  std::string check(const Where& where) const {
    if (zero1 && shard != "none" && shard != "optimizer")
      return where("zero1") + " and " + where("shard") +
             ": dist.zero1 = true (shard: optimizer) conflicts with dist.shard = '" + shard +
             "'; set only dist.shard";
    return "";
  }
};

struct EvalConfig {
  double success_threshold = 0.5;
  int voc_prefixes = 5;
  int max_trajectories = 0;           // 0 = all
  std::string protocol = "original";  // original (compile_results.py) | robometer_cpp
  // Frames at inference (score, serve, eval): native size into smart_resize by default.
  ResizeConfig resize = [] {
    ResizeConfig r;
    r.mode = "none";
    return r;
  }();
  template <class V>
  void visit(V& v) {
    v("protocol", protocol, doc("evaluation protocol").choices({"original", "robometer_cpp"}));
    v("resize", resize);
    v("success_threshold", success_threshold, doc("").range(0, 1));
    v("voc_prefixes", voc_prefixes, doc("prefix end-points per trajectory").range(1, 1024));
    v("max_trajectories", max_trajectories, doc("per data source (0 = all)").non_negative());
  }
};

struct OutputConfig {
  std::string run_dir = "runs/default";
  std::string log_level = "info";
  bool tensorboard = true;
  template <class V>
  void visit(V& v) {
    v("run_dir", run_dir, doc("output directory of the run"));
    v("log_level", log_level, doc("").choices({"trace", "debug", "info", "warn", "error", "off"}));
    v("tensorboard", tensorboard, doc("write TensorBoard event files"));
  }
};

struct RunConfig {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  DistConfig dist;
  EvalConfig eval;
  OutputConfig output;
  template <class V>
  void visit(V& v) {
    v("data", data);
    v("model", model);
    v("train", train);
    v("dist", dist);
    v("eval", eval);
    v("output", output);
  }
};

}  // namespace robometer::config
