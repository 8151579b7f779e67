#include "robometer/serve/model_queue.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "robometer/serve/request_limits.h"

namespace robometer::serve {

namespace {
struct QueuedJob {
  ModelJob job;
  std::promise<ModelResult> done;
};
}  // namespace

struct ModelQueue::Impl {
  eval::Scorer& scorer;
  ModelQueueOptions opts;
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<QueuedJob>> queue;
  bool stopping = false, paused = false, busy = false;
  int64_t served = 0, batches = 0;
  double busy_seconds = 0, last_used_unix = 0;

  Impl(eval::Scorer& s, ModelQueueOptions o) : scorer(s), opts(o) {}

  // Jobs for one step: FIFO, at most max_batch, visual tokens within max_batch_tokens (the
  // first job always fits: requests are limited to max_request_tokens <= max_batch_tokens).
  std::vector<std::shared_ptr<QueuedJob>> take_batch() {
    std::vector<std::shared_ptr<QueuedJob>> jobs;
    int64_t tokens = 0;
    while (!queue.empty() && static_cast<int>(jobs.size()) < opts.max_batch) {
      const int64_t t = queue.front()->job.visual_tokens;
      if (!jobs.empty() && tokens + t > opts.max_batch_tokens) break;
      tokens += t;
      jobs.push_back(queue.front());
      queue.pop_front();
    }
    return jobs;
  }

  void loop() {
    for (;;) {
      std::vector<std::shared_ptr<QueuedJob>> jobs;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stopping || (!paused && !queue.empty()); });
        if (stopping) break;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.max_wait_ms);
        cv.wait_until(lk, deadline,
                      [&] { return stopping || static_cast<int>(queue.size()) >= opts.max_batch; });
        if (stopping) break;
        jobs = take_batch();
        busy = true;
        last_used_unix =
            std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
      }
      const auto t0 = std::chrono::steady_clock::now();
      run(jobs);
      std::lock_guard<std::mutex> lk(mu);
      busy = false;
      busy_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      served += static_cast<int64_t>(jobs.size());
      ++batches;
    }
    std::lock_guard<std::mutex> lk(mu);
    for (auto& j : queue) j->done.set_exception(std::make_exception_ptr(Error("server stopping")));
    queue.clear();
  }

  void run(const std::vector<std::shared_ptr<QueuedJob>>& jobs) {
    std::vector<model::ProgressQuery> progress;
    std::vector<model::PairQuery> pairs;
    for (const auto& j : jobs) {
      progress.insert(progress.end(), j->job.progress.begin(), j->job.progress.end());
      pairs.insert(pairs.end(), j->job.pairs.begin(), j->job.pairs.end());
    }
    try {
      const auto clips = progress.empty() ? std::vector<eval::ClipOutputs>() : scorer.score_clips(progress);
      const auto prefs = pairs.empty() ? std::vector<double>() : scorer.preferences(pairs);
      size_t c = 0, p = 0;
      for (const auto& j : jobs) {
        ModelResult r;
        r.progress.assign(clips.begin() + static_cast<std::ptrdiff_t>(c),
                          clips.begin() + static_cast<std::ptrdiff_t>(c + j->job.progress.size()));
        r.preference.assign(prefs.begin() + static_cast<std::ptrdiff_t>(p),
                            prefs.begin() + static_cast<std::ptrdiff_t>(p + j->job.pairs.size()));
        c += j->job.progress.size();
        p += j->job.pairs.size();
        j->done.set_value(std::move(r));
      }
    } catch (...) {
      if (jobs.size() > 1) {
        for (const auto& j : jobs) run({j});
        return;
      }
      try {
        jobs.front()->done.set_exception(std::current_exception());
      } catch (...) {
      }
    }
  }
};

ModelQueue::ModelQueue(eval::Scorer& scorer, ModelQueueOptions opts)
    : impl_(std::make_unique<Impl>(scorer, opts)) {
  if (opts.max_batch < 1 || opts.queue < 1 || opts.max_wait_ms < 0 || opts.max_batch_tokens < 1)
    throw ConfigError("serve: max_batch, queue and max_batch_tokens must be >= 1, max_wait_ms >= 0");
}

ModelQueue::~ModelQueue() { stop(); }

void ModelQueue::start() {
  if (!impl_->thread.joinable()) impl_->thread = std::thread([this] { impl_->loop(); });
}

void ModelQueue::stop() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

std::future<ModelResult> ModelQueue::submit(ModelJob job) {
  auto q = std::make_shared<QueuedJob>();
  q->job = std::move(job);
  auto fut = q->done.get_future();
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    // After stop() nobody would answer this job: the client would wait forever.
    if (impl_->stopping) throw ClientError(503, "server stopping");
    if (static_cast<int>(impl_->queue.size()) >= impl_->opts.queue)
      throw ClientError(
          503, "server busy: " + std::to_string(impl_->opts.queue) + " requests already queued; retry later");
    impl_->queue.push_back(std::move(q));
  }
  impl_->cv.notify_all();
  return fut;
}

void ModelQueue::set_paused(bool paused) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->paused = paused;
  }
  impl_->cv.notify_all();
}

ModelQueue::Stats ModelQueue::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  Stats s;
  s.queued = impl_->queue.size();
  s.served = impl_->served;
  s.batches = impl_->batches;
  s.busy = impl_->busy;
  s.busy_seconds = impl_->busy_seconds;
  s.last_used_unix = impl_->last_used_unix;
  return s;
}

eval::Scorer& ModelQueue::scorer() { return impl_->scorer; }

}  // namespace robometer::serve
