// XXH64 against the reference implementation's CLI (`xxhsum -H1`, Debian package xxhash) on
// random files of every tail length the algorithm distinguishes, one-shot and streamed.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "common/test_util.h"
#include "robometer/io/xxhash64.h"

namespace fs = std::filesystem;
namespace io = robometer::io;
using robometer::test::TempDir;

namespace {

std::string xxhsum(const fs::path& p) {
  // (its progress lines go to stderr, which capture_command would mix in)
  const auto r = robometer::test::capture_command("(xxhsum -H1 '" + p.string() + "' 2>/dev/null)");
  EXPECT_EQ(r.code, 0) << r.out;
  return r.out.substr(0, 16);
}

}  // namespace

TEST(Xxh64, MatchesTheReferenceCliForEveryTailLength) {
  if (robometer::test::capture_command("command -v xxhsum").code != 0)
    GTEST_SKIP() << "xxhsum not installed (scripts/setup installs package xxhash)";
  TempDir dir;
  std::mt19937 rng(7);
  for (size_t n : {0, 1, 3, 4, 7, 8, 15, 31, 32, 33, 63, 64, 100, 1000, (4 << 20) + 13}) {
    std::string bytes(n, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    const fs::path p = dir / ("f" + std::to_string(n));
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(n));
    const std::string want = xxhsum(p);
    EXPECT_EQ(io::xxh64_hex(io::xxh64(bytes.data(), n)), want) << n << " bytes";
    EXPECT_EQ(io::xxh64_hex(io::xxh64_file(p.string())), want) << n << " bytes, from the file";
    // Streamed in uneven pieces (crossing the 32-byte stripes at every offset).
    io::Xxh64 h;
    size_t at = 0, piece = 1;
    while (at < n) {
      const size_t k = std::min(piece, n - at);
      h.update(bytes.data() + at, k);
      at += k;
      piece = piece * 3 % 97 + 1;
    }
    EXPECT_EQ(io::xxh64_hex(h.digest()), want) << n << " bytes, streamed";
  }
}

TEST(Xxh64, UnreadableFileIsNamed) {
  robometer::test::expect_throw_contains([] { io::xxh64_file("/nonexistent/x.bin"); },
                                         {"/nonexistent/x.bin"});
}
