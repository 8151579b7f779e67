// eval/report.h: the figures and report.html `robometer eval --out` writes, from a handmade
// result whose best / median / worst trajectories are known by construction.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/test_util.h"
#include "robometer/eval/report.h"
#include "robometer/plot/charts.h"

namespace robometer::eval {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

// Width and height from a PNG's IHDR chunk; {0, 0} when the signature or chunk is wrong.
std::pair<uint32_t, uint32_t> png_size(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  unsigned char h[24] = {};
  in.read(reinterpret_cast<char*>(h), 24);
  const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!in || std::memcmp(h, sig, 8) != 0 || std::memcmp(h + 12, "IHDR", 4) != 0) return {0, 0};
  auto be = [&](int o) {
    return (uint32_t{h[o]} << 24) | (uint32_t{h[o + 1]} << 16) | (uint32_t{h[o + 2]} << 8) | h[o + 3];
  };
  return {be(16), be(20)};
}

json trajectory(const std::string& id, const std::string& task, const std::string& quality,
                std::vector<double> gt, std::vector<double> pred, double final_progress) {
  std::vector<int64_t> ends;
  for (size_t i = 0; i < gt.size(); ++i) ends.push_back(static_cast<int64_t>(i * 7));
  return {{"id", id},
          {"task", task},
          {"data_source", "lab/arm"},
          {"quality", quality},
          {"gt_progress", gt},
          {"pred_progress", pred},
          {"pred_success", pred},
          {"prefix_ends", ends},
          {"final_progress", final_progress},
          {"final_success", 0.5}};
}

TEST(EvalReport, WritesFiguresOfTheExpectedSizeAndAnHtmlThatShowsThem) {
  if (!plot::cairo_available()) GTEST_SKIP() << "built without Cairo";
  const std::vector<double> gt = {0.0, 0.25, 0.5, 0.75, 1.0};
  json r;
  r["model"] = "handmade";
  r["trajectories"] = {
      trajectory("perfect", "stack", "successful", gt, {0.1, 0.3, 0.5, 0.7, 0.9}, 0.9),
      trajectory("noisy", "stack", "successful", gt, {0.2, 0.1, 0.6, 0.3, 0.8}, 0.8),
      trajectory("backwards", "open drawer", "successful", gt, {0.9, 0.7, 0.5, 0.3, 0.1}, 0.1),
      trajectory("dropped", "open drawer", "failure", gt, {0.1, 0.2, 0.2, 0.1, 0.1}, 0.1)};
  r["by_data_source"]["lab/arm"]["voc"] = {{"pearson", 0.3}};
  r["overall"]["policy_ranking"]["kendall_tau_a"] = 0.5;
  r["overall"]["confusion"] = {
      {"tasks", {"open drawer", "stack"}}, {"matrix", {{0.7, 0.2}, {0.1, 0.9}}}, {"diagonal_score", 0.8}};
  r["protocol"] = {{"frames", 8}};
  const std::string md = "| data source | n |\n|---|---:|\n| lab/arm | 4 |\n| **overall** | 4 |\n";

  test::TempDir dir;
  const ReportFiles f = write_eval_report(r, md, dir.path().string());
  const std::vector<std::string> expect = {"voc_lab_arm.png",  "reward_best.png", "reward_median.png",
                                           "reward_worst.png", "confusion.png",   "policy_ranking.png"};
  EXPECT_EQ(f.figures, expect);
  std::ifstream in(f.html);
  std::stringstream html;
  html << in.rdbuf();
  for (const auto& name : expect) {
    const auto size = png_size(dir / name);
    if (name == "confusion.png")
      EXPECT_EQ(size, (std::pair<uint32_t, uint32_t>(plot::kHeatmapWidth, plot::kHeatmapHeight)));
    else
      EXPECT_EQ(size, (std::pair<uint32_t, uint32_t>(plot::kChartWidth, plot::kChartHeight))) << name;
    EXPECT_NE(html.str().find("<img src=\"" + name + "\""), std::string::npos) << name;
  }
  // r = 1 (perfect), r ≈ 0.76 (noisy), r = -1 (backwards); the failure is not ranked.
  EXPECT_NE(html.str().find("best trajectory by VOC: perfect"), std::string::npos) << html.str();
  EXPECT_NE(html.str().find("median trajectory by VOC: noisy"), std::string::npos);
  EXPECT_NE(html.str().find("worst trajectory by VOC: backwards"), std::string::npos);
  EXPECT_NE(html.str().find("<td><b>overall</b></td>"), std::string::npos);  // the metrics table
  EXPECT_NE(html.str().find("lab/arm"), std::string::npos);

  // PIL (a real PNG decoder) opens every figure at that size.
  if (test::capture_command("python3 -c 'import PIL'").code == 0)
    for (const auto& name : expect) {
      const auto out = test::capture_command("python3 -c \"from PIL import Image; im = Image.open('" +
                                             (dir / name).string() + "'); im.load(); print(im.size)\"");
      const auto size = png_size(dir / name);
      EXPECT_EQ(out.code, 0) << out.out;
      EXPECT_NE(out.out.find("(" + std::to_string(size.first) + ", " + std::to_string(size.second) + ")"),
                std::string::npos)
          << out.out;
    }
}

TEST(EvalReport, WithoutTrajectoriesOrTasksItSaysWhatIsMissing) {
  test::TempDir dir;
  json r;
  r["overall"]["policy_ranking"]["kendall_tau_a"] = nullptr;
  const ReportFiles f = write_eval_report(r, "| data source | n |\n", dir.path().string());
  EXPECT_TRUE(f.figures.empty());
  EXPECT_TRUE(fs::exists(f.html));
  std::string notes;
  for (const auto& n : f.notes) notes += n + "\n";
  EXPECT_NE(notes.find("no per-trajectory scores"), std::string::npos) << notes;
  EXPECT_NE(notes.find("no confusion matrix"), std::string::npos) << notes;
}

}  // namespace
}  // namespace robometer::eval
