#include "robometer/data/loader.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"

namespace robometer::data {

// ---------------------------------------------------------------------------------------------
// Frames + labels of one pair.

namespace {

at::Tensor to_float_tensor(const std::vector<double>& v) {
  at::Tensor t = at::empty({static_cast<int64_t>(v.size())}, at::kFloat);
  float* p = t.data_ptr<float>();
  for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<float>(v[i]);
  return t;
}

Clip make_clip(const TrajectoryIndex& index, const ClipPlan& plan, const at::Tensor& frames) {
  const Trajectory& t = index.at(plan.trajectory);
  Clip c;
  c.frames = frames;
  c.progress = to_float_tensor(plan.progress);
  c.progress_target = two_hot(plan.progress, kProgressBins);
  c.success = to_float_tensor(plan.success);
  c.success_mask = to_float_tensor(plan.success_mask);
  c.progress_mask = plan.progress_mask;
  if (!plan.progress_frame_mask.empty()) c.progress_frame_mask = to_float_tensor(plan.progress_frame_mask);
  c.frame_indices = plan.stored_indices;
  c.video_frame_indices = plan.video_indices;
  c.valid_frames = plan.valid_frames;
  c.trajectory_id = t.id;
  c.data_source = t.data_source;
  c.quality = t.quality;
  return c;
}

}  // namespace

PairSample assemble_pair(const TrajectoryIndex& index, const PairPlan& plan, const ResizeSpec& resize,
                         bool autorotate) {
  // Decode each trajectory once, for the sorted union of the frames its clips need.
  std::map<int64_t, std::vector<int64_t>> wanted;
  for (const ClipPlan* c : {&plan.chosen, &plan.rejected}) {
    auto& w = wanted[c->trajectory];
    w.insert(w.end(), c->video_indices.begin(), c->video_indices.end());
  }
  std::map<int64_t, at::Tensor> decoded;
  for (auto& [traj, idx] : wanted) {
    std::sort(idx.begin(), idx.end());
    idx.erase(std::unique(idx.begin(), idx.end()), idx.end());
    const Trajectory& t = index.at(traj);
    VideoReaderOptions vo;
    vo.resize = resize;
    vo.autorotate = autorotate;
    vo.threads = 1;
    vo.window_from_s = t.video.from_s;
    vo.window_to_s = t.video.to_s;
    VideoReader reader(t.video.path, vo);
    decoded[traj] = reader.frames(idx);
  }
  auto clip_frames = [&](const ClipPlan& c) {
    const auto& idx = wanted[c.trajectory];
    std::vector<int64_t> rows;
    for (int64_t v : c.video_indices)
      rows.push_back(std::lower_bound(idx.begin(), idx.end(), v) - idx.begin());
    return decoded[c.trajectory].index_select(0, at::tensor(rows, at::kLong)).contiguous();
  };
  Clip chosen = make_clip(index, plan.chosen, clip_frames(plan.chosen));
  Clip rejected = make_clip(index, plan.rejected, clip_frames(plan.rejected));

  PairSample s;
  s.task = plan.task;
  s.strategy = plan.strategy;
  s.different_task = plan.strategy == Strategy::DifferentTask;
  s.preference = plan.chosen_first ? 1.f : 0.f;
  if (!plan.chosen_first) std::swap(chosen, rejected);
  s.a = std::move(chosen);
  s.b = std::move(rejected);
  return s;
}

// ---------------------------------------------------------------------------------------------
// State.

nlohmann::json LoaderState::to_json() const {
  return {{"epoch", epoch}, {"next_sample", next_sample}, {"draws", draws}, {"bad_draws", bad_draws}};
}

LoaderState LoaderState::from_json(const nlohmann::json& j) {
  LoaderState s;
  auto get = [&](const char* key, int64_t& out, bool required) {
    if (!j.is_object() || !j.contains(key)) {
      if (required) throw FormatError("loader state", std::string("missing key '") + key + "'");
      return;
    }
    if (!j[key].is_number_integer() || j[key].get<int64_t>() < 0)
      throw FormatError("loader state", std::string("key '") + key + "' must be a non-negative integer");
    out = j[key].get<int64_t>();
  };
  get("epoch", s.epoch, true);
  get("next_sample", s.next_sample, true);
  get("draws", s.draws, false);
  get("bad_draws", s.bad_draws, false);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Loader.

struct Loader::Impl {
  std::shared_ptr<const TrajectoryIndex> index;
  LoaderOptions opts;
  PairSampler sampler;

  // Consumer-side position (only touched by the thread calling next()/restore()).
  LoaderState pos;
  LoaderStats stats;

  // Worker machinery.
  struct Result {
    std::optional<Built> built;
    std::exception_ptr error;
  };
  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  std::vector<std::thread> workers;
  bool stop = false;
  int64_t run_epoch = 0, claim = 0, end = 0, want = 0;
  std::map<int64_t, Result> results;

  mutable std::mutex bad_mu;
  mutable std::set<std::string> bad_paths;

  Impl(std::shared_ptr<const TrajectoryIndex> idx, LoaderOptions o)
      : index(std::move(idx)), opts(std::move(o)), sampler(index, opts.sampling) {}

  int64_t capacity() const { return std::max<int64_t>(1, opts.prefetch) * opts.batch_size; }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    cv_work.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
    results.clear();
    stop = false;
  }
};

Loader::Loader(std::shared_ptr<const TrajectoryIndex> index, LoaderOptions opts)
    : impl_(std::make_unique<Impl>(std::move(index), std::move(opts))) {
  const auto& o = impl_->opts;
  if (o.batch_size < 1) throw ConfigError("loader: batch_size must be >= 1");
  if (o.num_workers < 0) throw ConfigError("loader: num_workers must be >= 0");
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    throw ConfigError("loader: need 0 <= rank < world_size, got rank " + std::to_string(o.rank) + " of " +
                      std::to_string(o.world_size));
  if (o.samples_per_epoch < 0) throw ConfigError("loader: samples_per_epoch must be >= 0");
  if (!(o.max_bad_fraction >= 0 && o.max_bad_fraction <= 1))
    throw ConfigError("loader: max_bad_fraction must be in [0, 1]");
  if (o.max_attempts_per_sample < 1) throw ConfigError("loader: max_attempts_per_sample must be >= 1");
}

Loader::~Loader() { impl_->stop_workers(); }

int64_t Loader::epoch_size() const {
  return impl_->opts.samples_per_epoch > 0 ? impl_->opts.samples_per_epoch : impl_->index->size();
}
int64_t Loader::samples_per_rank() const {
  const int64_t w = impl_->opts.world_size;
  return (epoch_size() + w - 1) / w;
}
int64_t Loader::batches_per_epoch() const {
  const int64_t n = samples_per_rank(), b = impl_->opts.batch_size;
  return impl_->opts.drop_last ? n / b : (n + b - 1) / b;
}
int64_t Loader::global_index(int64_t position) const {
  return impl_->opts.rank + position * impl_->opts.world_size;
}
LoaderStats Loader::stats() const { return impl_->stats; }
const PairSampler& Loader::sampler() const { return impl_->sampler; }
const LoaderOptions& Loader::options() const { return impl_->opts; }
LoaderState Loader::state() const { return impl_->pos; }

// The bad-draw counters run across epochs: with many ranks an epoch can hold fewer draws
// than min_draws_before_abort, and resetting them would keep the check from ever firing.
void Loader::start_epoch(int64_t epoch) {
  restore(LoaderState{epoch, 0, impl_->pos.draws, impl_->pos.bad_draws});
}

void Loader::restore(const LoaderState& s) {
  if (s.epoch < 0 || s.next_sample < 0 || s.draws < 0 || s.bad_draws < 0)
    throw ConfigError("loader: restore() needs non-negative state fields");
  impl_->stop_workers();
  impl_->pos = s;
}

Loader::Built Loader::build_sample(int64_t epoch, int64_t gi) const {
  const auto& o = impl_->opts;
  std::string last_error;
  for (int attempt = 0; attempt < o.max_attempts_per_sample; ++attempt) {
    Rng rng(hash_seed(
        {o.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(gi), static_cast<uint64_t>(attempt)}));
    PairPlan plan = impl_->sampler.sample(rng);
    // Every draw decodes, even from a file that failed before: whether a sample is replaced
    // must depend on the file alone, not on which samples this process happened to see first
    // (resume and worker timing would change the data otherwise), and one bad episode of a
    // shared LeRobot v3.0 file must not disable the others.
    std::optional<Built> built;
    try {
      built.emplace(Built{assemble_pair(*impl_->index, plan, o.resize, o.autorotate), attempt});
    } catch (const ConfigError&) {
      throw;
    } catch (const FormatError& e) {
      last_error = e.what();
      std::lock_guard<std::mutex> lk(impl_->bad_mu);
      if (impl_->bad_paths.insert(e.path()).second)
        spdlog::warn("loader: skipping bad video {} ({})", e.path(), e.what());
    }
    if (built) {
      // Outside the try: a processor error is not a bad video and must not trigger a redraw.
      if (o.prepare) built->sample.prepared = o.prepare(built->sample);
      return std::move(*built);
    }
  }
  throw Error("loader: sample " + std::to_string(gi) + " of epoch " + std::to_string(epoch) + ": " +
              std::to_string(o.max_attempts_per_sample) +
              " draws in a row hit bad videos; last error: " + last_error);
}

std::optional<Batch> Loader::next() {
  Impl& m = *impl_;
  const int64_t total = samples_per_rank();
  if (m.pos.next_sample >= total) return std::nullopt;
  const int64_t n = std::min<int64_t>(m.opts.batch_size, total - m.pos.next_sample);
  if (m.opts.drop_last && n < m.opts.batch_size) {
    m.stop_workers();
    m.pos.next_sample = total;
    return std::nullopt;
  }

  if (m.opts.num_workers > 0 && m.workers.empty()) {  // (re)start at the current position
    m.run_epoch = m.pos.epoch;
    m.claim = m.want = m.pos.next_sample;
    m.end = total;
    for (int w = 0; w < m.opts.num_workers; ++w) {
      m.workers.emplace_back([this, &m] {
        for (;;) {
          int64_t p;
          {
            std::unique_lock<std::mutex> lk(m.mu);
            m.cv_work.wait(lk, [&] { return m.stop || m.claim >= m.end || m.claim < m.want + m.capacity(); });
            if (m.stop || m.claim >= m.end) return;
            p = m.claim++;
          }
          Impl::Result r;
          try {
            r.built = build_sample(m.run_epoch, global_index(p));
          } catch (...) {
            r.error = std::current_exception();
          }
          {
            std::lock_guard<std::mutex> lk(m.mu);
            m.results[p] = std::move(r);
          }
          m.cv_done.notify_all();
        }
      });
    }
  }

  std::vector<PairSample> samples;
  LoaderState pos = m.pos;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t p = pos.next_sample + k;
    Impl::Result r;
    if (m.opts.num_workers == 0) {
      try {
        r.built = build_sample(pos.epoch, global_index(p));
      } catch (...) {
        r.error = std::current_exception();
      }
    } else {
      std::unique_lock<std::mutex> lk(m.mu);
      m.cv_done.wait(lk, [&] { return m.results.count(p) > 0; });
      r = std::move(m.results[p]);
      m.results.erase(p);
      m.want = p + 1;
      lk.unlock();
      m.cv_work.notify_all();
    }
    if (r.error) {
      m.stop_workers();  // a later next() restarts from the unchanged position
      std::rethrow_exception(r.error);
    }
    pos.draws += 1 + r.built->bad_draws;
    pos.bad_draws += r.built->bad_draws;
    m.stats.bad_draws += r.built->bad_draws;
    if (pos.draws >= m.opts.min_draws_before_abort &&
        static_cast<double>(pos.bad_draws) > m.opts.max_bad_fraction * static_cast<double>(pos.draws)) {
      m.stop_workers();
      std::string paths;
      {
        std::lock_guard<std::mutex> lk(m.bad_mu);
        for (const auto& b : m.bad_paths) paths += (paths.empty() ? "" : ", ") + b;
      }
      throw Error("loader: " + std::to_string(pos.bad_draws) + " of " + std::to_string(pos.draws) +
                  " draws so far hit bad videos, more than max_bad_fraction " +
                  std::to_string(m.opts.max_bad_fraction) + "; bad files: " + paths);
    }
    samples.push_back(std::move(r.built->sample));
  }
  pos.next_sample += n;
  m.pos = pos;
  m.stats.samples += n;
  m.stats.frames_decoded += n * 2 * m.opts.sampling.frames_per_clip;
  if (m.pos.next_sample >= total) m.stop_workers();
  return collate(std::move(samples));
}

}  // namespace robometer::data
