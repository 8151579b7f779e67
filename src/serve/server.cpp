#include "robometer/serve/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unistd.h>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"
#include "robometer/data/video_reader.h"

namespace robometer::serve {
namespace fs = std::filesystem;
using nlohmann::json;

// ------------------------------------------------------------------------------ base64

namespace {
int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}
}  // namespace

std::string base64_decode(const std::string& in) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '=') break;
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    const int v = b64_value(c);
    if (v < 0) throw Error("base64: invalid character at offset " + std::to_string(i));
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string base64_encode(const std::string& in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += tbl[v >> 18]; out += tbl[(v >> 12) & 63]; out += tbl[(v >> 6) & 63]; out += tbl[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += tbl[v >> 18]; out += tbl[(v >> 12) & 63]; out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += tbl[v >> 18]; out += tbl[(v >> 12) & 63]; out += tbl[(v >> 6) & 63]; out += '=';
  }
  return out;
}

// ------------------------------------------------------------------------------ server

namespace {

struct Job {
  std::vector<model::ProgressQuery> queries;
  eval::ScoreMode mode;
  int64_t num_frames = 0;
  std::promise<eval::ScoreResult> done;
};

// Bad requests (-> 400, or `status`), as opposed to server failures (-> 500).
struct BadRequest : Error {
  explicit BadRequest(const std::string& what, int status_code = 400) : Error(what), status(status_code) {}
  int status;
};

// body[key] as a string; absent -> nullopt; another JSON type names the key.
std::optional<std::string> string_field(const json& body, const char* key) {
  if (!body.contains(key)) return std::nullopt;
  if (!body[key].is_string())
    throw BadRequest(std::string("\"") + key + "\" must be a string, got " + body[key].type_name());
  return body[key].get<std::string>();
}

void check_frame_count(int64_t frames, const ServerOptions& opts) {
  if (frames > opts.max_frames)
    throw BadRequest(std::to_string(frames) + " frames in one request; the limit is " +
                         std::to_string(opts.max_frames) + " (serve --max-frames)",
                     413);
}

at::Tensor frames_from_request(const json& req, const ServerOptions& opts) {
  if (const auto b64 = string_field(req, "frames")) {
    if (!req.contains("shape") || !req["shape"].is_array() || req["shape"].size() != 4)
      throw BadRequest("\"frames\" needs \"shape\": [T, H, W, 3]");
    std::vector<int64_t> shape;
    for (const auto& v : req["shape"]) {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0) throw BadRequest("\"shape\": positive integers expected");
      shape.push_back(v.get<int64_t>());
    }
    if (shape[3] != 3) throw BadRequest("\"shape\": last dimension must be 3 (RGB)");
    check_frame_count(shape[0], opts);
    const std::string raw = base64_decode(*b64);
    const int64_t expect = shape[0] * shape[1] * shape[2] * 3;
    if (static_cast<int64_t>(raw.size()) != expect)
      throw BadRequest("\"frames\": " + std::to_string(raw.size()) + " bytes, shape needs " + std::to_string(expect));
    at::Tensor t = at::empty(shape, at::kByte);
    std::memcpy(t.data_ptr<uint8_t>(), raw.data(), raw.size());
    return t;
  }
  if (const auto b64 = string_field(req, "video")) {
    const std::string bytes = base64_decode(*b64);
    if (bytes.empty()) throw BadRequest("\"video\": empty");
    static std::atomic<uint64_t> counter{0};
    const fs::path tmp = fs::temp_directory_path() /
                         ("robometer_serve_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".bin");
    {
      std::ofstream f(tmp, std::ios::binary);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    try {
      data::VideoReaderOptions ro;
      ro.resize = opts.resize;
      data::VideoReader reader(tmp.string(), ro);
      check_frame_count(reader.num_frames(), opts);
      std::vector<int64_t> idx(static_cast<size_t>(reader.num_frames()));
      for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
      at::Tensor t = reader.frames(idx);
      fs::remove(tmp);
      return t;
    } catch (const BadRequest&) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw;
    } catch (const std::exception& e) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw BadRequest(std::string("\"video\": ") + e.what());
    }
  }
  throw BadRequest("request needs \"frames\" (+ \"shape\") or \"video\"");
}

void reply_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

}  // namespace

