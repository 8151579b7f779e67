#include "robometer/serve/session_api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "robometer/core/error.h"
#include "robometer/model/stream_session.h"
#include "robometer/serve/server.h"

namespace robometer::serve {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// A refusal with its HTTP status.
struct HttpError : Error {
  HttpError(int status_code, const std::string& what) : Error(what), status(status_code) {}
  int status;
};

struct Session {
  std::string id;
  std::unique_ptr<model::StreamSession> stream;
  Clock::time_point last_used;
  int in_flight = 0;  // queued or running frame requests (an active session never expires)
};

struct FrameResult {
  std::vector<int64_t> frame_indices;
  std::vector<double> progress, success;
  int64_t total_frames = 0;
};

struct FrameJob {
  std::shared_ptr<Session> session;
  at::Tensor frames;
  std::promise<FrameResult> done;
};

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

std::string new_session_id() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lk(mu);
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

// "image": a PNG/JPEG (anything FFmpeg opens) decoded to one uint8 [1, H, W, 3] frame.
at::Tensor decode_image(const std::string& bytes, const data::ResizeSpec& resize) {
  if (bytes.empty()) throw HttpError(400, "\"image\": empty");
  static std::atomic<uint64_t> counter{0};
  const fs::path tmp = fs::temp_directory_path() / ("robometer_session_" + std::to_string(::getpid()) + "_" +
                                                    std::to_string(counter++) + ".img");
  std::ofstream(tmp, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  try {
    data::VideoReaderOptions ro;
    ro.resize = resize;
    data::VideoReader reader(tmp.string(), ro);
    if (reader.num_frames() != 1)
      throw Error(std::to_string(reader.num_frames()) + " frames; send one image (or raw \"frames\")");
    at::Tensor t = reader.frames(std::vector<int64_t>{0});
    fs::remove(tmp);
    return t;
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw HttpError(400, std::string("\"image\": ") + e.what());
  }
}

// The frames of one request: raw uint8 ("frames" + "shape") or one encoded "image".
at::Tensor request_frames(const json& body, const SessionOptions& o) {
  if (body.contains("frames")) {
    if (!body["frames"].is_string()) throw HttpError(400, "\"frames\" must be a base64 string");
    if (!body.contains("shape") || !body["shape"].is_array() ||
        (body["shape"].size() != 4 && body["shape"].size() != 3))
      throw HttpError(400, "\"frames\" needs \"shape\": [n, H, W, 3] or [H, W, 3]");
    std::vector<int64_t> shape;
    for (const auto& v : body["shape"]) {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0)
        throw HttpError(400, "\"shape\": positive integers expected");
      shape.push_back(v.get<int64_t>());
    }
    if (shape.size() == 3) shape.insert(shape.begin(), 1);
    if (shape[3] != 3) throw HttpError(400, "\"shape\": the last dimension must be 3 (RGB)");
    if (shape[0] > o.max_frames_per_request)
      throw HttpError(413, std::to_string(shape[0]) + " frames in one request; the limit is " +
                               std::to_string(o.max_frames_per_request) + " (serve --max-frames)");
    const std::string raw = base64_decode(body["frames"].get<std::string>());
    const int64_t expect = shape[0] * shape[1] * shape[2] * 3;
    if (static_cast<int64_t>(raw.size()) != expect)
      throw HttpError(400, "\"frames\": " + std::to_string(raw.size()) + " bytes, \"shape\" needs " +
                               std::to_string(expect));
    at::Tensor t = at::empty(shape, at::kByte);
    std::memcpy(t.data_ptr<uint8_t>(), raw.data(), raw.size());
    return t;
  }
  if (body.contains("image")) {
    if (!body["image"].is_string()) throw HttpError(400, "\"image\" must be a base64 string");
    return decode_image(base64_decode(body["image"].get<std::string>()), o.resize);
  }
  throw HttpError(400, "request needs \"frames\" (+ \"shape\") or \"image\"");
}

json parse_object(const std::string& text) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    throw HttpError(400, std::string("bad JSON: ") + e.what());
  }
  if (!body.is_object()) throw HttpError(400, "body must be a JSON object");
  return body;
}

}  // namespace

struct SessionApi::Impl {
  SessionOptions opts;
  std::shared_ptr<model::KvCacheBudget> budget;
  model::StreamModel stream;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::shared_ptr<Session>> sessions;
  std::deque<std::shared_ptr<FrameJob>> queue;
  bool stopping = false;
  std::thread model_thread;
  std::atomic<int64_t> frames_served{0}, batches{0};

