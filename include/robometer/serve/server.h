// `robometer serve`: an HTTP reward server (cpp-httplib) in front of one model.
//
//   POST /score   {"task": "...", "frames": "<base64 raw uint8>", "shape": [T, H, W, 3]}
//                 or {"task": "...", "video": "<base64 mp4/webm bytes>"}
//                 optional "mode": "linspace" | "dense" | "all" (server default otherwise)
//              -> {"progress": [...], "success": [...], "frame_indices": [...]}
//   GET /health -> {"status": "ok", "queued": n, "served": n, "batches": n}
//
// HTTP threads decode and validate requests; ONE model thread drains the queue: it waits for a
// first job, then up to max_wait_ms for more, takes up to max_batch jobs, and scores all their
// progress queries together (Scorer::score_clips, in chunks of the scorer's batch size).
// A full queue answers 503, a body over max_request_bytes 413, a bad request 400, all with
// {"error": "..."}.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "robometer/data/video_reader.h"
#include "robometer/eval/scorer.h"
#include "robometer/serve/session_api.h"

namespace robometer::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;             // 0 = an ephemeral port (see RewardServer::port())
  int max_batch = 16;          // requests per model step
  int max_wait_ms = 5;         // how long the model thread waits to fill a batch
  int queue = 256;             // requests waiting for the model; more -> 503
  int64_t max_request_bytes = 64LL << 20;
  int64_t max_frames = 512;    // frames per request (a dense request is that many clips); more -> 413
  int http_threads = 32;
  eval::ScoreMode mode = eval::ScoreMode::Linspace;
  data::ResizeSpec resize = data::ResizeSpec::none();  // for "video" requests
  SessionOptions sessions;     // streaming sessions (/sessions, serve/session_api.h)
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
