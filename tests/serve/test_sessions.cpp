// Streaming sessions of `robometer serve` through real HTTP on 127.0.0.1: results equal one
// `all`-mode forward, requests of many sessions are batched, and every limit answers with the
// status and the flag it names (expiry, --max-sessions, --kv-cache-mb, --max-frames-per-session).
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <thread>

#include "../eval/eval_test_util.h"
#include "robometer/serve/server.h"

namespace robometer::serve {
namespace {
using nlohmann::json;

json raw_frames(const at::Tensor& f) {
  const at::Tensor c = f.contiguous();
  std::string raw(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(c.numel()));
  return {{"frames", base64_encode(raw)}, {"shape", c.sizes().vec()}};
}

class Sessions : public test::TinyModelSuite {
 protected:
  struct Server {
    eval::Scorer scorer;
    RewardServer server;
    httplib::Client http;
    Server(model::ModelBundle& b, ServerOptions o)
        : scorer(b, {4, 8}), server(scorer, (o.port = 0, o)), http("127.0.0.1", server.start()) {
      http.set_read_timeout(60, 0);
    }
    httplib::Result post(const std::string& path, const json& body) {
      return http.Post(path.c_str(), body.dump(), "application/json");
    }
    std::string open(const std::string& task) {
      auto r = post("/sessions", {{"task", task}});
      EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no reply");
      return r && r->status == 201 ? json::parse(r->body)["session"].get<std::string>() : "";
    }
    json get(const std::string& path) {
      auto r = http.Get(path.c_str());
      EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no reply");
      return r ? json::parse(r->body) : json();
    }
  };
};

void expect_equal_to_all(const json& progress, const json& success, const eval::ScoreResult& all,
                         size_t from) {
  for (size_t i = 0; i < progress.size(); ++i) {
    const double p = all.progress[from + i], s = all.success[from + i];
    EXPECT_LE(std::abs(progress[i].get<double>() - p), 1e-5 * p) << "frame " << from + i;
    EXPECT_LE(std::abs(success[i].get<double>() - s), 1e-5 * s) << "frame " << from + i;
  }
}

TEST_F(Sessions, StreamOverHttpEqualsAllModeAndBatchesConcurrentSessions) {
  ServerOptions o;
  o.sessions.max_batch = 8;
  o.sessions.max_wait_ms = 20;
  Server srv(*bundle_, o);
  const at::Tensor frames = test::test_frames(5, 64, 31);
  const auto all = srv.scorer.all_frames(frames, "open the drawer");
  const std::string id = srv.open("open the drawer");
  ASSERT_EQ(id.size(), 32u);

  auto r = srv.post("/sessions/" + id + "/frames", raw_frames(frames.slice(0, 0, 3)));  // 3 frames at once
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json b = json::parse(r->body);
  EXPECT_EQ(b["frame_indices"], json({0, 1, 2}));
  expect_equal_to_all(b["progress"], b["success"], all, 0);
  for (int64_t t = 3; t < 5; ++t) {  // then one [H, W, 3] frame per request
    r = srv.post("/sessions/" + id + "/frames", raw_frames(frames[t]));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    b = json::parse(r->body);
    EXPECT_EQ(b["frame_indices"], json({t}));
    EXPECT_EQ(b["frames"], t + 1);
    expect_equal_to_all(b["progress"], b["success"], all, static_cast<size_t>(t));
  }
  EXPECT_EQ(srv.get("/sessions/" + id)["frames"], 5);

  // A PNG of a frame (written by the ffmpeg CLI) scores like its raw pixels.
  test::TempDir tmp;
  {
    std::ofstream raw(tmp / "f.rgb", std::ios::binary);
    raw.write(reinterpret_cast<const char*>(frames[0].contiguous().data_ptr<uint8_t>()), 64 * 64 * 3);
  }
  const auto ff = test::capture_command("ffmpeg -v error -y -f rawvideo -pix_fmt rgb24 -s 64x64 -i '" +
                                        (tmp / "f.rgb").string() + "' '" + (tmp / "f.png").string() + "'");
  ASSERT_EQ(ff.code, 0) << ff.out;
  std::ifstream png(tmp / "f.png", std::ios::binary);
  const std::string png_bytes((std::istreambuf_iterator<char>(png)), std::istreambuf_iterator<char>());
  const std::string pid = srv.open("open the drawer");
  r = srv.post("/sessions/" + pid + "/frames", {{"image", base64_encode(png_bytes)}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  expect_equal_to_all(json::parse(r->body)["progress"], json::parse(r->body)["success"], all, 0);

  // 8 clients at once, each its own session and task, 3 steps: each equals its own episode.
  const int before = srv.get("/sessions")["batches"].get<int>();
  std::vector<std::thread> clients;
  std::vector<std::string> errors(8);
  std::vector<json> got(8);
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", srv.server.port());
      cli.set_read_timeout(60, 0);
      const at::Tensor f = frames.slice(0, c % 2, c % 2 + 3);
      auto o = cli.Post("/sessions", json{{"task", c < 4 ? "open the drawer" : "fold the towel"}}.dump(),
                        "application/json");
      if (!o || o->status != 201) return void(errors[c] = "open failed");
      const std::string sid = json::parse(o->body)["session"];
      json prog = json::array(), succ = json::array();
      for (int t = 0; t < 3; ++t) {
        auto rr =
            cli.Post(("/sessions/" + sid + "/frames").c_str(), raw_frames(f[t]).dump(), "application/json");
        if (!rr || rr->status != 200) return void(errors[c] = rr ? rr->body : "no reply");
        const json bb = json::parse(rr->body);
        prog.push_back(bb["progress"][0]);
        succ.push_back(bb["success"][0]);
      }
      got[c] = {{"progress", prog}, {"success", succ}};
    });
  for (auto& t : clients) t.join();
  for (int c = 0; c < 8; ++c) {
    ASSERT_EQ(errors[c], "") << "client " << c;
    const auto want = srv.scorer.all_frames(frames.slice(0, c % 2, c % 2 + 3),
                                            c < 4 ? "open the drawer" : "fold the towel");
    expect_equal_to_all(got[c]["progress"], got[c]["success"], want, 0);
  }
  const int batches = srv.get("/sessions")["batches"].get<int>() - before;
  EXPECT_LT(batches, 24) << "24 frame requests of 8 concurrent sessions were never batched";

  auto d = srv.http.Delete(("/sessions/" + id).c_str());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, 200);
  r = srv.post("/sessions/" + id + "/frames", raw_frames(frames[0]));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

bool contains(const httplib::Result& r, const std::string& s) {
  return r && r->body.find(s) != std::string::npos;
}

TEST_F(Sessions, LimitsAnswerWithTheirStatusAndFlag) {
  ServerOptions o;
  o.sessions.max_sessions = 5;
  o.sessions.kv_cache_mb = 1;  // tiny model, fp32: 1 KiB per token -> 4 first blocks of 256 tokens
  o.sessions.max_frames_per_session = 3;
  o.sessions.max_frames_per_request = 4;
  o.sessions.ttl_s = 4.0;  // well above the time the steps below take on a loaded machine
  Server srv(*bundle_, o);
  const at::Tensor frames = test::test_frames(5, 64, 41);

  // --max-frames-per-session: 2 + 2 frames -> 409, the session keeps working up to the limit.
  const std::string a = srv.open("open the drawer");
  ASSERT_EQ(srv.post("/sessions/" + a + "/frames", raw_frames(frames.slice(0, 0, 2)))->status, 200);
  auto r = srv.post("/sessions/" + a + "/frames", raw_frames(frames.slice(0, 2, 4)));
  EXPECT_EQ(r->status, 409);
  EXPECT_TRUE(contains(r, "--max-frames-per-session")) << r->body;
  EXPECT_EQ(srv.post("/sessions/" + a + "/frames", raw_frames(frames[2]))->status, 200);
  r = srv.post("/sessions/" + a + "/frames", raw_frames(frames.slice(0, 0, 5)));  // --max-frames
  EXPECT_EQ(r->status, 413);
  EXPECT_TRUE(contains(r, "--max-frames")) << r->body;

  // --kv-cache-mb: 4 sessions hold 4 x 256 KiB = the whole MiB; the 5th cannot grow -> 503.
  std::vector<std::string> ids{a};
  for (int i = 0; i < 3; ++i) {
    ids.push_back(srv.open("open the drawer"));
    ASSERT_EQ(srv.post("/sessions/" + ids.back() + "/frames", raw_frames(frames[0]))->status, 200);
  }
  const std::string e = srv.open("open the drawer");
  r = srv.post("/sessions/" + e + "/frames", raw_frames(frames[0]));
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(contains(r, "--kv-cache-mb")) << r->body;
  json st = srv.get("/sessions");
  EXPECT_EQ(st["cache_limit_bytes"], 1 << 20);
  EXPECT_LE(st["cache_bytes"].get<int64_t>(), st["cache_limit_bytes"].get<int64_t>());
  int64_t sum = 0;
  for (const auto& id : ids) sum += srv.get("/sessions/" + id)["cache_bytes"].get<int64_t>();
  EXPECT_EQ(st["cache_bytes"].get<int64_t>(), sum);  // exactly the sessions' cache tensors

  // --max-sessions: 5 open -> the 6th is refused.
  r = srv.post("/sessions", {{"task", "open the drawer"}});
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(contains(r, "--max-sessions")) << r->body;

  // Deleting one frees its cache: the 5th session now gets its frame.
  ASSERT_EQ(srv.http.Delete(("/sessions/" + ids[1]).c_str())->status, 200);
  EXPECT_EQ(srv.post("/sessions/" + e + "/frames", raw_frames(frames[0]))->status, 200);

  // --session-ttl-s: after 4 s idle every session is gone, the cache is free, new ones open.
  std::this_thread::sleep_for(std::chrono::milliseconds(5500));
  st = srv.get("/sessions");
  EXPECT_EQ(st["sessions"], 0);
  EXPECT_EQ(st["cache_bytes"], 0);
  r = srv.post("/sessions/" + e + "/frames", raw_frames(frames[1]));
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(contains(r, "expired")) << r->body;
  EXPECT_FALSE(srv.open("open the drawer").empty());

  // Bad requests name the field.
  r = srv.post("/sessions", {{"task", 3}});
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(contains(r, "task"));
  r = srv.http.Post(("/sessions/" + srv.open("x") + "/frames").c_str(), "{not json", "application/json");
  EXPECT_EQ(r->status, 400);
  r = srv.post("/sessions/" + srv.open("x") + "/frames", {{"frames", "AAAA"}, {"shape", {1, 2, 2, 3}}});
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(contains(r, "bytes")) << r->body;
}

}  // namespace
}  // namespace robometer::serve
