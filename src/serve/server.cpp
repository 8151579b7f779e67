#include "robometer/serve/server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"
#include "robometer/data/video_reader.h"
#include "robometer/serve/http_json.h"
#include "robometer/serve/model_queue.h"
#include "robometer/serve/route_context.h"

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
    const uint32_t v =
        (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8) | uint8_t(in[i + 2]);
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint32_t(uint8_t(in[i])) << 16) | (uint32_t(uint8_t(in[i + 1])) << 8);
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// ------------------------------------------------------------------------------ POST /score

namespace {

// The "shape" of a "frames" request as integers (any other JSON -> 400).
std::vector<int64_t> shape_field(const json& req) {
  const auto it = req.find("shape");
  if (it == req.end() || !it->is_array() || it->size() != 4)
    throw ClientError(400, "\"frames\" needs \"shape\": [T, H, W, 3]");
  std::vector<int64_t> shape;
  for (const auto& v : *it) {
    // An unsigned value above INT64_MAX would wrap negative: reject it as what it is.
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > (uint64_t{1} << 62)))
      throw ClientError(
          400, "\"shape\": integers expected, got " + v.dump(-1, ' ', false, json::error_handler_t::replace));
    shape.push_back(v.get<int64_t>());
  }
  return shape;
}

// The frames of a /score request (uint8 [T, H, W, 3]) and how they are scored; every size is
// checked before it is allocated.
struct RequestFrames {
  at::Tensor frames;
  FramePlan plan;
};

RequestFrames frames_from_request(const json& req, const RequestBudget& budget, const ServerOptions& opts) {
  if (const auto b64 = string_field(req, "frames")) {
    const std::vector<int64_t> shape = shape_field(req);
    RequestFrames out;
    out.plan = budget.plan(shape, "\"frames\"");
    budget.check_request_pixels(shape[0], out.plan);
    const int64_t expect = shape[0] * shape[1] * shape[2] * 3;  // bounded by the plan's limits
    std::string raw;
    try {
      raw = base64_decode(*b64);
    } catch (const std::exception& e) {
      throw ClientError(400, std::string("\"frames\": ") + e.what());
    }
    if (static_cast<int64_t>(raw.size()) != expect)
      throw ClientError(
          400, "\"frames\": " + std::to_string(raw.size()) + " bytes, shape needs " + std::to_string(expect));
    out.frames = at::empty(shape, at::kByte);
    std::memcpy(out.frames.data_ptr<uint8_t>(), raw.data(), raw.size());
    return out;
  }
  if (const auto b64 = string_field(req, "video")) {
    std::string bytes;
    try {
      bytes = base64_decode(*b64);
    } catch (const std::exception& e) {
      throw ClientError(400, std::string("\"video\": ") + e.what());
    }
    if (bytes.empty()) throw ClientError(400, "\"video\": empty");
    static std::atomic<uint64_t> counter{0};
    const fs::path tmp = fs::temp_directory_path() / ("robometer_serve_" + std::to_string(::getpid()) + "_" +
                                                      std::to_string(counter++) + ".bin");
    struct Remove {
      fs::path p;
      Remove(const Remove&) = delete;
      Remove& operator=(const Remove&) = delete;
      ~Remove() {
        std::error_code ec;
        fs::remove(p, ec);
      }
    } remove{tmp};
    {
      std::ofstream f(tmp, std::ios::binary);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    try {
      data::VideoReaderOptions ro;
      ro.resize = opts.resize;
      data::VideoReader reader(tmp.string(), ro);
      RequestFrames out;
      out.plan = budget.plan({reader.num_frames(), reader.height(), reader.width(), 3}, "\"video\"");
      budget.check_request_pixels(reader.num_frames(), out.plan);  // before decoding
      std::vector<int64_t> idx(static_cast<size_t>(reader.num_frames()));
      for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
      out.frames = reader.frames(idx);
      return out;
    } catch (const ClientError&) {
      throw;
    } catch (const std::exception& e) {
      throw ClientError(400, "\"video\": " + one_line_message(e));
    }
  }
  throw ClientError(400, "request needs \"frames\" (+ \"shape\") or \"video\"");
}

void handle_score(const RouteContext& ctx, const httplib::Request& req, httplib::Response& res) {
  try {
    const json body = parse_json_body(req.body, ctx.budget.limits());
    if (!body.is_object()) throw ClientError(400, "body must be a JSON object");
    const auto task_field = string_field(body, "task");
    if (!task_field) throw ClientError(400, "\"task\" missing");
    const std::string& task = *task_field;
    ctx.budget.check_task(task, "\"task\"");
    const auto mode_name = string_field(body, "mode");
    eval::ScoreMode mode = ctx.options.mode;
    if (mode_name) {
      try {
        mode = eval::parse_score_mode(*mode_name);
      } catch (const std::exception& e) {
        throw ClientError(400, std::string("\"mode\": ") + e.what());
      }
    }
    RequestFrames in = frames_from_request(body, ctx.budget, ctx.options);
    const int64_t n = in.frames.size(0);
    const int k = ctx.scorer.options().frames;
    ModelJob job;
    if (mode == eval::ScoreMode::Linspace) {
      const auto pos = data::linspace_positions(n, k);
      job.visual_tokens = ctx.budget.check_request_tokens(static_cast<int64_t>(pos.size()), in.plan);
      job.progress.push_back({task, ctx.budget.fit(eval::select_frames(in.frames, pos), in.plan)});
    } else if (mode == eval::ScoreMode::Dense) {
      job.visual_tokens = ctx.budget.check_request_tokens(n * k, in.plan);
      const at::Tensor frames = ctx.budget.fit(in.frames, in.plan);
      for (int64_t t = 0; t < n; ++t)
        job.progress.push_back({task, eval::select_frames(frames, eval::prefix_positions(t, k))});
    } else {
      job.visual_tokens = ctx.budget.check_request_tokens(n, in.plan);
      job.progress.push_back({task, ctx.budget.fit(in.frames, in.plan).contiguous()});
    }
    in.frames = at::Tensor();
    const ModelResult r = ctx.queue.submit(std::move(job)).get();
    eval::ScoreResult out;
    if (mode == eval::ScoreMode::Dense) {
      for (size_t t = 0; t < r.progress.size(); ++t) {
        out.frame_indices.push_back(static_cast<int64_t>(t));
        out.progress.push_back(r.progress[t].progress.back());
        out.success.push_back(r.progress[t].success.back());
      }
    } else {
      out.progress = r.progress.front().progress;
      out.success = r.progress.front().success;
      if (mode == eval::ScoreMode::Linspace)
        out.frame_indices = data::linspace_positions(n, k);
      else
        for (int64_t i = 0; i < n; ++i) out.frame_indices.push_back(i);
    }
    reply_json(res, 200,
               {{"progress", out.progress}, {"success", out.success}, {"frame_indices", out.frame_indices}});
  } catch (const std::exception& e) {
    const auto [status, message] = error_reply(e);
    reply_error(res, status, message);
  }
}

}  // namespace

