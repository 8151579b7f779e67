#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "robometer/core/error.h"
#include "robometer/serve/server.h"
#include "serve_test_util.h"

namespace robometer::serve {
namespace {
using nlohmann::json;

TEST(Base64, RoundTripAndRejectsGarbage) {
  for (const std::string& s :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)})
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  EXPECT_EQ(base64_encode("hello"), "aGVsbG8=");
  EXPECT_THROW(base64_decode("aGV$bG8="), robometer::Error);
}

using test::frames_request;
using Serve = test::ServeSuite;

TEST_F(Serve, HealthScoreAndConcurrentClients) {
  ServerOptions o;
  o.max_batch = 8;
  Running r(*bundle_, o);
  ASSERT_GT(r.port, 0);
  httplib::Client cli("127.0.0.1", r.port);
  cli.set_read_timeout(60, 0);

  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");

  const auto frames = robometer::test::test_frames(6, 64, 5);
  auto res = cli.Post("/score", frames_request(frames, "open the drawer").dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const auto body = json::parse(res->body);
  const auto direct = r.scorer.linspace(frames, "open the drawer");
  ASSERT_EQ(body["progress"].size(), direct.progress.size());
  for (size_t i = 0; i < direct.progress.size(); ++i) {
    EXPECT_NEAR(body["progress"][i].get<double>(), direct.progress[i], 1e-5);
    EXPECT_NEAR(body["success"][i].get<double>(), direct.success[i], 1e-5);
  }

  // Dense mode through the server equals the scorer's dense mode.
  json dreq = frames_request(frames.slice(0, 0, 3), "open the drawer");
  dreq["mode"] = "dense";
  auto dres = cli.Post("/score", dreq.dump(), "application/json");
  ASSERT_TRUE(dres);
  ASSERT_EQ(dres->status, 200);
  const auto dd = r.scorer.dense(frames.slice(0, 0, 3), "open the drawer");
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NEAR(json::parse(dres->body)["progress"][i].get<double>(), dd.progress[i], 1e-5);

  // 8 clients x 3 requests, all answered with the right length.
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&, c] {
      httplib::Client cl("127.0.0.1", r.port);
      cl.set_read_timeout(120, 0);
      for (int r = 0; r < 3; ++r) {
        const auto f = robometer::test::test_frames(2 + (c + r) % 4, 64, 10 + c);
        auto rr =
            cl.Post("/score", frames_request(f, "task " + std::to_string(c)).dump(), "application/json");
        if (rr && rr->status == 200 &&
            json::parse(rr->body)["progress"].size() == std::min<size_t>(4, f.size(0)))
          ++ok;
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 24);

  // Bad requests -> 400 with a JSON error.
  auto bad =
      cli.Post("/score", R"({"task": "x", "frames": "AAAA", "shape": [1, 2, 2, 3]})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(json::parse(bad->body).contains("error"));
  auto notjson = cli.Post("/score", "{", "application/json");
  ASSERT_TRUE(notjson);
  EXPECT_EQ(notjson->status, 400);
  r.server.stop();
}

TEST_F(Serve, FullQueueAnswers503AndOversizedBody413) {
  ServerOptions o;
  o.queue = 2;
  o.max_batch = 2;
  o.limits.max_request_bytes = 200000;
  Running r(*bundle_, o);
  r.server.set_paused(true);
  const std::string req = frames_request(robometer::test::test_frames(2), "wipe the table").dump();
  std::vector<std::thread> waiting;
  std::atomic<int> ok{0};
  for (int i = 0; i < 2; ++i)
    waiting.emplace_back([&] {
      httplib::Client cl("127.0.0.1", r.port);
      cl.set_read_timeout(120, 0);
      auto r = cl.Post("/score", req, "application/json");
      if (r && r->status == 200) ++ok;
    });
  httplib::Client cli("127.0.0.1", r.port);
  // Bounded wait until both requests sit in the queue.
  for (int i = 0; i < 400; ++i) {
    auto h = cli.Get("/health");
    if (h && json::parse(h->body)["queued"] == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  auto busy = cli.Post("/score", req, "application/json");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_NE(json::parse(busy->body)["error"].get<std::string>().find("busy"), std::string::npos);
  r.server.set_paused(false);
  for (auto& t : waiting) t.join();
  EXPECT_EQ(ok.load(), 2);

  const std::string big = frames_request(robometer::test::test_frames(16, 64), "x").dump();  // > 200 kB
  ASSERT_GT(big.size(), 200000u);
  auto too_big = cli.Post("/score", big, "application/json");
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413);
  EXPECT_TRUE(json::parse(too_big->body).contains("error"));
  r.server.stop();
}

// Requests over the frame limit get 413 before any decoding or scoring; fields of the wrong
// JSON type are named; a stopped server answers 503 instead of leaving a request hanging.
TEST_F(Serve, FrameLimitFieldTypesAndStop) {
  ServerOptions o;
  o.limits.max_frames = 5;
  Running r(*bundle_, o);
  httplib::Client cli("127.0.0.1", r.port);
  cli.set_read_timeout(60, 0);
  auto many =
      cli.Post("/score", frames_request(robometer::test::test_frames(6), "wipe").dump(), "application/json");
  ASSERT_TRUE(many);
  EXPECT_EQ(many->status, 413);
  EXPECT_NE(json::parse(many->body)["error"].get<std::string>().find("limit is 5"), std::string::npos)
      << many->body;
  auto ok =
      cli.Post("/score", frames_request(robometer::test::test_frames(5), "wipe").dump(), "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;

  json bad = frames_request(robometer::test::test_frames(2), "wipe");
  bad["mode"] = 3;
  auto typed = cli.Post("/score", bad.dump(), "application/json");
  ASSERT_TRUE(typed);
  EXPECT_EQ(typed->status, 400);
  EXPECT_NE(json::parse(typed->body)["error"].get<std::string>().find("\"mode\" must be a string"),
            std::string::npos)
      << typed->body;

  r.server.set_paused(true);
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    r.server.stop();
  });
  httplib::Client c2("127.0.0.1", r.port);
  c2.set_read_timeout(30, 0);
  auto late_res =
      c2.Post("/score", frames_request(robometer::test::test_frames(2), "wipe").dump(), "application/json");
  late.join();
  // Queued before stop: 500 "server stopping"; arriving after it: 503. Never a hang.
  if (late_res) {
    EXPECT_TRUE(late_res->status == 500 || late_res->status == 503)
        << late_res->status << " " << late_res->body;
  }
}

}  // namespace
}  // namespace robometer::serve
