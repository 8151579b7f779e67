#include <gtest/gtest.h>

#include "robometer/core/error.h"
#include "robometer/data/labels.h"
#include "robometer/data/sample.h"

using namespace robometer::data;

namespace {
Clip clip(int K, float g, float mask) {
  Clip c;
  std::vector<double> p(static_cast<size_t>(K), g);
  c.progress = at::full({K}, g, at::kFloat);
  c.progress_target = two_hot(p, kProgressBins);
  c.success = at::zeros({K});
  c.success_mask = at::ones({K});
  c.progress_mask = mask;
  return c;
}
PairSample pair(int K, float pref, float g) {
  PairSample s;
  s.a = clip(K, g, 1.f);
  s.b = clip(K, 0.f, 0.f);
  s.preference = pref;
  return s;
}
}  // namespace

TEST(Collate, StacksLabels) {
  Batch b = collate({pair(8, 1.f, 0.5f), pair(8, 0.f, 1.f)});
  EXPECT_EQ(b.size(), 2);
  EXPECT_EQ(b.progress_a.sizes(), (at::IntArrayRef{2, 8}));
  EXPECT_EQ(b.progress_target_a.sizes(), (at::IntArrayRef{2, 8, 10}));
  EXPECT_EQ(b.success_mask_b.sizes(), (at::IntArrayRef{2, 8}));
  EXPECT_FLOAT_EQ(b.preference[0].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(b.preference[1].item<float>(), 0.f);
  EXPECT_FLOAT_EQ(b.progress_a[1][3].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(b.progress_mask_a[0].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(b.progress_mask_b[0].item<float>(), 0.f);
}

TEST(Collate, MismatchedKIsAnError) {
  try {
    collate({pair(8, 1.f, 0.f), pair(4, 1.f, 0.f)});
    FAIL() << "expected Error";
  } catch (const robometer::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sample 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(collate({}), robometer::Error);
}
