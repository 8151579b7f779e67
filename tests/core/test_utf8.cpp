// UTF-8 validity as Unicode defines it (table 3-7, well-formed byte sequences), on the
// standard's boundary cases; printable_utf8 escapes exactly the ill-formed bytes.
#include <gtest/gtest.h>

#include "robometer/core/utf8.h"

namespace {

using robometer::invalid_utf8_offset;
using robometer::printable_utf8;
using robometer::utf8_problem;

TEST(Utf8, WellFormedSequencesPass) {
  for (const char* s :
       {"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\xA4\x96 robot",
        "\xED\x9F\xBF" /* U+D7FF */, "\xEE\x80\x80" /* U+E000 */, "\xF4\x8F\xBF\xBF" /* U+10FFFF */,
        "\xE0\xA0\x80" /* U+0800 */, "\xF0\x90\x80\x80" /* U+10000 */})
    EXPECT_EQ(invalid_utf8_offset(s), std::string::npos) << printable_utf8(s);
}

TEST(Utf8, IllFormedSequencesAreFoundAtTheirFirstByte) {
  const std::pair<std::string, size_t> cases[] = {
      {"\xFF", 0},
      {"ab\xFE", 2},
      {"\x80", 0},  // never valid / lone continuation
      {"\xC0\xAF", 0},
      {"\xC1\xBF", 0},  // overlong 2-byte
      {"\xE0\x9F\xBF", 0},
      {"\xF0\x8F\xBF\xBF", 0},  // overlong 3- and 4-byte
      {"x\xED\xA0\x80", 1},
      {"\xED\xBF\xBF", 0},  // surrogates U+D800, U+DFFF
      {"\xF4\x90\x80\x80", 0},
      {"\xF5\x80\x80\x80", 0},  // above U+10FFFF
      {"ok\xE2\x82", 2},
      {"\xC3", 0},
      {"\xE2\x28\xA1", 0},  // truncated, bad continuation
  };
  for (const auto& [s, at] : cases) EXPECT_EQ(invalid_utf8_offset(s), at) << printable_utf8(s);
}

TEST(Utf8, PrintableFormEscapesOnlyBadBytes) {
  EXPECT_EQ(printable_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(printable_utf8("a\xFF"
                           "b\xC3"),
            "a\\xffb\\xc3");
  EXPECT_EQ(printable_utf8("\xC0\xAF"), "\\xc0\\xaf");
  EXPECT_EQ(utf8_problem("fine"), "");
  EXPECT_EQ(utf8_problem("ab\xFF"), "is not valid UTF-8 (byte 0xff at offset 2)");
}

}  // namespace
