// Multi-process tests: a driver test re-executes this test binary once per rank
// (/proc/self/exe --gtest_filter=DistWorker.<name>) with torchrun's environment and
// ROBOMETER_DIST_WORKER=1; worker tests skip unless that marker is set. Every run has an
// overall deadline after which stragglers are killed.
#pragma once
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.h"
#include "robometer/dist/launcher.h"

extern char** environ;

namespace robometer::test {

inline bool is_dist_worker() { return std::getenv("ROBOMETER_DIST_WORKER") != nullptr; }

#define ROBOMETER_DIST_WORKER_ONLY() \
  if (!::robometer::test::is_dist_worker()) GTEST_SKIP() << "runs only as a rank of a driver test"

inline int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : 0;
}

struct RankResult {
  int status = -1;  // waitpid status; -1 = killed at the deadline
  bool timed_out = false;
  std::string output;
  bool ok() const { return !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

// Runs DistWorker.<worker> on `world` ranks; extra env for every rank (it may replace
// MASTER_PORT etc.).
inline std::vector<RankResult> run_ranks(const std::string& worker, int world,
                                         const std::map<std::string, std::string>& extra = {},
                                         double deadline_s = 60) {
  TempDir dir;
  const int port = dist::pick_free_port();
  std::vector<std::string> argv_s{"/proc/self/exe", "--gtest_filter=DistWorker." + worker};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::vector<std::string>> envs(world);
  std::vector<std::vector<char*>> envps(world);
  std::vector<std::string> outs(world);
  for (int r = 0; r < world; ++r) {
    for (char** e = environ; *e; ++e) envs[r].emplace_back(*e);
    std::map<std::string, std::string> vars{{"ROBOMETER_DIST_WORKER", "1"},
                                            {"RANK", std::to_string(r)},
                                            {"LOCAL_RANK", std::to_string(r)},
                                            {"WORLD_SIZE", std::to_string(world)},
                                            {"LOCAL_WORLD_SIZE", std::to_string(world)},
                                            {"MASTER_ADDR", "127.0.0.1"},
                                            {"MASTER_PORT", std::to_string(port)},
                                            {"ROBOMETER_DIST_TMP", dir.path().string()}};
    for (const auto& [k, v] : extra) vars[k] = v;  // `extra` may replace the defaults
    for (const auto& [k, v] : vars) envs[r].push_back(k + "=" + v);
    for (auto& s : envs[r]) envps[r].push_back(s.data());
    envps[r].push_back(nullptr);
    outs[r] = (dir.path() / ("rank" + std::to_string(r) + ".log")).string();
  }
  std::vector<pid_t> pids(world, -1);
  for (int r = 0; r < world; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      FILE* f = std::fopen(outs[r].c_str(), "w");
      if (f) {
        dup2(fileno(f), 1);
        dup2(fileno(f), 2);
      }
      execve(argv[0], argv.data(), envps[r].data());
      _exit(127);
    }
    pids[r] = pid;
  }
  std::vector<RankResult> res(world);
  std::vector<bool> done(world, false);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(deadline_s * 1000));
  int left = world;
  while (left > 0) {
    for (int r = 0; r < world; ++r) {
      if (done[r]) continue;
      int st = 0;
      if (waitpid(pids[r], &st, WNOHANG) == pids[r]) {
        res[r].status = st;
        done[r] = true;
        --left;
      }
    }
    if (left > 0 && std::chrono::steady_clock::now() > deadline) {
      for (int r = 0; r < world; ++r) {
        if (done[r]) continue;
        kill(pids[r], SIGKILL);
        int st = 0;
        waitpid(pids[r], &st, 0);
        res[r].timed_out = true;
        done[r] = true;
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int r = 0; r < world; ++r) {
    std::ifstream f(outs[r]);
    std::stringstream ss;
    ss << f.rdbuf();
    res[r].output = ss.str();
  }
  return res;
}

inline void expect_all_ok(const std::vector<RankResult>& res) {
  for (size_t r = 0; r < res.size(); ++r) {
    EXPECT_TRUE(res[r].ok()) << "rank " << r << (res[r].timed_out ? " timed out" : " failed") << "; output:\n"
                             << res[r].output;
    // The worker test really ran (a filter that matches nothing also exits 0).
    EXPECT_NE(res[r].output.find("[  PASSED  ] 1 test."), std::string::npos)
        << "rank " << r << " did not run its worker test:\n"
        << res[r].output;
  }
}

}  // namespace robometer::test
