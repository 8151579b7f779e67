// `robometer serve --checkpoint DIR [--host 127.0.0.1] [--port 8000] [--max-batch 16]
//   [--max-wait-ms 5] [--queue 256] [--mode linspace|dense|all] [--frames 8]
//   [request limits: --max-request-mb --max-frames --max-frame-pixels --max-request-pixels
//    --max-frame-tokens --max-request-tokens --max-batch-tokens --max-task-chars
//    --max-task-tokens --max-json-values]
//   [connections: --max-connections --max-connections-per-client --read-timeout-s
//    --request-timeout-s]`
// HTTP reward server (serve/server.h). Stops on SIGINT / SIGTERM.
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <csignal>
#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "robometer/cli/command.h"
#include "robometer/config/loader.h"
#include "robometer/data/options_from_config.h"
#include "robometer/export/load.h"
#include "robometer/serve/server.h"
#include "robometer/serve/web_ui.h"

namespace robometer::cli {
namespace {

struct ServeArgs {
  std::string checkpoint, host = "127.0.0.1", mode = "linspace", device = "auto", data;
  int port = 8000, max_batch = 16, max_wait_ms = 5, queue = 256, frames = 8, batch_size = 8;
  double max_request_mb = 64;
  serve::RequestLimits limits;
  serve::ConnectionLimits connections;
  serve::SessionOptions sessions;
};

// A YAML document as JSON (scalars typed as YAML 1.2 core would: bool, int, float, null, string),
// for GET /model_info's "experiment_config".
nlohmann::json yaml_to_json(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
    return o;
  }
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& v : n) a.push_back(yaml_to_json(v));
    return a;
  }
  if (!n.IsScalar() || n.IsNull()) return nullptr;
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted in the YAML: a string
  if (s == "true" || s == "false") return s == "true";
  if (s == "null" || s == "~") return nullptr;
  try {
    size_t end = 0;
    const long long i = std::stoll(s, &end);
    if (end == s.size()) return i;
    const double d = std::stod(s, &end);
    if (end == s.size()) return d;
  } catch (const std::exception&) {
  }
  return s;
}

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
  o.limits = a.limits;
  o.limits.max_request_bytes = static_cast<int64_t>(a.max_request_mb * 1024 * 1024);
  o.connections = a.connections;
  o.model_path = a.checkpoint;
  o.experiment_config_json = yaml_to_json(YAML::Load(config::to_yaml(m.config))).dump();
  o.mode = eval::parse_score_mode(a.mode);
  o.resize = eval::resize_spec(m.config);  // eval.resize: native frames by default
  o.extra_routes = serve::web_ui_routes(a.checkpoint, m.config, a.data, o.resize, o.limits.max_frames);
  o.sessions = a.sessions;
  o.sessions.max_batch = a.max_batch;
  o.sessions.max_wait_ms = a.max_wait_ms;
  o.sessions.max_frames_per_request = a.limits.max_frames;
  o.sessions.resize = o.resize;
  serve::RewardServer server(scorer, o);
  const int port = server.start();
  std::printf(
      "serving %s on http://%s:%d (POST /score, /sessions, GET /health; original API: POST /evaluate_batch, "
      "/evaluate_batch_npy, GET /model_info, /gpu_status)\n",
      a.checkpoint.c_str(), a.host.c_str(), port);
  std::fflush(stdout);
  std::signal(SIGINT, on_serve_signal);
  std::signal(SIGTERM, on_serve_signal);
  while (g_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {}: stopping", g_signal.load());
  server.stop();
  return 0;
}

Registrar reg(
    "serve", "HTTP reward server with request batching (POST /score)", [](CLI::App& sub, int& exit_code) {
      static ServeArgs a;
      sub.add_option("--checkpoint", a.checkpoint, "checkpoint or export directory")->required();
      sub.add_option("--host", a.host, "bind address");
      sub.add_option("--port", a.port, "port (0 = any free port)");
      sub.add_option("--max-batch", a.max_batch, "requests per model step");
      sub.add_option("--max-wait-ms", a.max_wait_ms, "wait to fill a batch");
      sub.add_option("--queue", a.queue, "queued requests before 503");
      auto& l = a.limits;
      sub.add_option("--max-request-mb", a.max_request_mb, "request body limit (413 above)");
      sub.add_option("--max-frames", l.max_frames, "input frames per request (413 above)");
      sub.add_option("--max-frame-pixels", l.max_frame_pixels, "H*W of one input frame (413 above)");
      sub.add_option("--max-request-pixels", l.max_request_pixels,
                     "T*H*W of a request's input frames (413 above)");
      sub.add_option("--max-frame-tokens", l.max_frame_tokens,
                     "visual tokens per frame; larger frames are resized down to it");
      sub.add_option("--max-request-tokens", l.max_request_tokens,
                     "visual tokens of a request's queries (413 above)");
      sub.add_option("--max-batch-tokens", l.max_batch_tokens, "visual tokens of one model step");
      sub.add_option("--max-task-chars", l.max_task_chars, "task length in characters (413 above)");
      sub.add_option("--max-task-tokens", l.max_task_tokens, "task length in tokens (413 above)");
      sub.add_option("--max-json-values", l.max_json_values, "values in one JSON body (413 above)");
      auto& c = a.connections;
      sub.add_option("--max-connections", c.max_connections, "open connections, all clients (503 above)");
      sub.add_option("--max-connections-per-client", c.max_connections_per_client,
                     "open connections of one client IP (429 above)");
      sub.add_option("--read-timeout-s", c.read_timeout_s, "longest wait for one read");
      sub.add_option("--request-timeout-s", c.request_timeout_s,
                     "a whole request (headers + body) must arrive within this");
      sub.add_option("--mode", a.mode, "default scoring mode: linspace | dense | all");
      sub.add_option("--frames", a.frames, "K frames per query");
      sub.add_option("--batch-size", a.batch_size, "queries per forward pass");
      sub.add_option("--device", a.device, "auto | cpu | cuda");
      sub.add_option("--data", a.data, "manifest directory whose trajectories the web UI (GET /) offers");
      sub.add_option("--session-ttl-s", a.sessions.ttl_s, "streaming sessions idle this long are dropped")
          ->capture_default_str();
      sub.add_option("--max-sessions", a.sessions.max_sessions, "open streaming sessions (503 above)")
          ->capture_default_str();
      sub.add_option("--kv-cache-mb", a.sessions.kv_cache_mb,
                     "KV cache of all sessions together, MiB (503 above)")
          ->capture_default_str();
      sub.add_option("--max-frames-per-session", a.sessions.max_frames_per_session,
                     "frames per streaming session (409 above)")
          ->capture_default_str();
      sub.callback([&exit_code] { exit_code = run_serve(a); });
    });

}  // namespace
}  // namespace robometer::cli