  Impl(model::ModelBundle& bundle, SessionOptions o)
      : opts(std::move(o)),
        budget(std::make_shared<model::KvCacheBudget>(opts.kv_cache_mb << 20)),
        stream(bundle, {opts.max_frames_per_session, budget}) {
    if (opts.ttl_s <= 0 || opts.max_sessions < 1 || opts.kv_cache_mb < 1 || opts.max_frames_per_session < 1 ||
        opts.max_batch < 1 || opts.max_wait_ms < 0 || opts.max_frames_per_request < 1)
      throw ConfigError(
          "serve: --session-ttl-s, --max-sessions, --kv-cache-mb and --max-frames-per-session must be > 0");
    model_thread = std::thread([this] { model_loop(); });
  }

  // Drops sessions idle past the TTL; their caches go with the last reference. Caller holds mu.
  void expire_locked(Clock::time_point now) {
    const auto ttl = std::chrono::duration<double>(opts.ttl_s);
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (it->second->in_flight == 0 && now - it->second->last_used > ttl) {
        spdlog::debug("session {} expired after {} s idle", it->first, opts.ttl_s);
        it = sessions.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::shared_ptr<Session> find_locked(const std::string& id) {
    expire_locked(Clock::now());
    const auto it = sessions.find(id);
    if (it == sessions.end()) throw HttpError(404, "unknown or expired session '" + id + "'");
    return it->second;
  }

  void model_loop() {
    for (;;) {
      std::vector<std::shared_ptr<FrameJob>> jobs;
      {
        std::unique_lock<std::mutex> lk(mu);
        // Wakes at least once a second so that idle sessions expire without traffic.
        cv.wait_for(lk, std::chrono::seconds(1), [&] { return stopping || !queue.empty(); });
        expire_locked(Clock::now());
        if (stopping) break;
        if (queue.empty()) continue;
        const auto deadline = Clock::now() + std::chrono::milliseconds(opts.max_wait_ms);
        cv.wait_until(lk, deadline,
                      [&] { return stopping || static_cast<int>(queue.size()) >= opts.max_batch; });
        if (stopping) break;
        // Distinct sessions only (a session's frames run in order); the rest wait their turn.
        std::set<const Session*> taken;
        for (auto it = queue.begin(); it != queue.end() && static_cast<int>(jobs.size()) < opts.max_batch;) {
          if (taken.insert((*it)->session.get()).second) {
            jobs.push_back(*it);
            it = queue.erase(it);
          } else {
            ++it;
          }
        }
      }
      run(jobs);
      ++batches;
      std::lock_guard<std::mutex> lk(mu);
      for (auto& j : jobs) {
        j->session->last_used = Clock::now();
        --j->session->in_flight;
      }
    }
    std::lock_guard<std::mutex> lk(mu);
    for (auto& j : queue) {
      --j->session->in_flight;
      j->done.set_exception(std::make_exception_ptr(HttpError(503, "server stopping")));
    }
    queue.clear();
  }

  // Prepares each job (refusals answer that job alone), then one forward for the rest; when it
  // fails, each job alone so that only the culprit gets the error.
  void run(const std::vector<std::shared_ptr<FrameJob>>& jobs) {
    std::vector<std::shared_ptr<FrameJob>> ready;
    std::vector<model::StreamAppend> batch;
    for (const auto& j : jobs) {
      try {
        batch.push_back(stream.prepare(*j->session->stream, j->frames));
        ready.push_back(j);
      } catch (const model::StreamFrameLimit& e) {
        j->done.set_exception(std::make_exception_ptr(HttpError(409, e.what())));
      } catch (const model::KvCacheBudgetExceeded& e) {
        j->done.set_exception(std::make_exception_ptr(HttpError(503, e.what())));
      } catch (const std::exception& e) {
        j->done.set_exception(std::make_exception_ptr(HttpError(400, e.what())));
      }
    }
    forward(ready, batch);
  }

  void forward(const std::vector<std::shared_ptr<FrameJob>>& jobs,
               const std::vector<model::StreamAppend>& batch) {
    if (jobs.empty()) return;
    try {
      const auto outs = stream.run(batch);
      for (size_t i = 0; i < jobs.size(); ++i) {
        FrameResult r;
        const auto& s = *jobs[i]->session->stream;
        const int64_t n = static_cast<int64_t>(outs[i].progress.size());
        for (int64_t k = 0; k < n; ++k) r.frame_indices.push_back(s.frames() - n + k);
        r.progress = outs[i].progress;
        r.success = outs[i].success;
        r.total_frames = s.frames();
        frames_served += n;
        jobs[i]->done.set_value(std::move(r));
      }
    } catch (...) {
      if (jobs.size() > 1) {
        for (size_t i = 0; i < jobs.size(); ++i) forward({jobs[i]}, {batch[i]});
        return;
      }
      std::string msg = "stream forward failed";
      try {
        throw;
      } catch (const c10::Error& e) {
        msg = e.what_without_backtrace();
      } catch (const std::exception& e) {
        msg = e.what();
      } catch (...) {
      }
      jobs.front()->done.set_exception(std::make_exception_ptr(HttpError(500, msg)));
    }
  }

  json create(const json& body) {
    if (!body.contains("task") || !body["task"].is_string() || body["task"].get<std::string>().empty())
      throw HttpError(400, "\"task\" missing, empty or not a string");
    auto s = std::make_shared<Session>();
    try {
      s->stream = stream.open(body["task"].get<std::string>());
    } catch (const Error& e) {
      throw HttpError(400, e.what());
    }
    s->id = new_session_id();
    s->last_used = Clock::now();
    std::lock_guard<std::mutex> lk(mu);
    if (stopping) throw HttpError(503, "server stopping");
    expire_locked(Clock::now());
    if (static_cast<int>(sessions.size()) >= opts.max_sessions)
      throw HttpError(503, "session limit reached: " + std::to_string(sessions.size()) +
                               " sessions open (serve --max-sessions " + std::to_string(opts.max_sessions) +
                               "); DELETE finished ones or let idle ones expire (--session-ttl-s)");
    sessions[s->id] = s;
    return {
        {"session", s->id}, {"ttl_s", opts.ttl_s}, {"max_frames_per_session", opts.max_frames_per_session}};
  }

  FrameResult frames(const std::string& id, const json& body) {
    auto job = std::make_shared<FrameJob>();
    job->frames = request_frames(body, opts);
    auto fut = job->done.get_future();
    {
      std::lock_guard<std::mutex> lk(mu);
      if (stopping) throw HttpError(503, "server stopping");
      job->session = find_locked(id);
      ++job->session->in_flight;
      queue.push_back(job);
    }
    cv.notify_all();
    return fut.get();
  }

  json erase(const std::string& id) {
    std::lock_guard<std::mutex> lk(mu);
    find_locked(id);
    sessions.erase(id);  // a request in flight keeps the session until it is answered
    return {{"deleted", id}};
  }

  json describe(const std::string& id) {
    std::lock_guard<std::mutex> lk(mu);
    const auto s = find_locked(id);
    const double idle = std::chrono::duration<double>(Clock::now() - s->last_used).count();
    return {{"session", id},
            {"task", s->stream->task()},
            {"frames", s->stream->frames()},
            {"tokens", s->stream->tokens()},
            {"cache_bytes", s->stream->cache_bytes()},
            {"idle_s", idle}};
  }

  SessionStats stats() const {
    SessionStats st;
    {
      std::lock_guard<std::mutex> lk(mu);
      st.sessions = static_cast<int64_t>(sessions.size());
    }
    st.cache_bytes = budget->used();
    st.cache_limit_bytes = budget->limit();
    st.frames_served = frames_served.load();
    st.batches = batches.load();
    return st;
  }
};

SessionApi::SessionApi(model::ModelBundle& bundle, SessionOptions opts)
    : impl_(std::make_unique<Impl>(bundle, std::move(opts))) {}

SessionApi::~SessionApi() { stop(); }

void SessionApi::stop() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->model_thread.joinable()) impl_->model_thread.join();
}

