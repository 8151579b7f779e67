// The web UI in a real browser: `robometer serve` with a tiny checkpoint and --data, headless
// Chromium driven over the DevTools protocol (tests/cli/web_ui_driver.mjs) uploads a video through
// the page's file input and scores it; the values the page shows must be `robometer score`'s for
// the same video. The dataset page's training pair is checked too. Screenshots are kept and their
// paths printed. Skips (with the reason) where chromium or node is missing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "common/serve_process.h"
#include "common/test_util.h"
#include "eval/eval_test_util.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using robometer::test::capture_command;
using robometer::test::ServeProcess;

// The driver prints one JSON line; anything else it says (stderr is merged) is shown, not parsed.
json driver_json(const std::string& out) {
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '{') return json::parse(line);
    if (!line.empty()) std::cout << "[ driver     ] " << line << std::endl;
  }
  ADD_FAILURE() << "the driver printed no JSON line:\n" << out;
  return json::object();
}

TEST(WebUi, BrowserUploadShowsTheScoresOfRobometerScore) {
  const char* bin = std::getenv("ROBOMETER_BINARY");
  if (!bin) GTEST_SKIP() << "ROBOMETER_BINARY not set (run through ctest)";
  if (capture_command("command -v chromium").code != 0)
    GTEST_SKIP() << "chromium not installed (Debian package `chromium`, scripts/setup): browser test skipped";
  if (capture_command(
          "node --experimental-websocket -e 'process.exit(typeof WebSocket === \"function\" ? 0 : 1)'")
          .code != 0)
    GTEST_SKIP() << "node with WebSocket (node >= 20) not available: browser test skipped";

  // Kept (not a TempDir) so that the screenshots outlive the test; printed below.
  const fs::path dir = fs::temp_directory_path() / ("robometer_web_ui_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string d = dir.string();
  auto synth = robometer::test::run_robometer("--log-level warn synth --out " + d +
                                              "/synth --episodes 4 --eval-episodes 3 --tasks 2");
  ASSERT_EQ(synth.code, 0) << synth.out;
  robometer::test::write_tiny_checkpoint(dir / "ckpt");
  const std::string video = d + "/synth/eval/videos/synth_eval_0000.mp4";
  const std::string task = "put the red block in the blue bowl";

  auto score =
      robometer::test::run_robometer("--log-level warn score --checkpoint " + d + "/ckpt --video " + video +
                                     " --task '" + task + "' --mode dense --out " + d + "/expected.json");
  ASSERT_EQ(score.code, 0) << score.out;
  std::ifstream ef(d + "/expected.json");
  const json expected = json::parse(ef);

  ServeProcess server(bin,
                      {"--log-level", "warn", "serve", "--checkpoint", d + "/ckpt", "--port", "0", "--data",
                       d + "/synth/eval"},
                      dir / "serve.log");
  ASSERT_GT(server.port(), 0) << "serve did not start; log: " << (dir / "serve.log");
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const std::string driver = "node --experimental-websocket '" +
                             (robometer::test::source_dir() / "tests/cli/web_ui_driver.mjs").string() + "' ";

  const std::string shot = d + "/reward_page.png";
  auto r = capture_command(driver + "reward " + base + "/ '" + video + "' '" + task + "' dense '" + shot +
                           "' 2>&1");
  ASSERT_EQ(r.code, 0) << r.out;
  const json page = driver_json(r.out);
  std::cout << "[ screenshot ] reward page: " << shot << std::endl;
  ASSERT_EQ(page["state"], "done") << page.dump();
  const auto& want_p = expected["progress"];
  const auto& want_s = expected["success"];
  const auto& want_f = expected["frame_indices"];
  ASSERT_EQ(page["values"].size(), want_p.size()) << page.dump();
  for (size_t i = 0; i < want_p.size(); ++i) {
    EXPECT_EQ(page["values"][i]["frame"], want_f[i]) << i;
    EXPECT_NEAR(page["values"][i]["progress"].get<double>(), want_p[i].get<double>(), 1e-5) << i;
    EXPECT_NEAR(page["values"][i]["success"].get<double>(), want_s[i].get<double>(), 1e-5) << i;
  }
  EXPECT_EQ(page["thumbs"], want_p.size());            // one frame per value in the strip
  EXPECT_EQ(page["curve_points"], 2 * want_p.size());  // progress + P(success), no ground truth
  EXPECT_NE(page["frame_info"].get<std::string>().find("progress"), std::string::npos);
  EXPECT_GT(fs::file_size(shot), 10000u);

  const std::string shot2 = d + "/dataset_page.png";
  auto v = capture_command(driver + "pair " + base + "/view 3 '" + shot2 + "' 2>&1");
  ASSERT_EQ(v.code, 0) << v.out;
  const json view = driver_json(v.out);
  std::cout << "[ screenshot ] dataset page: " << shot2 << std::endl;
  EXPECT_EQ(view["state"], "done") << view.dump();
  EXPECT_EQ(view["clip_images"], json({8, 8})) << view.dump();  // K = 8 frames per clip, both clips
  EXPECT_NE(view["text"].get<std::string>().find("strategy"), std::string::npos);
  EXPECT_NE(view["text"].get<std::string>().find("success mask"), std::string::npos);
  EXPECT_NE(view["sources"].get<std::string>().find("synth"), std::string::npos) << view.dump();
}

}  // namespace
