#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/test_util.h"
#include "robometer/core/error.h"
#include "robometer/core/remove_tree.h"

namespace fs = std::filesystem;

TEST(RemoveTree, RemovesNestedDirectoriesButNotWhatLinksPointTo) {
  robometer::test::TempDir dir;
  const fs::path outside = dir / "outside.txt";
  std::ofstream(outside) << "keep me";
  const fs::path root = dir / "tree";
  fs::create_directories(root / "a" / "b");
  std::ofstream(root / "a" / "b" / "f.bin") << "x";
  std::ofstream(root / "top.txt") << "y";
  fs::create_symlink(outside, root / "a" / "link");
  fs::create_directory_symlink(dir.path(), root / "dirlink");  // must not be followed
  std::error_code ec;
  // tree, a, b, f.bin, top.txt, link, dirlink
  EXPECT_EQ(robometer::remove_tree(root.string(), ec), 7u);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_FALSE(fs::exists(root));
  EXPECT_TRUE(fs::exists(outside));
  EXPECT_TRUE(fs::exists(dir / "outside.txt"));
}

TEST(RemoveTree, MissingPathIsNothingAndAFileIsOneEntry) {
  robometer::test::TempDir dir;
  std::error_code ec;
  EXPECT_EQ(robometer::remove_tree((dir / "absent").string(), ec), 0u);
  EXPECT_FALSE(ec);
  std::ofstream(dir / "f") << "z";
  EXPECT_EQ(robometer::remove_tree((dir / "f").string()), 1u);
  EXPECT_FALSE(fs::exists(dir / "f"));
}
