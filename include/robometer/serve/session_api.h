// Streaming-reward sessions of `robometer serve` (model/stream_session.h behind HTTP):
//
//   POST   /sessions              {"task": "..."}            -> 201 {"session": ID, ...limits}
//   POST   /sessions/ID/frames    {"frames": "<base64 raw uint8>", "shape": [n, H, W, 3] or [H, W, 3]}
//                                 or {"image": "<base64 PNG/JPEG>"}
//          -> {"frame_indices": [...], "progress": [...], "success": [...], "frames": total}
//   DELETE /sessions/ID           -> {"deleted": ID}
//   GET    /sessions              -> {"sessions": n, "cache_bytes": b, "cache_limit_bytes": l, ...}
//   GET    /sessions/ID           -> {"frames": n, "tokens": n, "cache_bytes": b, "idle_s": s}
//
// The progress of frame i depends only on frames 0..i, and equals what `score --mode all`
// gives for frame i of the whole episode. Frame requests of many sessions are batched like
// /score: one model thread takes up to max_batch requests of distinct sessions (waiting at
// most max_wait_ms) and runs one packed KV-cached forward over all their new frames.
//
// Limits, each refusal naming its flag: more than max_sessions open -> 503; a cache growth
// the KV budget (kv_cache_mb, all sessions' cache tensors counted exactly, growth copy
// included) cannot cover -> 503; frames past max_frames_per_session -> 409 (the session is
// kept and keeps working up to the limit: start a new session for a longer episode); more
// than max_frames_per_request frames in one request -> 413. Sessions idle for ttl_s (no
// request, none in flight) are dropped and their cache freed; later requests get 404.
#pragma once
#include <cstdint>
#include <memory>

#include "robometer/data/video_reader.h"
#include "robometer/model/factory.h"

namespace httplib {
class Server;
}

namespace robometer::serve {

struct SessionOptions {
  double ttl_s = 300;                     // serve --session-ttl-s
  int max_sessions = 256;                 // serve --max-sessions
  int64_t kv_cache_mb = 2048;             // serve --kv-cache-mb (MiB, all sessions together)
  int64_t max_frames_per_session = 1024;  // serve --max-frames-per-session
  int max_batch = 16;                     // as serve --max-batch
  int max_wait_ms = 5;                    // as serve --max-wait-ms
  int64_t max_frames_per_request = 512;   // as serve --max-frames
  data::ResizeSpec resize;                // for "image" requests (the checkpoint's data.resize)
};

struct SessionStats {
  int64_t sessions = 0, cache_bytes = 0, cache_limit_bytes = 0, frames_served = 0, batches = 0;
};

class SessionApi {
 public:
  SessionApi(model::ModelBundle& bundle, SessionOptions opts);
  ~SessionApi();
  SessionApi(const SessionApi&) = delete;
  SessionApi& operator=(const SessionApi&) = delete;

  void register_routes(httplib::Server& http);
  // Answers queued frame requests with 503 "server stopping" and joins the model thread.
  void stop();
  SessionStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace robometer::serve