void register_score_routes(const RouteContext& ctx) {
  ctx.http.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    const auto s = ctx.queue.stats();
    reply_json(res, 200,
               {{"status", "ok"}, {"queued", s.queued}, {"served", s.served}, {"batches", s.batches}});
  });
  ctx.http.Post("/score",
                [&ctx](const httplib::Request& req, httplib::Response& res) { handle_score(ctx, req, res); });
}

// ------------------------------------------------------------------------------ server

struct RewardServer::Impl {
  eval::Scorer& scorer;
  ServerOptions opts;
  RequestBudget budget;
  ModelQueue queue;
  GuardedHttpServer http;
  RouteContext ctx;
  std::thread http_thread;
  int port = -1;
  std::unique_ptr<SessionApi> sessions;

  Impl(eval::Scorer& s, ServerOptions o)
      : scorer(s),
        opts(std::move(o)),
        budget(*scorer.bundle().processor, opts.limits),
        queue(scorer, {opts.max_batch, opts.max_wait_ms, opts.queue, opts.limits.max_batch_tokens}),
        http(opts.connections),
        ctx{http, queue, budget, opts, scorer} {}

  // Every route group registers here: one line per group (see route_context.h).
  void register_route_groups() {
    register_score_routes(ctx);
    register_original_api(ctx);
  }
};

RewardServer::RewardServer(eval::Scorer& scorer, ServerOptions opts)
    : impl_(std::make_unique<Impl>(scorer, std::move(opts))) {}

RewardServer::~RewardServer() { stop(); }

int RewardServer::start() {
  Impl& m = *impl_;
  m.http.set_payload_max_length(static_cast<size_t>(m.opts.limits.max_request_bytes));
  m.register_route_groups();
  if (m.opts.extra_routes) m.opts.extra_routes(m.http);
  m.sessions = std::make_unique<SessionApi>(m.scorer.bundle(), m.opts.sessions);
  m.sessions->register_routes(m.http);
  // httplib answers 413 itself for an oversized body; give it a JSON error like the others.
  const int64_t limit = m.opts.limits.max_request_bytes;
  m.http.set_error_handler([limit](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = "HTTP " + std::to_string(res.status);
    if (res.status == 413)
      msg = "request body larger than the limit of " + std::to_string(limit) +
            " bytes (raise it with serve --max-request-mb)";
    // httplib caps form-encoded bodies far lower (curl --data's default content type).
    if (res.status == 413 &&
        req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0)
      msg =
          "form-encoded request body over httplib's form limit: send it with "
          "'Content-Type: application/json' (curl -H 'Content-Type: application/json' --data-binary "
          "@req.json)";
    if (res.status == 404) msg = "not found: " + req.method + " " + req.path + " (see README, section serve)";
    res.set_content(json{{"error", msg}}.dump(-1, ' ', false, json::error_handler_t::replace),
                    "application/json");
  });
  // Anything a handler lets escape: one line, never a backtrace.
  m.http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      const auto [status, message] = error_reply(e);
      reply_error(res, status, message);
    } catch (...) {
      reply_error(res, 500, "unknown error");
    }
  });
  int port = m.opts.port;
  if (port == 0) {
    port = m.http.bind_to_any_port(m.opts.host);
    if (port < 0) throw Error("serve: cannot bind " + m.opts.host);
  } else if (!m.http.bind_to_port(m.opts.host, port)) {
    throw Error("serve: cannot bind " + m.opts.host + ":" + std::to_string(port));
  }
  m.http.widen_listen_backlog();
  m.port = port;
  m.queue.start();
  m.http_thread = std::thread([&m] { m.http.listen_after_bind(); });
  return port;
}

void RewardServer::stop() {
  Impl& m = *impl_;
  m.queue.stop();  // queued jobs are answered "server stopping"
  if (m.sessions) m.sessions->stop();
  m.http.stop();
  m.http.close_all_connections();  // idle and trickling clients would hold the join below
  if (m.http_thread.joinable()) m.http_thread.join();
}

void RewardServer::wait() {
  if (impl_->http_thread.joinable()) impl_->http_thread.join();
}

int RewardServer::port() const { return impl_->port; }
int RewardServer::open_connections() const { return impl_->http.open_connections(); }

void RewardServer::set_paused(bool paused) { impl_->queue.set_paused(paused); }

}  // namespace robometer::serve
