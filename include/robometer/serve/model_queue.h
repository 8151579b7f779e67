// The one thread that runs the model for every route group. HTTP threads validate requests
// and submit jobs; the model thread waits for a first job, then up to max_wait_ms for more,
// takes up to max_batch jobs whose visual tokens fit max_batch_tokens, and scores all their
// progress queries together (Scorer::score_clips) and all their pairs (Scorer::preferences).
// When a batch fails, each job is retried alone, so one bad job fails only itself.
#pragma once
#include <cstdint>
#include <future>
#include <memory>
#include <vector>

#include "robometer/eval/scorer.h"

namespace robometer::serve {

struct ModelJob {
  std::vector<model::ProgressQuery> progress;
  std::vector<model::PairQuery> pairs;
  int64_t visual_tokens = 0;  // counted against max_batch_tokens
};

struct ModelResult {
  std::vector<eval::ClipOutputs> progress;  // one per progress query, in order
  std::vector<double> preference;           // P(A ≻ B), one per pair, in order
};

struct ModelQueueOptions {
  int max_batch = 16;   // jobs per model step
  int max_wait_ms = 5;  // how long to wait to fill a batch
  int queue = 256;      // jobs waiting; more -> 503
  int64_t max_batch_tokens = 262144;
};

class ModelQueue {
 public:
  ModelQueue(eval::Scorer& scorer, ModelQueueOptions opts);
  ~ModelQueue();
  ModelQueue(const ModelQueue&) = delete;
  ModelQueue& operator=(const ModelQueue&) = delete;

  void start();
  void stop();  // jobs still queued fail with "server stopping"

  // Throws ClientError 503 when the queue is full or stopping.
  std::future<ModelResult> submit(ModelJob job);

  void set_paused(bool paused);  // for tests: a paused queue takes no jobs

  struct Stats {
    size_t queued = 0;
    int64_t served = 0, batches = 0;
    bool busy = false;          // a batch is running
    double busy_seconds = 0;    // total time spent in batches
    double last_used_unix = 0;  // when the last batch started (0 = never)
  };
  Stats stats() const;
  eval::Scorer& scorer();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace robometer::serve
