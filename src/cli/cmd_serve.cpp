// `robometer serve --checkpoint DIR [--host 127.0.0.1] [--port 8000] [--max-batch 16]
//   [--max-wait-ms 5] [--queue 256] [--max-request-mb 64] [--mode linspace|dense|all] [--frames 8]`
// HTTP reward server (serve/server.h). Stops on SIGINT / SIGTERM.
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include "robometer/cli/command.h"
#include "robometer/eval/load.h"
#include "robometer/serve/server.h"

namespace robometer::cli {
namespace {

struct ServeArgs {
  std::string checkpoint, host = "127.0.0.1", mode = "linspace", device = "auto";
  int port = 8000, max_batch = 16, max_wait_ms = 5, queue = 256, frames = 8, batch_size = 8;
  double max_request_mb = 64;
  int64_t max_frames = 512;
  serve::SessionOptions sessions;
};

std::atomic<int> g_signal{0};
extern "C" void on_serve_signal(int sig) { g_signal.store(sig); }

int run_serve(const ServeArgs& a) {
  const at::Device device = eval::pick_device(a.device);
  eval::LoadedModel m = eval::load_checkpoint(a.checkpoint, device);
  eval::Scorer scorer(m.bundle, {a.frames, a.batch_size});
  serve::ServerOptions o;
  o.host = a.host;
  o.port = a.port;
  o.max_batch = a.max_batch;
  o.max_wait_ms = a.max_wait_ms;
  o.queue = a.queue;
  o.max_request_bytes = static_cast<int64_t>(a.max_request_mb * 1024 * 1024);
  o.max_frames = a.max_frames;
  o.mode = eval::parse_score_mode(a.mode);
  o.resize = eval::resize_spec(m.config);
  o.sessions = a.sessions;
  o.sessions.max_batch = a.max_batch;
  o.sessions.max_wait_ms = a.max_wait_ms;
  o.sessions.max_frames_per_request = a.max_frames;
  o.sessions.resize = o.resize;
  serve::RewardServer server(scorer, o);
  const int port = server.start();
  std::printf("serving %s on http://%s:%d (POST /score, /sessions, GET /health)\n", a.checkpoint.c_str(),
              a.host.c_str(), port);
  std::fflush(stdout);
  std::signal(SIGINT, on_serve_signal);
  std::signal(SIGTERM, on_serve_signal);
  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {}: stopping", g_signal.load());
  server.stop();
  return 0;
}

Registrar reg("serve", "HTTP reward server with request batching (POST /score)",
              [](CLI::App& sub, int& exit_code) {
                static ServeArgs a;
                sub.add_option("--checkpoint", a.checkpoint, "checkpoint or export directory")->required();
                sub.add_option("--host", a.host, "bind address");
                sub.add_option("--port", a.port, "port (0 = any free port)");
                sub.add_option("--max-batch", a.max_batch, "requests per model step");
                sub.add_option("--max-wait-ms", a.max_wait_ms, "wait to fill a batch");
                sub.add_option("--queue", a.queue, "queued requests before 503");
                sub.add_option("--max-request-mb", a.max_request_mb, "request body limit (413 above)");
                sub.add_option("--max-frames", a.max_frames, "frames per request (413 above)");
                sub.add_option("--mode", a.mode, "default scoring mode: linspace | dense | all");
                sub.add_option("--frames", a.frames, "K frames per query");
                sub.add_option("--batch-size", a.batch_size, "queries per forward pass");
                sub.add_option("--device", a.device, "auto | cpu | cuda");
                sub.add_option("--session-ttl-s", a.sessions.ttl_s, "streaming sessions idle this long are dropped")->capture_default_str();
                sub.add_option("--max-sessions", a.sessions.max_sessions, "open streaming sessions (503 above)")->capture_default_str();
                sub.add_option("--kv-cache-mb", a.sessions.kv_cache_mb, "KV cache of all sessions together, MiB (503 above)")->capture_default_str();
                sub.add_option("--max-frames-per-session", a.sessions.max_frames_per_session, "frames per streaming session (409 above)")->capture_default_str();
                sub.callback([&exit_code] { exit_code = run_serve(a); });
              });

}  // namespace
}  // namespace robometer::cli
