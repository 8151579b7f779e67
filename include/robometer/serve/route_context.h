// What a route group (a set of related endpoints in its own file) gets to register itself on
// the reward server: the HTTP server, the model queue every model call goes through, the
// request budget every size must be checked against, and the server's options.
#pragma once
#include <httplib.h>

#include "robometer/eval/scorer.h"
#include "robometer/serve/model_queue.h"
#include "robometer/serve/request_limits.h"

namespace robometer::serve {

struct ServerOptions;

struct RouteContext {
  httplib::Server& http;
  ModelQueue& queue;            // the only way to run the model (one model thread)
  const RequestBudget& budget;  // check sizes before allocating
  const ServerOptions& options;
  eval::Scorer& scorer;  // options() and bundle() for reading; never call the model here
};

// Route groups (one per file); RewardServer::start registers each of them.
void register_score_routes(const RouteContext& ctx);  // GET /health, POST /score (server.cpp)
void register_original_api(const RouteContext& ctx);  // the original eval_server.py API (original_api.cpp)

}  // namespace robometer::serve
