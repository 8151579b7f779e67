// Rank discovery: which process of which job we are, from the launcher's environment.
// Sources, in order: torchrun / `robometer launch` (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), then SLURM (SLURM_PROCID, SLURM_NTASKS,
// SLURM_LOCALID, first host of SLURM_JOB_NODELIST / SLURM_NODELIST), else a single process.
#pragma once
#include <functional>
#include <optional>
#include <string>

namespace robometer::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // "torchrun", "slurm" or "none"
  // torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT
  // (TORCHELASTIC_USE_AGENT_STORE=True): every rank connects as a client, under the key prefix
  // /worker/attempt_<TORCHELASTIC_RESTART_COUNT>, as torch.distributed does.
  bool agent_store = false;
  int restart_count = 0;
  bool distributed() const { return world_size > 1; }
};

// Reads variables through `getenv_fn` (nullopt = unset) so tests need not touch the real
// environment. Throws ConfigError naming the variable on a non-numeric or inconsistent value.
DistEnv read_dist_env(const std::function<std::optional<std::string>(const std::string&)>& getenv_fn);
DistEnv read_dist_env();  // from the process environment

// First host of a SLURM node list in compressed form: "node[01-04,07],gpu5" → "node01",
// "a-b1,c" → "a-b1". Throws ConfigError on an empty or malformed list.
std::string first_slurm_host(const std::string& nodelist);

}  // namespace robometer::dist
