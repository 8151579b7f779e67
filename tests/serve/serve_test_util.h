// A started reward server on the tiny model, and /score request builders, for the serve tests.
#pragma once
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

#include "../eval/eval_test_util.h"
#include "robometer/serve/server.h"

namespace robometer::serve::test {

inline nlohmann::json frames_request(const at::Tensor& f, const std::string& task) {
  const at::Tensor c = f.contiguous();
  std::string raw(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
  return {{"task", task}, {"frames", base64_encode(raw)}, {"shape", c.sizes().vec()}};
}

class ServeSuite : public robometer::test::TinyModelSuite {
 public:
  // The tiny model (K = 4, 8 clips per forward pass) behind a started server on a free port.
  struct Running {
    eval::Scorer scorer;
    RewardServer server;
    int port;
    Running(model::ModelBundle& bundle, ServerOptions o)
        : scorer(bundle, {4, 8}), server(scorer, any_port(o)), port(server.start()) {}
    static ServerOptions any_port(ServerOptions o) {
      o.port = 0;
      return o;
    }
    httplib::Client client(int timeout_s = 60) const {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(timeout_s, 0);
      return c;
    }
  };
};

}  // namespace robometer::serve::test
