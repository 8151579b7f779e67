#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/io/atomic_file.h"

namespace {

namespace fs = std::filesystem;
using robometer::io::AtomicFileWriter;
using robometer::io::write_file_atomic;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(AtomicFile, WritesAndReplaces) {
  robometer::test::TempDir dir;
  const auto path = dir / "a.json";
  write_file_atomic(path.string(), "first");
  EXPECT_EQ(slurp(path), "first");
  write_file_atomic(path.string(), std::string("second\0with nul", 15));
  EXPECT_EQ(slurp(path), std::string("second\0with nul", 15));
  EXPECT_EQ(entries(dir.path()), 1u) << "no temp file left behind";
}

TEST(AtomicFile, NothingVisibleBeforeCommitAndTempInSameDirectory) {
  robometer::test::TempDir dir;
  const auto path = dir / "w.bin";
  AtomicFileWriter out(path.string());
  out.write("abc");
  out.write("def", 3);
  EXPECT_EQ(out.bytes_written(), 6u);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(fs::path(out.temp_path()).parent_path(), dir.path());
  EXPECT_TRUE(fs::exists(out.temp_path()));
  out.commit();
  EXPECT_EQ(slurp(path), "abcdef");
  EXPECT_EQ(entries(dir.path()), 1u);
  EXPECT_THROW(out.commit(), robometer::Error);
  EXPECT_THROW(out.write("x"), robometer::Error);
}

TEST(AtomicFile, AbandonedWriterKeepsOldFileAndRemovesTemp) {
  robometer::test::TempDir dir;
  const auto path = dir / "keep.txt";
  write_file_atomic(path.string(), "old");
  try {
    AtomicFileWriter out(path.string());
    out.write("new but never committed");
    throw std::runtime_error("simulated failure mid-write");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(slurp(path), "old");
  EXPECT_EQ(entries(dir.path()), 1u);
}

TEST(AtomicFile, FileModeFollowsUmask) {
  robometer::test::TempDir dir;
  const mode_t old = ::umask(022);
  write_file_atomic((dir / "m").string(), "x");
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "m").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST(AtomicFile, MissingDirectoryIsAnErrorNamingThePath) {
  robometer::test::TempDir dir;
  const auto path = dir / "no" / "such" / "f.txt";
  try {
    write_file_atomic(path.string(), "x");
    ADD_FAILURE();
  } catch (const robometer::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
}

TEST(AtomicFile, RelativePathInCurrentDirectory) {
  robometer::test::TempDir dir;
  const fs::path old = fs::current_path();
  fs::current_path(dir.path());
  write_file_atomic("rel.txt", "r");
  fs::current_path(old);
  EXPECT_EQ(slurp(dir / "rel.txt"), "r");
}

}  // namespace
