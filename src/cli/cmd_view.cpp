// `robometer view DIR [--host 127.0.0.1] [--port 8000] [--config YAML] [key=value ...]`
// The web UI's dataset page (serve/web_ui.h) without a model: sources, tasks, quality labels,
// frame counts, trajectories with their labels, and the training sampler's pair for a seed.
// Frame size and sampler settings come from --config (default: the built-in defaults).
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "robometer/cli/command.h"
#include "robometer/config/loader.h"
#include "robometer/core/error.h"
#include "robometer/data/options_from_config.h"
#include "robometer/serve/dataset_view.h"
#include "robometer/serve/web_ui.h"

namespace robometer::cli {
namespace {

struct ViewArgs {
  std::string dir, host = "127.0.0.1", config;
  int port = 8000;
  std::vector<std::string> overrides;
};

std::atomic<int> g_view_signal{0};
extern "C" void on_view_signal(int sig) { g_view_signal.store(sig); }

int run_view(const ViewArgs& a) {
  config::RunConfig cfg;
  if (!a.config.empty())
    cfg = config::load_run_config(a.config, a.overrides, config::MissingPaths::Warn).config;
  else if (!a.overrides.empty())
    config::apply_overrides(cfg, a.overrides);
  serve::DatasetViewOptions dv;
  dv.resize = data::resize_spec_from_config(cfg);
  dv.sampling = data::sampler_options_from_config(cfg);  // the training sampler's pairs
  serve::WebUiOptions ui;
  ui.scoring = false;
  ui.model = "no model (robometer view)";
  ui.resize = dv.resize;
  ui.dataset = std::make_shared<const serve::DatasetView>(a.dir, dv);

  httplib::Server http;
  serve::register_web_ui(http, ui);
  const int port =
      a.port == 0 ? http.bind_to_any_port(a.host) : (http.bind_to_port(a.host, a.port) ? a.port : -1);
  if (port < 0) throw Error("view: cannot bind " + a.host + ":" + std::to_string(a.port));
  std::thread listener([&http] { http.listen_after_bind(); });
  std::printf("viewing %s (%lld trajectories) on http://%s:%d/view\n", a.dir.c_str(),
              static_cast<long long>(ui.dataset->index().size()), a.host.c_str(), port);
  std::fflush(stdout);
  std::signal(SIGINT, on_view_signal);
  std::signal(SIGTERM, on_view_signal);
  while (g_view_signal.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("signal {}: stopping", g_view_signal.load());
  http.stop();
  listener.join();
  return 0;
}

Registrar reg("view", "Browse a dataset in the web UI (no model): sources, tasks, labels, training pairs",
              [](CLI::App& sub, int& exit_code) {
                static ViewArgs a;
                sub.add_option("dir", a.dir, "manifest directory (e.g. runs/synth/train)")->required();
                sub.add_option("--host", a.host, "bind address");
                sub.add_option("--port", a.port, "port (0 = any free port)");
                sub.add_option("--config", a.config,
                               "run config whose data.* settings (resize, K, strategies) apply");
                sub.add_option("overrides", a.overrides, "key.sub=value overrides");
                sub.callback([&exit_code] { exit_code = run_view(a); });
              });

}  // namespace
}  // namespace robometer::cli
