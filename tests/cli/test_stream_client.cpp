// scripts/examples/stream_client.py (the gym-style env wrapper of README "Streaming rewards")
// against a real `robometer serve` on 127.0.0.1: the documented example must run as written,
// add one reward per environment step, and two episodes with the same seed must get the same
// rewards (sessions are isolated). Skips where python3-requests is missing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "common/serve_process.h"
#include "common/test_util.h"
#include "eval/eval_test_util.h"

namespace {
namespace fs = std::filesystem;
using robometer::test::capture_command;

struct Step {
  double reward, progress, success;
};

// "step   1  reward +0.0123  progress 0.4567  P(success) 0.1234" lines, and "return +x".
std::vector<Step> parse_steps(const std::string& out, double& total) {
  std::vector<Step> steps;
  const std::regex step_re(
      R"(step\s+(\d+)\s+reward\s+([-+0-9.e]+)\s+progress\s+([-0-9.e]+)\s+P\(success\)\s+([-0-9.e]+))");
  const std::regex ret_re(R"(^return\s+([-+0-9.e]+))");
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, step_re)) {
      EXPECT_EQ(std::stoul(m[1]), steps.size() + 1) << line;
      steps.push_back({std::stod(m[2]), std::stod(m[3]), std::stod(m[4])});
    } else if (std::regex_search(line, m, ret_re)) {
      total = std::stod(m[1]);
    }
  }
  return steps;
}

TEST(StreamClient, ExampleAddsOneRewardPerStepFromARealServer) {
  const char* bin = std::getenv("ROBOMETER_BINARY");
  if (!bin) GTEST_SKIP() << "ROBOMETER_BINARY not set (run through ctest)";
  if (capture_command("python3 -c 'import requests'").code != 0)
    GTEST_SKIP() << "python3-requests not installed (Debian python3-requests, scripts/setup): skipped";
  robometer::test::TempDir dir;
  robometer::test::write_tiny_checkpoint(dir.path() / "ckpt");
  robometer::test::ServeProcess server(
      bin, {"--log-level", "warn", "serve", "--checkpoint", (dir.path() / "ckpt").string(), "--port", "0"},
      dir.path() / "serve.log");
  ASSERT_GT(server.port(), 0) << "serve did not start; log: " << (dir.path() / "serve.log");
  const std::string client = "python3 '" +
                             (robometer::test::source_dir() / "scripts/examples/stream_client.py").string() +
                             "' --url http://127.0.0.1:" + std::to_string(server.port()) + " --steps 6 2>&1";
  const auto first = capture_command(client);
  ASSERT_EQ(first.code, 0) << first.out;
  double total = std::nan("");
  const auto steps = parse_steps(first.out, total);
  ASSERT_GE(steps.size(), 1u) << first.out;
  ASSERT_LE(steps.size(), 6u) << first.out;
  double sum = 0, last = 0;
  for (const auto& s : steps) {
    EXPECT_GE(s.progress, 0.0);
    EXPECT_LE(s.progress, 1.0);
    EXPECT_GE(s.success, 0.0);
    EXPECT_LE(s.success, 1.0);
    sum += s.reward;
    last = s.progress;
  }
  // reward_mode delta: the rewards telescope to progress_T - progress_0 (the reset frame's).
  EXPECT_NEAR(total, sum, 1e-3) << first.out;
  EXPECT_LE(std::abs(sum - last), 1.0 + 1e-3) << first.out;

  // A second episode in a new session sees the same frames: the same rewards, to the digit.
  const auto second = capture_command(client);
  ASSERT_EQ(second.code, 0) << second.out;
  double total2 = 0;
  const auto steps2 = parse_steps(second.out, total2);
  ASSERT_EQ(steps2.size(), steps.size()) << second.out;
  for (size_t i = 0; i < steps.size(); ++i) EXPECT_DOUBLE_EQ(steps2[i].progress, steps[i].progress) << i;

  // The client's sessions are closed (DELETE) when it ends; both were served.
  const auto stats = capture_command("python3 -c \"import requests; print(requests.get('http://127.0.0.1:" +
                                     std::to_string(server.port()) + "/sessions').text)\"");
  ASSERT_EQ(stats.code, 0) << stats.out;
  EXPECT_NE(stats.out.find("\"sessions\":0"), std::string::npos) << stats.out;
  // reset() sends a frame too: steps + 1 frames per episode.
  EXPECT_NE(stats.out.find("\"frames_served\":" + std::to_string(2 * (steps.size() + 1))), std::string::npos)
      << stats.out;
}

}  // namespace
