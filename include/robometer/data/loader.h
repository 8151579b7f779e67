// Deterministic streaming loader: worker threads sample pairs, decode exactly the frames each
// clip needs, and hand out collated batches in a fixed order.
//
// Determinism: sample i of epoch e (a "global index") is built from an Rng seeded with
// hash(seed, e, i, attempt) and nothing else, so the sample sequence depends only on
// (seed, epoch, rank, world_size), never on the number of workers or on timing. Rank r of W
// takes global indices r, r+W, r+2W, ... (disjoint shards); results are re-ordered by index
// before batching.
//
// Epoch length: E = samples_per_epoch (default: number of trajectories). Each rank yields
// ceil(E / W) samples, so all ranks take the same number of steps; when W does not divide E the
// last round uses global indices >= E (fresh samples). Batches hold batch_size samples; the last
// one is smaller unless drop_last.
//
// Bad videos: a sample whose video fails to open or decode is replaced by a new draw for the
// same global index (attempt + 1), so the replacement is deterministic too. Each bad file is
// logged once with its path; when more than max_bad_fraction of all draws were bad (after at
// least min_draws_before_abort draws), or one index fails max_attempts_per_sample times in a row,
// next() throws Error.
#pragma once
#include <nlohmann/json.hpp>

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "robometer/data/sample.h"
#include "robometer/data/sampler.h"
#include "robometer/data/trajectory_index.h"
#include "robometer/data/video_reader.h"

namespace robometer::data {

struct LoaderOptions {
  SamplerOptions sampling;  // K, stored-frame cap, strategy ratios, cutoffs, is_eval, ...
  int num_workers = 2;      // decoding threads; 0 decodes on the calling thread
  int prefetch = 2;         // batches buffered ahead of the consumer
  int batch_size = 8;
  bool drop_last = false;
  ResizeSpec resize = ResizeSpec::shortest_edge(240);
  bool autorotate = true;  // data.autorotate: apply a video's display rotation
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  int64_t samples_per_epoch = 0;  // global samples per epoch; 0 = number of trajectories
  double max_bad_fraction = 0.05;
  int64_t min_draws_before_abort = 20;
  int max_attempts_per_sample = 16;
  // Run on each sample right after it is decoded, in the worker that built it (on the calling
  // thread with 0 workers); its result goes to PairSample::prepared. The trainer puts the
  // processor here so that tokenising, resizing and patching happen off the training thread.
  // It must be a pure function of the sample (determinism) and thread-safe.
  std::function<std::any(const PairSample&)> prepare;
};

// Where a loader stands: JSON-serialisable, restore() continues exactly from here.
struct LoaderState {
  int64_t epoch = 0;
  int64_t next_sample = 0;  // position in this rank's sequence of the epoch
  int64_t draws = 0;        // draws since the run started (for the bad-video threshold)
  int64_t bad_draws = 0;
  nlohmann::json to_json() const;
  static LoaderState from_json(const nlohmann::json& j);  // throws FormatError on bad fields
  bool operator==(const LoaderState& o) const {
    return epoch == o.epoch && next_sample == o.next_sample && draws == o.draws && bad_draws == o.bad_draws;
  }
};

struct LoaderStats {
  int64_t samples = 0;         // samples handed out since construction
  int64_t bad_draws = 0;       // draws replaced because a video was bad
  int64_t frames_decoded = 0;  // clip frames delivered (2K per sample)
};

class Loader {
 public:
  Loader(std::shared_ptr<const TrajectoryIndex> index, LoaderOptions opts);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Positions the loader at the start of `epoch` (also the state after construction: epoch 0).
  void start_epoch(int64_t epoch);
  // The next batch of this rank, or nullopt when the epoch is exhausted.
  std::optional<Batch> next();

  LoaderState state() const;
  void restore(const LoaderState& s);

  int64_t epoch_size() const;        // E (all ranks)
  int64_t samples_per_rank() const;  // ceil(E / W)
  int64_t batches_per_epoch() const;
  int64_t global_index(int64_t position) const;

  // Builds one sample synchronously (what a worker does). Throws on too many bad draws.
  struct Built {
    PairSample sample;
    int64_t bad_draws = 0;
  };
  Built build_sample(int64_t epoch, int64_t global_index) const;

  LoaderStats stats() const;
  const PairSampler& sampler() const;
  const LoaderOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Decodes the frames of a planned pair into a PairSample (A/B placed by plan.chosen_first).
// Throws FormatError from the video reader when a video is bad.
PairSample assemble_pair(const TrajectoryIndex& index, const PairPlan& plan, const ResizeSpec& resize,
                         bool autorotate = true);

}  // namespace robometer::data
