// `robometer launch`: a small torchrun. Spawns one process per local rank running the same
// executable with torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, GROUP_RANK), then supervises them:
//  - SIGINT / SIGTERM to the launcher is forwarded to every rank (the trainer checkpoints);
//  - the first rank to exit non-zero or by a signal stops the others (SIGTERM, then SIGKILL
//    after the grace period) and the launcher fails naming that rank and its status;
//  - exit 0 when every rank exits 0.
#pragma once
#include <string>
#include <vector>

namespace robometer::dist {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;  // 0: pick a free port (single node only)
  std::string executable = "/proc/self/exe";
  std::vector<std::string> args;  // the subcommand and its arguments
  double grace_s = 10;            // SIGTERM → SIGKILL
};

// Returns the launcher's exit status (0 all ranks succeeded, 1 otherwise, 128+sig when
// interrupted and some rank did not exit 0). Throws ConfigError on bad options.
int launch(const LaunchOptions& opts);

// A TCP port that was free a moment ago (bind to port 0 on 127.0.0.1).
int pick_free_port();

}  // namespace robometer::dist
