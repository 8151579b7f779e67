// `robometer launch --nproc-per-node N [--nnodes M --node-rank R --master-addr H
//  --master-port P] -- <subcommand> [args]`: runs N ranks of this executable (see dist/launcher.h).
#include "robometer/cli/command.h"
#include "robometer/dist/launcher.h"

namespace robometer::cli {
namespace {

Registrar reg(
    "launch", "Run a subcommand on N local ranks (torchrun-style distributed launch)",
    [](CLI::App& sub, int& exit_code) {
      auto o = std::make_shared<dist::LaunchOptions>();
      auto cmd = std::make_shared<std::vector<std::string>>();
      sub.add_option("--nproc-per-node", o->nproc_per_node, "ranks on this node")->check(CLI::PositiveNumber);
      sub.add_option("--nnodes", o->nnodes, "number of nodes")->check(CLI::PositiveNumber);
      sub.add_option("--node-rank", o->node_rank, "this node's index (0..nnodes-1)");
      sub.add_option("--master-addr", o->master_addr, "rank 0's host");
      sub.add_option("--master-port", o->master_port, "rank 0's TCP port (0: pick a free one, single node)");
      sub.add_option("--grace", o->grace_s, "seconds between SIGTERM and SIGKILL when stopping ranks");
      sub.add_option("--program", o->executable,
                     "run this program instead of robometer (like torchrun --no-python)");
      sub.add_option("command", *cmd, "subcommand and its arguments (after --)")->required();
      sub.callback([o, cmd, &exit_code] {
        o->args = *cmd;
        exit_code = dist::launch(*o);
      });
    });

}  // namespace
}  // namespace robometer::cli