SessionStats SessionApi::stats() const { return impl_->stats(); }

void SessionApi::register_routes(httplib::Server& http) {
  Impl& m = *impl_;
  // Every handler: HttpError -> its status; anything else -> 500 with the message.
  auto guarded = [](auto fn) {
    return [fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const HttpError& e) {
        reply(res, e.status, {{"error", e.what()}});
      } catch (const c10::Error& e) {
        reply(res, 500, {{"error", e.what_without_backtrace()}});
      } catch (const std::exception& e) {
        reply(res, 500, {{"error", e.what()}});
      }
    };
  };
  http.Post("/sessions", guarded([&m](const httplib::Request& req, httplib::Response& res) {
              reply(res, 201, m.create(parse_object(req.body)));
            }));
  http.Get("/sessions", guarded([&m](const httplib::Request&, httplib::Response& res) {
             const SessionStats s = m.stats();
             reply(res, 200,
                   {{"sessions", s.sessions},
                    {"max_sessions", m.opts.max_sessions},
                    {"cache_bytes", s.cache_bytes},
                    {"cache_limit_bytes", s.cache_limit_bytes},
                    {"frames_served", s.frames_served},
                    {"batches", s.batches}});
           }));
  http.Post(R"(/sessions/([0-9a-f]+)/frames)",
            guarded([&m](const httplib::Request& req, httplib::Response& res) {
              const FrameResult r = m.frames(req.matches[1], parse_object(req.body));
              reply(res, 200,
                    {{"frame_indices", r.frame_indices},
                     {"progress", r.progress},
                     {"success", r.success},
                     {"frames", r.total_frames}});
            }));
  http.Get(R"(/sessions/([0-9a-f]+))", guarded([&m](const httplib::Request& req, httplib::Response& res) {
             reply(res, 200, m.describe(req.matches[1]));
           }));
  http.Delete(R"(/sessions/([0-9a-f]+))", guarded([&m](const httplib::Request& req, httplib::Response& res) {
                reply(res, 200, m.erase(req.matches[1]));
              }));
}

}  // namespace robometer::serve
