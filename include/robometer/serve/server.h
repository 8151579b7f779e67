// `robometer serve`: an HTTP reward server (cpp-httplib) in front of one model.
//
//   POST /score   {"task": "...", "frames": "<base64 raw uint8>", "shape": [T, H, W, 3]}
//                 or {"task": "...", "video": "<base64 mp4/webm bytes>"}
//                 optional "mode": "linspace" | "dense" | "all" (server default otherwise)
//              -> {"progress": [...], "success": [...], "frame_indices": [...]}
//   GET /health -> {"status": "ok", "queued": n, "served": n, "batches": n}
//   The original eval_server.py API (/evaluate_batch, /evaluate_batch_npy, /model_info,
//   /gpu_status): serve/original_api.h.
//
// HTTP threads (one per connection, serve/guarded_http.h) decode and validate requests
// against the memory budget (serve/request_limits.h); ONE model thread batches and runs them
// (serve/model_queue.h). Client errors are 4xx with {"error": "<one line>"}: 400 bad request,
// 413 over a limit (naming it and its flag), 429/503 over a connection cap or a full queue.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "robometer/data/video_reader.h"
#include "robometer/eval/scorer.h"
#include "robometer/serve/guarded_http.h"
#include "robometer/serve/request_limits.h"

namespace httplib {
class Server;
}
#include "robometer/serve/session_api.h"

namespace robometer::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;       // 0 = an ephemeral port (see RewardServer::port())
  int max_batch = 16;    // requests per model step
  int max_wait_ms = 5;   // how long the model thread waits to fill a batch
  int queue = 256;       // requests waiting for the model; more -> 503
  RequestLimits limits;  // memory budget of one request / one batch
  ConnectionLimits connections;
  eval::ScoreMode mode = eval::ScoreMode::Linspace;
  data::ResizeSpec resize = data::ResizeSpec::none();  // for "video" requests
  // What GET /model_info reports (the original API).
  std::string model_path;
  std::string experiment_config_json = "{}";           // the run config the model was trained with, as JSON
  std::function<void(httplib::Server&)> extra_routes;  // more routes on the same port (the web UI)
  SessionOptions sessions;                             // streaming sessions (/sessions, serve/session_api.h)
};

class RewardServer {
 public:
  RewardServer(eval::Scorer& scorer, ServerOptions opts);
  ~RewardServer();  // stops
  RewardServer(const RewardServer&) = delete;
  RewardServer& operator=(const RewardServer&) = delete;

  // Binds and serves in background threads; returns the bound port. Throws Error when the
  // address cannot be bound.
  int start();
  void stop();
  void wait();  // until stop() (e.g. from a signal handler thread)
  int port() const;
  // Connections admitted and not yet closed (over the caps ones are refused, not counted).
  int open_connections() const;

  // For tests: a paused model thread takes no jobs (so the queue can be filled on purpose).
  void set_paused(bool paused);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// RFC 4648 base64 (padding optional, whitespace ignored). Throws Error on other characters.
std::string base64_decode(const std::string& in);
std::string base64_encode(const std::string& in);

}  // namespace robometer::serve
