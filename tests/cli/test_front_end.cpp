// The front end `robometer` (src/cli/front/main.cpp): `data stats` and `data index` run in a
// process that does not load LibTorch and print what robometer-full prints; every other command
// line reaches robometer-full unchanged (output, exit codes); a missing robometer-full is named.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>
#include <string>

#include "common/test_util.h"

namespace fs = std::filesystem;
using robometer::test::capture_command;
using robometer::test::run_robometer;
using robometer::test::TempDir;

namespace {

fs::path front_binary() { return fs::path(std::getenv("ROBOMETER_BINARY")); }
fs::path full_binary() { return front_binary().parent_path() / "robometer-full"; }

// `robometer-full ARGS`, run like run_robometer (from the source directory).
robometer::test::CommandResult run_full(const std::string& args) {
  return capture_command("cd '" + robometer::test::source_dir().string() + "' && '" + full_binary().string() +
                         "' " + args);
}

// Output with what legitimately differs between two runs removed: log timestamps, and the
// executable's name in usage lines (robometer-full run directly names itself).
std::string comparable(std::string out) {
  out = std::regex_replace(out, std::regex(R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\] )"), "[time] ");
  return std::regex_replace(out, std::regex("robometer-full"), "robometer");
}

}  // namespace

TEST(FrontEnd, DataStatsAndIndexRunWithoutLibTorchAndPrintWhatTheFullBinaryPrints) {
  TempDir dir;
  const std::string data = (dir / "synth").string();
  auto r = run_robometer("synth --out " + data +
                         " --episodes 12 --eval-episodes 2 --size 32 --min-frames 8 "
                         "--max-frames 12");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string manifest = data + "/train";
  ASSERT_TRUE(fs::exists(manifest + "/trajectories.jsonl")) << r.out;

  // The dynamic section names no LibTorch library: the loader never maps it for these commands.
  const auto needed = capture_command("readelf -d '" + front_binary().string() + "'");
  ASSERT_EQ(needed.code, 0) << needed.out;
  EXPECT_NE(needed.out.find("(NEEDED)"), std::string::npos) << needed.out;
  for (const char* lib : {"libtorch", "libc10", "libavcodec", "libgloo"})
    EXPECT_EQ(needed.out.find(lib), std::string::npos) << lib << " in\n" << needed.out;
  const auto full_needed = capture_command("readelf -d '" + full_binary().string() + "'");
  EXPECT_NE(full_needed.out.find("libtorch"), std::string::npos) << full_needed.out;

  // data index, then data stats from the index and from the JSONL: the same text as robometer-full.
  r = run_robometer("data index " + manifest);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("indexed 12 trajectories"), std::string::npos) << r.out;
  for (const char* policy : {"require", "off"}) {
    const auto front = run_robometer("data stats " + manifest + " --index " + policy);
    const auto full = run_full("data stats " + manifest + " --index " + policy);
    ASSERT_EQ(front.code, 0) << front.out;
    EXPECT_NE(front.out.find("12 trajectories"), std::string::npos) << front.out;
    EXPECT_EQ(comparable(front.out), comparable(full.out)) << policy;
  }
  // Errors: the same messages and exit codes (2 for usage/config errors, 1 for a bad manifest).
  for (const std::string& args :
       {std::string("data stats"), std::string("data stats ") + manifest + " --index maybe",
        std::string("data stats ") + data + "/missing",
        std::string("--log-level loud data index ") + manifest}) {
    const auto front = run_robometer(args), full = run_full(args);
    EXPECT_EQ(front.code, full.code) << args << "\n" << front.out << full.out;
    EXPECT_NE(front.code, 0) << args;
    EXPECT_EQ(comparable(front.out), comparable(full.out)) << args;
  }
}

TEST(FrontEnd, OtherCommandsReachTheFullBinaryUnchanged) {
  for (const std::string& args :
       {std::string("version"), std::string("--log-level warn version"), std::string("data validate"),
        std::string("train --no-such-flag"), std::string("--help")}) {
    const auto front = run_robometer(args), full = run_full(args);
    EXPECT_EQ(front.code, full.code) << args << "\n" << front.out;
    EXPECT_EQ(comparable(front.out), comparable(full.out)) << args;
  }
  EXPECT_EQ(run_robometer("version").out.rfind("robometer ", 0), 0u);
}

TEST(FrontEnd, AMissingFullBinaryIsNamed) {
  TempDir dir;
  const fs::path copy = dir / "robometer";
  fs::copy_file(front_binary(), copy);
  const auto r = capture_command("'" + copy.string() + "' version");
  EXPECT_EQ(r.code, 127) << r.out;
  EXPECT_NE(r.out.find((dir / "robometer-full").string()), std::string::npos) << r.out;
  // The commands the front end runs itself still work there.
  EXPECT_EQ(capture_command("'" + copy.string() + "' data stats --help").code, 0);
}