struct RewardServer::Impl {
  eval::Scorer& scorer;
  ServerOptions opts;
  httplib::Server http;
  std::thread http_thread, model_thread;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Job>> queue;
  bool stopping = false, paused = false;
  std::atomic<int64_t> served{0}, batches{0};
  int port = -1;
  std::unique_ptr<SessionApi> sessions;

  Impl(eval::Scorer& s, ServerOptions o) : scorer(s), opts(std::move(o)) {}

  // One batch: every query of up to max_batch jobs in one score_clips call.
  void model_loop() {
    for (;;) {
      std::vector<std::shared_ptr<Job>> jobs;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return stopping || (!paused && !queue.empty()); });
        if (stopping) break;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.max_wait_ms);
        cv.wait_until(lk, deadline, [&] { return stopping || static_cast<int>(queue.size()) >= opts.max_batch; });
        if (stopping) break;
        while (!queue.empty() && static_cast<int>(jobs.size()) < opts.max_batch) {
          jobs.push_back(queue.front());
          queue.pop_front();
        }
      }
      score(jobs);
      served += static_cast<int64_t>(jobs.size());
      ++batches;
    }
    // Anything left is answered with an error.
    std::lock_guard<std::mutex> lk(mu);
    for (auto& j : queue) j->done.set_exception(std::make_exception_ptr(Error("server stopping")));
    queue.clear();
  }

  // Scores the jobs in one call; when that fails, each job alone, so that one bad request
  // (too large for memory, say) fails only itself and not its batch-mates.
  void score(const std::vector<std::shared_ptr<Job>>& jobs) {
    std::vector<model::ProgressQuery> all;
    for (const auto& j : jobs) all.insert(all.end(), j->queries.begin(), j->queries.end());
    try {
      const auto outs = scorer.score_clips(all);
      size_t at = 0;
      for (auto& j : jobs) {
        eval::ScoreResult r;
        if (j->mode == eval::ScoreMode::Dense) {
          for (size_t q = 0; q < j->queries.size(); ++q, ++at) {
            r.frame_indices.push_back(static_cast<int64_t>(q));
            r.progress.push_back(outs[at].progress.back());
            r.success.push_back(outs[at].success.back());
          }
        } else {
          r.progress = outs[at].progress;
          r.success = outs[at].success;
          r.frame_indices = j->mode == eval::ScoreMode::Linspace
                                ? data::linspace_positions(j->num_frames, scorer.options().frames)
                                : std::vector<int64_t>();
          if (r.frame_indices.empty())
            for (int64_t i = 0; i < j->num_frames; ++i) r.frame_indices.push_back(i);
          ++at;
        }
        j->done.set_value(std::move(r));
      }
    } catch (...) {
      if (jobs.size() > 1) {
        for (const auto& j : jobs) score({j});
        return;
      }
      try { jobs.front()->done.set_exception(std::current_exception()); } catch (...) {}
    }
  }

  void handle_score(const httplib::Request& req, httplib::Response& res) {
    std::shared_ptr<Job> job = std::make_shared<Job>();
    try {
      const json body = json::parse(req.body);
      if (!body.is_object()) throw BadRequest("body must be a JSON object");
      const std::string task = string_field(body, "task").value_or("");
      if (task.empty()) throw BadRequest("\"task\" missing or empty");
      const auto mode = string_field(body, "mode");
      job->mode = mode ? eval::parse_score_mode(*mode) : opts.mode;
      const at::Tensor frames = frames_from_request(body, opts);
      job->num_frames = frames.size(0);
      const int k = scorer.options().frames;
      if (job->mode == eval::ScoreMode::Dense) {
        for (int64_t t = 0; t < frames.size(0); ++t)
          job->queries.push_back({task, eval::select_frames(frames, eval::prefix_positions(t, k))});
      } else if (job->mode == eval::ScoreMode::Linspace) {
        job->queries.push_back({task, eval::select_frames(frames, data::linspace_positions(frames.size(0), k))});
      } else {
        job->queries.push_back({task, frames.contiguous()});
      }
    } catch (const json::exception& e) {
      return reply_json(res, 400, {{"error", std::string("bad JSON: ") + e.what()}});
    } catch (const BadRequest& e) {
      return reply_json(res, e.status, {{"error", e.what()}});
    } catch (const std::exception& e) {
      return reply_json(res, 400, {{"error", e.what()}});
    }
    auto fut = job->done.get_future();
    {
      std::lock_guard<std::mutex> lk(mu);
      // After stop() the model thread may have drained the queue already: nobody would
      // answer this job (the HTTP thread, and with it stop(), would wait forever).
      if (stopping) return reply_json(res, 503, {{"error", "server stopping"}});
      if (static_cast<int>(queue.size()) >= opts.queue)
        return reply_json(res, 503, {{"error", "server busy: " + std::to_string(opts.queue) +
                                                   " requests already queued; retry later"}});
      queue.push_back(job);
    }
    cv.notify_all();
    try {
      const eval::ScoreResult r = fut.get();
      reply_json(res, 200, {{"progress", r.progress}, {"success", r.success}, {"frame_indices", r.frame_indices}});
    } catch (const c10::Error& e) {  // LibTorch's message without its C++ backtrace
      reply_json(res, 500, {{"error", e.what_without_backtrace()}});
    } catch (const std::exception& e) {
      reply_json(res, 500, {{"error", e.what()}});
    }
  }
};

