// Helpers shared by all test binaries: where the real-data fixtures live, scratch dirs.
#pragma once
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <random>
#include <string>

#include "robometer/core/remove_tree.h"

namespace robometer::test {

namespace fs = std::filesystem;

// ../shared next to the checkout (CI copies it there). Empty path when absent.
inline fs::path shared_dir() {
  if (const char* env = std::getenv("ROBOMETER_SHARED_DIR")) {
    if (fs::exists(env)) return fs::path(env);
  }
  fs::path p = fs::path(ROBOMETER_SOURCE_DIR) / ".." / "shared";
  return fs::exists(p) ? p : fs::path();
}

inline fs::path source_dir() { return fs::path(ROBOMETER_SOURCE_DIR); }

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() /
            ("robometer_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    robometer::remove_tree(path_.string(), ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// A shell command's exit code and its stdout and stderr together.
struct CommandResult {
  int code = -1;  // exit status, -1 when killed by a signal
  std::string out;
};

inline CommandResult capture_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// `robometer ARGS` ($ROBOMETER_BINARY, which tests/common/test_env.cpp sets), run from the source
// directory so that relative paths such as configs/tiny.yaml resolve.
inline CommandResult run_robometer(const std::string& args) {
  const char* bin = std::getenv("ROBOMETER_BINARY");
  return capture_command("cd '" + source_dir().string() + "' && '" + std::string(bin ? bin : "robometer") +
                         "' " + args);
}

// Whether the DuckDB oracle (node + .deps/node @duckdb/node-api) can run; `why` says what is missing.
inline bool duckdb_available(std::string& why) {
  if (std::system("command -v node >/dev/null 2>&1") != 0) {
    why = "node is not installed";
    return false;
  }
  if (!fs::exists(source_dir() / ".deps/node/node_modules/@duckdb/node-api")) {
    why = "@duckdb/node-api missing (scripts/deps-node)";
    return false;
  }
  return true;
}

// DuckDB writes the result of `select` to the Parquet file `out` (tests/data/write_parquet.mjs).
inline bool duckdb_write_parquet(const fs::path& out, const std::string& select) {
  std::string quoted;
  for (char c : select) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  const std::string cmd = "ROBOMETER_DUCKDB_MODULE='" +
                          (source_dir() / ".deps/node/node_modules/@duckdb/node-api/lib/index.js").string() +
                          "' node '" + (source_dir() / "tests/data/write_parquet.mjs").string() + "' '" +
                          out.string() + "' '" + quoted + "'";
  const int rc = std::system(cmd.c_str());
  if (rc != 0) ADD_FAILURE() << "DuckDB could not write " << out << " (" << rc << "): " << select;
  return rc == 0;
}

// fn() must throw a std::exception whose message contains every one of `parts`.
template <typename F>
void expect_throw_contains(F&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception (expected one mentioning " << *parts.begin() << ")";
  } catch (const std::exception& e) {
    const std::string what = e.what();
    for (const auto& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
  }
}

}  // namespace robometer::test

// Skips the current test when ../shared/data is missing (e.g. a checkout outside the workspace).
#define ROBOMETER_REQUIRE_SHARED_DATA()                                                  \
  do {                                                                                   \
    if (::robometer::test::shared_dir().empty())                                         \
      GTEST_SKIP() << "../shared (real robot fixtures) not found next to the checkout; " \
                      "set ROBOMETER_SHARED_DIR to run this test";                       \
  } while (0)
