// Progress reporting: duration formatting and plain-mode line cadence.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "robometer/train/progress_bar.h"

using namespace robometer::train;

TEST(ProgressBar, FormatDuration) {
  EXPECT_EQ(format_duration(7.4), "7s");
  EXPECT_EQ(format_duration(245), "4m05s");
  EXPECT_EQ(format_duration(3723), "1h02m03s");
  EXPECT_EQ(format_duration(-1), "?");
}

TEST(ProgressBar, PlainModePrintsEveryNSteps) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressBarOptions o;
    o.every_steps = 3;
    o.every_seconds = 0;  // steps only
    o.tty = 0;
    o.out = f;
    ProgressBar bar(10, 0, o);
    for (int s = 1; s <= 10; ++s) bar.update(s, "loss 1.0");
    bar.finish();
  }
  std::rewind(f);
  std::string text;
  char buf[512];
  int lines = 0;
  while (std::fgets(buf, sizeof(buf), f)) {
    text += buf;
    ++lines;
  }
  std::fclose(f);
  // steps 3, 6, 9 and the final line; no terminal control characters.
  EXPECT_EQ(lines, 4) << text;
  EXPECT_NE(text.find("step 3/10 (30.0%)"), std::string::npos) << text;
  EXPECT_NE(text.find("| loss 1.0"), std::string::npos);
  EXPECT_NE(text.find("step 10/10"), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
}