RewardServer::RewardServer(eval::Scorer& scorer, ServerOptions opts)
    : impl_(std::make_unique<Impl>(scorer, std::move(opts))) {
  auto& o = impl_->opts;
  if (o.max_batch < 1 || o.queue < 1 || o.max_wait_ms < 0 || o.max_request_bytes < 1 || o.http_threads < 1 ||
      o.max_frames < 1)
    throw ConfigError("serve: max_batch, queue, max_request_bytes, max_frames and threads must be >= 1, max_wait_ms >= 0");
}

RewardServer::~RewardServer() { stop(); }

int RewardServer::start() {
  Impl& m = *impl_;
  const int threads = m.opts.http_threads;
  m.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  m.http.set_payload_max_length(static_cast<size_t>(m.opts.max_request_bytes));
  m.http.Get("/health", [&m](const httplib::Request&, httplib::Response& res) {
    size_t queued;
    {
      std::lock_guard<std::mutex> lk(m.mu);
      queued = m.queue.size();
    }
    reply_json(res, 200, {{"status", "ok"}, {"queued", queued}, {"served", m.served.load()},
                          {"batches", m.batches.load()}});
  });
  m.http.Post("/score", [&m](const httplib::Request& req, httplib::Response& res) { m.handle_score(req, res); });
  m.sessions = std::make_unique<SessionApi>(m.scorer.bundle(), m.opts.sessions);
  m.sessions->register_routes(m.http);
  // httplib answers 413 itself for an oversized body; give it a JSON error like the others.
  const int64_t limit = m.opts.max_request_bytes;
  m.http.set_error_handler([limit](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = "HTTP " + std::to_string(res.status);
    if (res.status == 413) msg = "request body larger than the limit of " + std::to_string(limit) + " bytes";
    // httplib caps form-encoded bodies far lower (curl --data's default content type).
    if (res.status == 413 && req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0)
      msg = "form-encoded request body over httplib's form limit: send it with "
            "'Content-Type: application/json' (curl -H 'Content-Type: application/json' --data-binary @req.json)";
    if (res.status == 404) msg = "not found: use POST /score or GET /health";
    res.set_content(json{{"error", msg}}.dump(), "application/json");
  });
  int port = m.opts.port;
  if (port == 0) {
    port = m.http.bind_to_any_port(m.opts.host);
    if (port < 0) throw Error("serve: cannot bind " + m.opts.host);
  } else if (!m.http.bind_to_port(m.opts.host, port)) {
    throw Error("serve: cannot bind " + m.opts.host + ":" + std::to_string(port));
  }
  m.port = port;
  m.model_thread = std::thread([&m] { m.model_loop(); });
  m.http_thread = std::thread([&m] { m.http.listen_after_bind(); });
  return port;
}

void RewardServer::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> lk(m.mu);
    m.stopping = true;
  }
  m.cv.notify_all();
  if (m.sessions) m.sessions->stop();
  m.http.stop();
  if (m.http_thread.joinable()) m.http_thread.join();
  if (m.model_thread.joinable()) m.model_thread.join();
}

void RewardServer::wait() {
  if (impl_->http_thread.joinable()) impl_->http_thread.join();
}

int RewardServer::port() const { return impl_->port; }

void RewardServer::set_paused(bool paused) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->paused = paused;
  }
  impl_->cv.notify_all();
}

}  // namespace robometer::serve
