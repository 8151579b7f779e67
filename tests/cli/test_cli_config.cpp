// Runs the real `robometer` binary: exit codes and messages of `config validate|print`.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/test_util.h"

using robometer::test::TempDir;

namespace {

using Run = robometer::test::CommandResult;

Run run(const std::string& args) { return robometer::test::run_robometer(args); }

}  // namespace

TEST(CliConfig, ValidateShippedTinyConfig) {
  const auto r = run("config validate configs/tiny.yaml data.train=[] data.eval=[]");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("ok (3 file(s)"), std::string::npos) << r.out;  // tiny, base, sources table
}

TEST(CliConfig, BadConfigsExitWithCode2AndFileLine) {
  TempDir d;
  const auto bad = (d / "bad.yaml").string();
  std::ofstream(bad) << "train:\n  lr: 0.1\n  warmup: 3\n";
  auto r = run("config validate " + bad);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("bad.yaml:3: unknown key 'train.warmup'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("did you mean"), std::string::npos) << r.out;

  r = run("config validate configs/tiny.yaml data.train=[] data.eval=[] train.lr=abc");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("train.lr: expected a number, got 'abc'"), std::string::npos) << r.out;

  r = run("config validate configs/tiny.yaml data.train=[] data.eval=[] train.nope=1");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown key 'train.nope'"), std::string::npos) << r.out;

  r = run("config validate configs/tiny.yaml data.train=[] data.eval=[] train.warmup_ratio=2");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("out of range"), std::string::npos) << r.out;

  std::ofstream(d / "defs.yaml") << "defaults: [missing_base.yaml]\n";
  r = run("config validate " + (d / "defs.yaml").string());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("defs.yaml:1: defaults:"), std::string::npos) << r.out;
}

TEST(CliConfig, PrintShowsResolvedValues) {
  const auto r = run("config print configs/tiny.yaml data.train=[] data.eval=[] train.max_steps=7");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("max_steps: 7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("weight_decay: 0.01"), std::string::npos) << r.out;  // from base.yaml
}

// The 4B recipe's resolved config lists the original's per-source tables (shipped in
// configs/sources/robometer_original.yaml from dataset_success_cutoff.txt / dataset_category.py)
// and the released checkpoint's mixing.
TEST(CliConfig, PrintListsTheShippedPerSourceTables) {
  const auto r = run("config print configs/robometer_4b.yaml data.train=[] data.eval=[]");
  EXPECT_EQ(r.code, 0) << r.out;
  for (const char* want :
       {"oxe_droid: 0.95", "oxe_berkeley_rpt_converted_externally_to_rlds: 0.76",
        "oxe_nyu_rot_dataset_converted_externally_to_rlds: 0.7", "oxe_bc_z: preference_only",
        "roboarena: preference_only+suboptimal_fail", "soar_rfm: suboptimal_fail", "mixing: strategy_first",
        "partial_success_progress_match: roboreward", "protocol: original"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
}

TEST(CliConfig, EveryCommandHasHelp) {
  auto r = run("--help");
  EXPECT_EQ(r.code, 0);
  // Every listed subcommand answers --help with exit 0.
  std::string line;
  std::istringstream in(r.out);
  bool in_subcommands = false;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.rfind("Subcommands:", 0) == 0) {
      in_subcommands = true;
      continue;
    }
    if (!in_subcommands || line.size() < 3 || line[0] != ' ') continue;
    std::istringstream words(line);
    std::string name;
    words >> name;
    const auto h = run(name + " --help");
    EXPECT_EQ(h.code, 0) << name << ": " << h.out;
    ++n;
  }
  EXPECT_GE(n, 3);
}

// Before scripts/demo has rendered runs/synth, the shipped config names data that does not exist
// yet: print and validate warn about it (naming the key and path); validate --strict fails.
TEST(CliConfig, MissingDataPathsAreWarningsUnlessStrict) {
  const std::string missing =
      "'data.train=[{path: /no/such/train_dir}]' 'data.eval=[{path: /no/such/eval_dir}]'";
  auto r = run("config print configs/tiny.yaml " + missing);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("warning: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("data.train[0].path: path '/no/such/train_dir' does not exist"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("data.eval[0].path: path '/no/such/eval_dir' does not exist"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("max_steps: 2000"), std::string::npos) << r.out;  // the config is still printed

  r = run("config validate configs/tiny.yaml " + missing);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("ok with warnings"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/no/such/train_dir"), std::string::npos) << r.out;

  r = run("config validate --strict configs/tiny.yaml " + missing);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("data.train[0].path: path '/no/such/train_dir' does not exist"), std::string::npos)
      << r.out;

  // Other errors stay errors without --strict.
  r = run("config validate configs/tiny.yaml " + missing + " train.warmup_ratio=2");
  EXPECT_EQ(r.code, 2) << r.out;
}
