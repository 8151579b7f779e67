#!/bin/bash
# Multi-node training with PyTorch's torchrun as the launcher (e.g. on clusters whose tooling
# expects it): torchrun runs the C++ binary directly (--no-python) with RANK, LOCAL_RANK,
# WORLD_SIZE, MASTER_ADDR/MASTER_PORT; when its agent already serves the store
# (TORCHELASTIC_USE_AGENT_STORE=True) every rank connects to it as torch.distributed does.
# On each of NNODES machines (NODE_RANK 0..NNODES-1, MASTER_ADDR = node 0's address):
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 scripts/examples/torchrun_train.sh
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 scripts/examples/torchrun_train.sh
# Without torchrun, `robometer launch` takes the same arguments:
#   robometer launch --nnodes 2 --node-rank 0 --nproc-per-node 8 --master-addr 10.0.0.1 \
#     --master-port 29500 -- train configs/robometer_4b.yaml dist.shard=gradients
# RUN_DIR must be on a filesystem every node sees (only global rank 0 writes there).
set -euo pipefail
ROBOMETER=${ROBOMETER:-$PWD/build-gpu/robometer}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
NPROC=${NPROC:-8}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
RUN_DIR=${RUN_DIR:-$PWD/runs/robometer_4b}

exec torchrun --nnodes "$NNODES" --node-rank "$NODE_RANK" --nproc-per-node "$NPROC" \
  --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" --no-python \
  "$ROBOMETER" train configs/robometer_4b.yaml dist.shard=gradients \
  output.run_dir="$RUN_DIR" --resume auto --no-progress "$@"
