// The server survives any request (issue 21 items 1-3): the memory budget answers 413 before
// allocating, slow clients cannot starve /health, and hostile bodies get one-line 4xx errors.
// Everything goes through real HTTP on 127.0.0.1.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "robometer/model/factory.h"
#include "robometer/serve/npy.h"
#include "serve_test_util.h"

namespace robometer::serve {
namespace {
using nlohmann::json;
using test::frames_request;
using Clock = std::chrono::steady_clock;
using Limits = test::ServeSuite;

std::string error_of(const httplib::Result& r) {
  const json j = json::parse(r->body);
  return j.at("error").get<std::string>();
}

bool healthy(const test::ServeSuite::Running& r) {
  auto cli = r.client(10);
  auto h = cli.Get("/health");
  return h && h->status == 200;
}

// The two requests that OOM-killed an 8 GiB server: both answered 413 naming their limit,
// and the server goes on answering.
TEST_F(Limits, HugeFrameAndHugeTaskAre413AndTheServerKeepsAnswering) {
  Running r(*bundle_, ServerOptions{});
  auto cli = r.client();
  const at::Tensor big = at::zeros({1, 2048, 2048, 3}, at::kByte);
  const std::string body = frames_request(big, "open the drawer").dump();
  ASSERT_GT(body.size(), 12u << 20);  // the full 12 MiB of pixels travel
  auto res = cli.Post("/score", body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413) << res->body;
  EXPECT_NE(error_of(res).find("the limit is 2073600 (raise it with serve --max-frame-pixels)"),
            std::string::npos)
      << res->body;

  auto task =
      cli.Post("/score", frames_request(robometer::test::test_frames(2), std::string(100000, 'a')).dump(),
               "application/json");
  ASSERT_TRUE(task);
  EXPECT_EQ(task->status, 413) << task->body;
  EXPECT_NE(error_of(task).find(
                "length in characters: 100000; the limit is 2048 (raise it with serve --max-task-chars)"),
            std::string::npos)
      << task->body;

  // Characters, not bytes: 2048 three-byte characters are within the limit.
  std::string wide;
  for (int i = 0; i < 2048; ++i) wide += "\xe6\x89\x93";  // U+6253
  ServerOptions few_tokens;
  few_tokens.limits.max_task_tokens = 8;
  Running t(*bundle_, few_tokens);
  auto tcli = t.client();
  auto tok = tcli.Post(
      "/score",
      frames_request(robometer::test::test_frames(2), "pick up the red block and put it in the bowl").dump(),
      "application/json");
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->status, 413) << tok->body;
  EXPECT_NE(error_of(tok).find("--max-task-tokens"), std::string::npos) << tok->body;
  // 2048 characters of 3 bytes each: within the character limit (so a 413 can only be tokens).
  auto chars =
      cli.Post("/score", frames_request(robometer::test::test_frames(2), wide).dump(), "application/json");
  ASSERT_TRUE(chars);
  if (chars->status != 200) {
    EXPECT_EQ(chars->status, 413) << chars->body;
    EXPECT_NE(error_of(chars).find("--max-task-tokens"), std::string::npos) << chars->body;
  }
  auto ok = cli.Post("/score", frames_request(robometer::test::test_frames(3), "open the drawer").dump(),
                     "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_TRUE(healthy(r));
}

// Visual tokens per request (dense mode multiplies them by K) and input pixels per request.
TEST_F(Limits, RequestTokensAndPixelsAre413) {
  ServerOptions o;
  o.limits.max_request_tokens = 4 * 4 * 4;  // 4 frames of 64x64 (4 tokens each) at K = 4
  o.limits.max_batch_tokens = 4 * 4 * 4;
  o.limits.max_request_pixels = 10 * 64 * 64;
  Running r(*bundle_, o);
  auto cli = r.client();
  json dense = frames_request(robometer::test::test_frames(5), "wipe");
  dense["mode"] = "dense";  // 5 prefixes x 4 frames x 4 tokens = 80
  auto res = cli.Post("/score", dense.dump(), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413) << res->body;
  EXPECT_NE(error_of(res).find("visual tokens in one request (20 frames of 4 tokens): 80; the limit is 64"),
            std::string::npos)
      << res->body;
  dense = frames_request(robometer::test::test_frames(4), "wipe");
  dense["mode"] = "dense";
  auto fits = cli.Post("/score", dense.dump(), "application/json");
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->status, 200) << fits->body;
  json all = frames_request(robometer::test::test_frames(11), "wipe");
  all["mode"] = "all";
  auto pixels = cli.Post("/score", all.dump(), "application/json");
  ASSERT_TRUE(pixels);
  EXPECT_EQ(pixels->status, 413) << pixels->body;
  EXPECT_NE(error_of(pixels).find("--max-request-pixels"), std::string::npos) << pixels->body;
}

// Frames over the server's per-frame token cap are resized down: the result equals the
// processor of a model whose own max_pixels is that cap, on the original frames.
TEST_F(Limits, FramesOverTheTokenCapAreResizedLikeTheProcessorWould) {
  ServerOptions o;
  o.limits.max_frame_tokens = 16;  // 16 tokens = 16 * 32 * 32 pixels
  Running r(*bundle_, o);
  auto capped_cfg = robometer::test::tiny_run_config().model;
  capped_cfg.max_pixels = 16 * 32 * 32;
  auto capped = model::build_model(capped_cfg, at::kCPU, 7);  // same seed: same weights
  eval::Scorer direct(capped, {4, 8});
  const at::Tensor frames = robometer::test::test_frames(3, 320, 9);  // 100 tokens per frame unresized
  auto cli = r.client();
  auto res = cli.Post("/score", frames_request(frames, "stack the cups").dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const auto want = direct.linspace(frames, "stack the cups");
  const json got = json::parse(res->body);
  ASSERT_EQ(got["progress"].size(), want.progress.size());
  for (size_t i = 0; i < want.progress.size(); ++i) {
    EXPECT_NEAR(got["progress"][i].get<double>(), want.progress[i], 1e-5);
    EXPECT_NEAR(got["success"][i].get<double>(), want.success[i], 1e-5);
  }
  // And differs from the uncapped model (the resize did something).
  const auto uncapped = r.scorer.linspace(frames, "stack the cups");
  double diff = 0;
  for (size_t i = 0; i < want.progress.size(); ++i) diff += std::abs(uncapped.progress[i] - want.progress[i]);
  EXPECT_GT(diff, 1e-6);
}

// A batch takes only as many queued requests as fit max_batch_tokens.
TEST_F(Limits, BatchTokenBudgetSplitsBatches) {
  for (const int64_t budget : {int64_t{16}, int64_t{1000}}) {
    ServerOptions o;
    o.max_batch = 8;
    o.limits.max_request_tokens = 16;  // one linspace request of 64x64 frames: 4 x 4 tokens
    o.limits.max_batch_tokens = budget;
    Running r(*bundle_, o);
    r.server.set_paused(true);
    std::vector<std::thread> clients;
    std::atomic<int> ok{0};
    for (int i = 0; i < 3; ++i)
      clients.emplace_back([&, i] {
        auto c = r.client(120);
        auto res = c.Post("/score", frames_request(robometer::test::test_frames(4, 64, i), "wipe").dump(),
                          "application/json");
        if (res && res->status == 200) ++ok;
      });
    auto cli = r.client();
    for (int i = 0; i < 400; ++i) {
      auto h = cli.Get("/health");
      if (h && json::parse(h->body)["queued"] == 3) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    r.server.set_paused(false);
    for (auto& t : clients) t.join();
    EXPECT_EQ(ok.load(), 3);
    auto h = cli.Get("/health");
    ASSERT_TRUE(h);
    EXPECT_EQ(json::parse(h->body)["batches"].get<int>(), budget == 16 ? 3 : 1) << "budget " << budget;
  }
}

// ------------------------------------------------------------------------------ slow clients

int connect_local(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// What the server sent before closing (waits up to `ms`); "" when still open.
std::string read_until_closed(int fd, int ms, bool* closed) {
  std::string got;
  *closed = false;
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    const int left =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count());
    if (::poll(&p, 1, std::max(1, left)) <= 0) continue;
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Slowloris: 40 clients trickle one byte every 3 s; /health answers within 1 s throughout,
// and the trickling connections are cut at the request deadline.
TEST_F(Limits, HealthAnswersWhileFortyClientsTrickle) {
  ServerOptions o;
  o.connections.request_timeout_s = 5;
  Running r(*bundle_, o);
  std::vector<int> slow;
  for (int i = 0; i < 40; ++i) {
    const int fd = connect_local(r.port);
    ASSERT_GE(fd, 0);
    slow.push_back(fd);
  }
  const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    for (size_t k = 0; k < 3 && !done; ++k) {  // bytes at 0, 3 and 6 s: bounded, ~7 s in all
      for (int fd : slow) (void)::send(fd, request.data() + k, 1, MSG_NOSIGNAL);
      for (int w = 0; w < 30 && !done; ++w) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  double worst = 0;
  int answered = 0;
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::seconds(7)) {
    const auto t0 = Clock::now();
    auto cli = r.client(2);
    cli.set_connection_timeout(2, 0);
    auto h = cli.Get("/health");
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    ASSERT_TRUE(h) << "no /health answer under slow clients";
    EXPECT_EQ(h->status, 200);
    worst = std::max(worst, s);
    ++answered;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  done = true;
  trickle.join();
  EXPECT_LT(worst, 1.0) << "slowest /health under 40 trickling clients: " << worst << " s";
  EXPECT_GE(answered, 10);
  std::printf("[slowloris] %d /health answers under 40 trickling clients, slowest %.3f s\n", answered, worst);
  // Past the 5 s request deadline the server has closed every trickling connection.
  int closed = 0;
  for (int fd : slow) {
    bool c = false;
    read_until_closed(fd, 1500, &c);
    closed += c;
    ::close(fd);
  }
  EXPECT_EQ(closed, 40);
}

// A burst of connects (many RL workers starting at once) is accepted without the kernel dropping
// SYNs: with httplib's listen backlog of 5 some connects waited for the 1 s SYN retransmit.
TEST_F(Limits, BurstOfConnectsIsAcceptedWithoutSynRetransmits) {
  ServerOptions o;
  o.connections.max_connections = 256;
  o.connections.max_connections_per_client = 256;
  Running r(*bundle_, o);
  constexpr int kThreads = 8, kPerThread = 24;
  std::vector<double> slowest(kThreads, 0.0);
  std::vector<std::vector<int>> fds(kThreads);
  std::vector<std::thread> burst;
  for (int t = 0; t < kThreads; ++t)
    burst.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const auto t0 = Clock::now();
        fds[t].push_back(connect_local(r.port));
        slowest[t] = std::max(slowest[t], std::chrono::duration<double>(Clock::now() - t0).count());
      }
    });
  for (auto& b : burst) b.join();
  int connected = 0;
  for (const auto& v : fds)
    for (int fd : v) connected += fd >= 0;
  const double worst = *std::max_element(slowest.begin(), slowest.end());
  std::printf("[burst] %d connects, slowest %.3f s\n", connected, worst);
  EXPECT_EQ(connected, kThreads * kPerThread);
  EXPECT_LT(worst, 0.9) << "a connect waited for a SYN retransmit: the listen backlog is too small";
  for (const auto& v : fds)
    for (int fd : v)
      if (fd >= 0) ::close(fd);
  EXPECT_TRUE(healthy(r));
}

// Over the per-client cap a connection gets 429 at once, over the total cap 503; both JSON.
TEST_F(Limits, ConnectionCapsPerClientAndTotal) {
  for (const bool per_client : {true, false}) {
    ServerOptions o;
    o.connections.max_connections_per_client = per_client ? 3 : 100;
    o.connections.max_connections = per_client ? 100 : 3;
    Running r(*bundle_, o);
    // One at a time, each admitted before the next: the server's threads admit connections in
    // the order they run, so under load a later connection could take an earlier one's place.
    std::vector<int> idle;
    for (int i = 0; i < 3; ++i) {
      idle.push_back(connect_local(r.port));
      for (int w = 0; w < 400 && r.server.open_connections() < i + 1; ++w)
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
      ASSERT_EQ(r.server.open_connections(), i + 1) << "connection " << i << " was not admitted";
    }
    std::string reply;
    for (int attempt = 0; attempt < 40; ++attempt) {
      const int extra = connect_local(r.port);
      bool closed = false;
      reply = read_until_closed(extra, 500, &closed);
      ::close(extra);
      if (closed && !reply.empty()) break;
    }
    EXPECT_EQ(reply.rfind(per_client ? "HTTP/1.1 429" : "HTTP/1.1 503", 0), 0u) << reply;
    EXPECT_NE(reply.find(per_client ? "--max-connections-per-client" : "--max-connections"),
              std::string::npos)
        << reply;
    for (int fd : idle) ::close(fd);
    bool back = false;
    for (int i = 0; i < 100 && !back; ++i) {
      back = healthy(r);
      if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(back);
  }
}

// ------------------------------------------------------------------------------ hostile requests

struct Hostile {
  const char* name;
  const char* path;
  std::string body;
  const char* content_type;
  int status;           // expected status
  const char* message;  // a part of the expected error
};

std::string frames_body(const std::vector<int64_t>& shape, int64_t bytes, const std::string& extra = "") {
  json j = {{"task", "wipe"},
            {"frames", base64_encode(std::string(static_cast<size_t>(bytes), '\x10'))},
            {"shape", shape}};
  std::string s = j.dump();
  if (!extra.empty()) s = s.substr(0, s.size() - 1) + "," + extra + "}";
  return s;
}

std::string npy_sample_body(const std::string& npy) {
  // A multipart body as requests.post(files=..., data=...) builds it.
  const std::string b = "robometerboundary";
  const json sample = {
      {"sample_type", "progress"},
      {"trajectory", {{"task", "wipe"}, {"frames", {{"__numpy_file__", "sample_0_trajectory_frames"}}}}}};
  return "--" + b + "\r\nContent-Disposition: form-data; name=\"sample_0\"\r\n\r\n" + sample.dump() +
         "\r\n--" + b + "\r\nContent-Disposition: form-data; name=\"use_frame_steps\"\r\n\r\nfalse\r\n--" +
         b +
         "\r\nContent-Disposition: form-data; name=\"sample_0_trajectory_frames\"; "
         "filename=\"sample_0_trajectory_frames.npy\"\r\n"
         "Content-Type: application/octet-stream\r\n\r\n" +
         npy + "\r\n--" + b + "--\r\n";
}

std::string npy_with_header(const std::string& header_dict, size_t data_bytes) {
  std::string h = header_dict;
  h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
  h += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(h.size() & 0xFF);
  out += static_cast<char>(h.size() >> 8);
  return out + h + std::string(data_bytes, '\x20');
}

TEST_F(Limits, HostileRequestsGetOneLine4xx) {
  Running r(*bundle_, ServerOptions{});
  const char* mp = "multipart/form-data; boundary=robometerboundary";
  const std::string good_npy = npy_encode_uint8(robometer::test::test_frames(2, 32));
  std::vector<Hostile> table = {
      {"invalid UTF-8 in the task", "/score", "{\"task\": \"\xff\xfe wipe\", \"video\": \"AAAA\"}",
       "application/json", 400, "bad JSON"},
      {"invalid UTF-8 outside strings", "/score", "{\xc3\x28: 1}", "application/json", 400, "bad JSON"},
      {"overflowing shape", "/score",
       frames_body({4611686018427387904LL, 4611686018427387904LL, 4611686018427387904LL, 3}, 3),
       "application/json", 413, "frames in one request"},
      {"overflowing pixels", "/score", frames_body({1, 4294967296LL, 4294967296LL, 3}, 3), "application/json",
       413, "--max-frame-pixels"},
      {"shape above int64", "/score",
       "{\"task\": \"wipe\", \"frames\": \"AAAA\", \"shape\": [18446744073709551615, 1, 1, 3]}",
       "application/json", 400, "integers expected"},
      {"float shape", "/score", "{\"task\": \"wipe\", \"frames\": \"AAAA\", \"shape\": [1.5, 2, 2, 3]}",
       "application/json", 400, "integers expected"},
      {"negative shape", "/score", frames_body({1, -2, 2, 3}, 12), "application/json", 400, "positive"},
      {"aspect ratio over 200", "/score", frames_body({1, 2, 402, 3}, 2 * 402 * 3), "application/json", 400,
       "aspect ratio above 200"},
      {"bytes do not match the shape", "/score", frames_body({1, 4, 4, 3}, 5), "application/json", 400,
       "shape needs 48"},
      {"task of the wrong type", "/score", "{\"task\": 5, \"video\": \"AAAA\"}", "application/json", 400,
       "\"task\" must be a string"},
      {"frames of the wrong type", "/score", "{\"task\": \"wipe\", \"frames\": [1, 2]}", "application/json",
       400, "\"frames\" must be a string"},
      {"shape of the wrong type", "/score",
       "{\"task\": \"wipe\", \"frames\": \"AAAA\", \"shape\": \"1,2,2,3\"}", "application/json", 400,
       "needs \"shape\""},
      {"mode of the wrong type", "/score", frames_body({1, 4, 4, 3}, 48, "\"mode\": []"), "application/json",
       400, "\"mode\" must be a string"},
      {"unknown mode", "/score", frames_body({1, 4, 4, 3}, 48, "\"mode\": \"fast\""), "application/json", 400,
       "linspace"},
      {"body is an array", "/score", "[1, 2, 3]", "application/json", 400, "JSON object"},
      {"body is empty", "/score", "", "application/json", 400, "bad JSON"},
      {"deep nesting", "/score", std::string(100000, '[') + std::string(100000, ']'), "application/json", 400,
       "nested deeper"},
      {"special token in the task", "/score",
       "{\"task\": \"wipe<|image_pad|>\", \"frames\": \"AAAA\", \"shape\": [1, 1, 1, 3]}", "application/json",
       400, "special token"},
      {"bad base64", "/score", "{\"task\": \"wipe\", \"frames\": \"AA$A\", \"shape\": [1, 1, 1, 3]}",
       "application/json", 400, "base64"},
      {"not a video", "/score", "{\"task\": \"wipe\", \"video\": \"AAAAAAAA\"}", "application/json", 400,
       "\"video\""},
      {"unknown path", "/nope", "{}", "application/json", 404, "not found"},
      {"samples not a list", "/evaluate_batch", "{\"samples\": 3}", "application/json", 400,
       "non-empty list"},
      {"unknown sample type", "/evaluate_batch", "{\"samples\": [{\"sample_type\": \"similarity\"}]}",
       "application/json", 400, "Unsupported sample_type: similarity"},
      {"frames as file paths", "/evaluate_batch",
       "{\"samples\": [{\"sample_type\": \"progress\", \"trajectory\": {\"task\": \"wipe\", \"frames\": "
       "[\"/etc/passwd\"]}}]}",
       "application/json", 400, "file paths are not accepted"},
      {"ragged nested frames", "/evaluate_batch",
       "{\"samples\": [{\"sample_type\": \"progress\", \"trajectory\": {\"task\": \"wipe\", \"frames\": "
       "[[[[1,2,3],[1,2,3]]],[[[1,2,3]]]]}}]}",
       "application/json", 400, "different widths"},
      {"use_frame_steps of the wrong type", "/evaluate_batch", "{\"samples\": [], \"use_frame_steps\": 5}",
       "application/json", 400, "use_frame_steps"},
      {"npy endpoint without multipart", "/evaluate_batch_npy", "{}", "application/json", 400, "multipart"},
      {"npy with a bad magic", "/evaluate_batch_npy", npy_sample_body("NOTNUMPY" + good_npy.substr(8)), mp,
       400, "magic"},
      {"npy big-endian", "/evaluate_batch_npy",
       npy_sample_body(
           npy_with_header("{'descr': '>f8', 'fortran_order': False, 'shape': (1, 2, 2, 3), }", 96)),
       mp, 400, "dtype '>f8'"},
      {"npy data shorter than its shape", "/evaluate_batch_npy",
       npy_sample_body(
           npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 2, 3), }", 5)),
       mp, 400, "shape and dtype need 12"},
      {"npy shape overflow", "/evaluate_batch_npy",
       npy_sample_body(npy_with_header(
           "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776, 3), }", 8)),
       mp, 400, "overflows"},
      {"npy huge frame", "/evaluate_batch_npy",
       npy_sample_body(
           npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 4096, 4096, 3), }", 0)),
       mp, 400, "shape and dtype need"},
      {"npy with too many frames", "/evaluate_batch_npy",
       npy_sample_body(
           npy_with_header("{'descr': '|u1', 'fortran_order': False, 'shape': (600, 1, 1, 3), }", 1800)),
       mp, 413, "frames in one request: 600"},
      {"npy reference to a missing file", "/evaluate_batch",
       "{\"samples\": [{\"sample_type\": \"progress\", \"trajectory\": {\"task\": \"wipe\", \"frames\": "
       "{\"__numpy_file__\": \"x\"}}}]}",
       "application/json", 400, "need POST /evaluate_batch_npy"},
  };
  for (const Hostile& h : table) {
    SCOPED_TRACE(h.name);
    auto cli = r.client();
    auto res = cli.Post(h.path, h.body, h.content_type);
    ASSERT_TRUE(res) << "no answer";
    EXPECT_EQ(res->status, h.status) << res->body;
    json j;
    ASSERT_NO_THROW(j = json::parse(res->body)) << res->body;
    ASSERT_TRUE(j.contains("error") && j["error"].is_string()) << res->body;
    const std::string e = j["error"].get<std::string>();
    EXPECT_NE(e.find(h.message), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << "not one line: " << e;
    EXPECT_EQ(e.find("Exception raised from"), std::string::npos) << "a backtrace: " << e;
    EXPECT_LT(e.size(), 600u) << e;
  }
  EXPECT_TRUE(healthy(r));
}

}  // namespace
}  // namespace robometer::serve
