// README's Commands section as a newcomer would run it: every fenced block marked
// `sh readme-test` runs, in README order, from a fresh working directory that has the
// repository's configs/ (so `configs/tiny.yaml`, `runs/synth`, `runs/tiny` mean what README says).
// To stay short the test adds `--episodes 12 --eval-episodes 6` to `synth` and small-run
// overrides to `train` (overrides apply in order, so they win over README's values).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/test_util.h"

namespace {
namespace fs = std::filesystem;

// The commands of the `sh readme-test` blocks in the "## Commands" section, with backslash
// continuations joined; comment-only lines dropped.
std::vector<std::string> readme_test_commands(const std::string& readme) {
  std::vector<std::string> cmds;
  std::istringstream in(readme);
  std::string line, pending;
  bool in_section = false, in_block = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Commands";
    if (!in_section) continue;
    if (line.rfind("```", 0) == 0) {
      in_block = !in_block && line.find("readme-test") != std::string::npos;
      continue;
    }
    if (!in_block) continue;
    const auto first = line.find_first_not_of(' ');
    if (first == std::string::npos || line[first] == '#') continue;
    if (!line.empty() && line.back() == '\\') {
      pending += line.substr(0, line.size() - 1);
      continue;
    }
    cmds.push_back(pending + line);
    pending.clear();
  }
  return cmds;
}

std::string with_test_speedups(std::string cmd) {
  auto sub = [&](const std::string& name) { return cmd.rfind("robometer " + name + " ", 0) == 0; };
  // Shell comments end the command; the extra arguments go before them.
  const auto hash = cmd.find("  #");
  std::string comment = hash == std::string::npos ? "" : cmd.substr(hash);
  if (hash != std::string::npos) cmd = cmd.substr(0, hash);
  if (sub("synth")) cmd += " --episodes 12 --eval-episodes 6";
  if (sub("train"))
    cmd += " train.max_steps=3 train.batch_size=2 data.num_workers=1 output.tensorboard=false";
  return cmd + comment;
}

TEST(ReadmeCommands, EveryMarkedCommandRunsInOrderOnDemoData) {
  const char* bin = std::getenv("ROBOMETER_BINARY");
  if (!bin) GTEST_SKIP() << "ROBOMETER_BINARY not set (run through ctest)";
  std::ifstream f(robometer::test::source_dir() / "README.md");
  ASSERT_TRUE(f) << "README.md not found";
  std::stringstream readme;
  readme << f.rdbuf();
  const auto cmds = readme_test_commands(readme.str());
  // version, config x2, synth, data x2, train, eval x3, score, export, score of the export.
  ASSERT_GE(cmds.size(), 13u) << "README lost its `sh readme-test` blocks";

  robometer::test::TempDir work;
  fs::create_directory_symlink(robometer::test::source_dir() / "configs", work / "configs");
  for (const auto& readme_cmd : cmds) {
    ASSERT_EQ(readme_cmd.rfind("robometer ", 0), 0u) << "not a robometer command: " << readme_cmd;
    const std::string cmd = with_test_speedups(readme_cmd);
    const auto r =
        robometer::test::capture_command("cd '" + work.path().string() + "' && OMP_NUM_THREADS=1 '" + bin +
                                         "'" + cmd.substr(std::string("robometer").size()));
    ASSERT_EQ(r.code, 0) << "README command failed: " << readme_cmd << "\n(ran: " << cmd << ")\n" << r.out;
    if (readme_cmd.find("config print") != std::string::npos) {  // before synth: warned, not failed
      EXPECT_NE(r.out.find("warning: "), std::string::npos) << r.out;
    }
  }
  EXPECT_TRUE(fs::exists(work / "runs/tiny/eval/report.html"));
  EXPECT_TRUE(fs::exists(work / "runs/tiny/curve.png"));
  EXPECT_TRUE(fs::exists(work / "runs/tiny/export/config.json"));
}

}  // namespace
