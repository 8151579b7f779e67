// build_model reads the heads' settings from the "robometer" object of config.json.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <regex>

#include "eval_test_util.h"
#include "robometer/core/error.h"

using namespace robometer;

namespace {

std::string tiny_json_with(const std::string& robometer_section) {
  std::ifstream in(test::source_dir() / "configs/models/tiny.json");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return std::regex_replace(s, std::regex(R"("robometer": \{[^}]*\})"),
                            "\"robometer\": " + robometer_section);
}

model::ModelBundle build_with(const test::TempDir& dir, const std::string& section) {
  const auto path = dir / "config.json";
  std::ofstream(path) << tiny_json_with(section);
  auto cfg = test::tiny_run_config();
  cfg.model.config_json = path.string();
  return model::build_model(cfg.model, at::kCPU, 7);
}

}  // namespace

TEST(ModelFactory, HeadSettingsComeFromConfigJson) {
  test::TempDir dir;
  auto b = build_with(dir, R"({"progress_bins": 5, "head_dropout": 0.0})");
  EXPECT_EQ(b.config.progress_bins, 5);
  EXPECT_EQ(b.config.head_dropout, 0.0);
  // No dropout: two training-mode forwards of the heads agree exactly.
  b.model->train();
  auto h = torch::randn({2, 6, b.config.backbone.text.hidden_size});
  auto pos = torch::tensor({1, 3, 2, 4}, torch::kLong).view({2, 2});
  auto pref = torch::tensor({5, 5}, torch::kLong);
  auto x = b.model->heads(h, pos, pref), y = b.model->heads(h, pos, pref);
  EXPECT_EQ(x.progress_logits.size(-1), 5);
  EXPECT_TRUE(x.preference_logit.equal(y.preference_logit));
  auto d = build_with(dir, R"({"head_dropout": 0.5})");
  EXPECT_EQ(d.config.head_dropout, 0.5);
  d.model->train();
  auto u = d.model->heads(h, pos, pref), v = d.model->heads(h, pos, pref);
  EXPECT_FALSE(u.progress_logits.equal(v.progress_logits)) << "dropout 0.5 must change training outputs";
}

TEST(ModelFactory, BadHeadSettingsNameTheFileAndKey) {
  test::TempDir dir;
  for (const auto& [section, needle] : std::vector<std::pair<std::string, std::string>>{
           {R"({"head_dropout": 1.5})", "robometer.head_dropout"},
           {R"({"progress_bins": 0})", "robometer.progress_bins"},
           {R"({"progress_bin": 10})", "robometer.progress_bin: unknown key"}}) {
    try {
      build_with(dir, section);
      ADD_FAILURE() << section << " was accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
    }
  }
}
