// Rank discovery from torchrun / SLURM environments (no processes, no network).
#include <gtest/gtest.h>

#include <map>

#include "robometer/core/error.h"
#include "robometer/dist/env.h"

using robometer::ConfigError;
using robometer::dist::first_slurm_host;
using robometer::dist::read_dist_env;

namespace {

robometer::dist::DistEnv from(const std::map<std::string, std::string>& vars) {
  return read_dist_env([&](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

}  // namespace

TEST(DistEnv, NoVariablesIsOneProcess) {
  auto e = from({});
  EXPECT_EQ(e.source, "none");
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_FALSE(e.distributed());
}

TEST(DistEnv, Torchrun) {
  auto e = from({{"RANK", "5"},
                 {"WORLD_SIZE", "8"},
                 {"LOCAL_RANK", "1"},
                 {"LOCAL_WORLD_SIZE", "4"},
                 {"MASTER_ADDR", "10.0.0.7"},
                 {"MASTER_PORT", "12345"}});
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 4);
  EXPECT_EQ(e.master_addr, "10.0.0.7");
  EXPECT_EQ(e.master_port, 12345);
  EXPECT_TRUE(e.distributed());
}

TEST(DistEnv, TorchrunDefaults) {
  auto e = from({{"RANK", "1"}, {"WORLD_SIZE", "2"}});
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.master_addr, "127.0.0.1");
  EXPECT_EQ(e.master_port, 29500);
}

TEST(DistEnv, Slurm) {
  auto e = from({{"SLURM_PROCID", "3"},
                 {"SLURM_NTASKS", "16"},
                 {"SLURM_LOCALID", "3"},
                 {"SLURM_JOB_NODELIST", "gpu-node[07-10,12],login1"}});
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.local_rank, 3);
  EXPECT_EQ(e.master_addr, "gpu-node07");
  EXPECT_EQ(e.master_port, 29500);
  // SLURM_NODELIST is the fallback; MASTER_ADDR/PORT win when set.
  e = from({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NODELIST", "a1,b2"}});
  EXPECT_EQ(e.master_addr, "a1");
  e = from({{"SLURM_PROCID", "0"},
            {"SLURM_NTASKS", "2"},
            {"SLURM_NODELIST", "a1"},
            {"MASTER_ADDR", "head"},
            {"MASTER_PORT", "2000"}});
  EXPECT_EQ(e.master_addr, "head");
  EXPECT_EQ(e.master_port, 2000);
}

TEST(DistEnv, TorchrunWinsOverSlurm) {
  auto e = from({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "9"}, {"SLURM_NTASKS", "32"}});
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_EQ(e.rank, 1);
}

TEST(DistEnv, SlurmNodeList) {
  EXPECT_EQ(first_slurm_host("node[01-04,07],gpu5"), "node01");
  EXPECT_EQ(first_slurm_host("gpu5,node[01-04]"), "gpu5");
  EXPECT_EQ(first_slurm_host("node[3,1]"), "node3");
  EXPECT_EQ(first_slurm_host("single"), "single");
  EXPECT_EQ(first_slurm_host("a-b1.cluster,c"), "a-b1.cluster");
  EXPECT_THROW(first_slurm_host(""), ConfigError);
  EXPECT_THROW(first_slurm_host("node[01-04"), ConfigError);
  EXPECT_THROW(first_slurm_host("node[]"), ConfigError);
  EXPECT_THROW(first_slurm_host("[01-02]"), ConfigError);
  EXPECT_THROW(first_slurm_host("node[x-y]"), ConfigError);
}

TEST(DistEnv, InconsistentEnvironmentNamesTheVariable) {
  auto expect_error = [](const std::map<std::string, std::string>& vars, const std::string& needle) {
    try {
      from(vars);
      FAIL() << "no error; expected one mentioning " << needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "RANK=2");
  expect_error({{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK='x'");
  expect_error({{"RANK", "1"}, {"WORLD_SIZE", "2a"}}, "WORLD_SIZE='2a'");
  expect_error({{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "RANK='-1'");
  expect_error({{"RANK", "0"}}, "RANK and WORLD_SIZE");
  expect_error({{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE");
  expect_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT");
  expect_error({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"}},
               "LOCAL_RANK=3");
  expect_error({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "4"}, {"SLURM_NODELIST", "n1"}}, "SLURM_PROCID=4");
}

TEST(DistEnv, TorchrunAgentStore) {
  const std::map<std::string, std::string> base{{"RANK", "0"}, {"WORLD_SIZE", "2"}};
  EXPECT_FALSE(from(base).agent_store);  // robometer launch: rank 0 serves the store
  auto vars = base;
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "True";
  vars["TORCHELASTIC_RESTART_COUNT"] = "3";
  auto e = from(vars);
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.restart_count, 3);
  vars["TORCHELASTIC_USE_AGENT_STORE"] = "False";
  EXPECT_FALSE(from(vars).agent_store);
  vars["TORCHELASTIC_RESTART_COUNT"] = "x";
  EXPECT_THROW(from(vars), ConfigError);
}
