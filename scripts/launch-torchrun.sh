#!/usr/bin/env bash
# Data-parallel c3 train on the GPUs of one machine, launched by torchrun (one process per GPU).
#   scripts/launch-torchrun.sh NGPUS [c3 train options...]
# e.g. scripts/launch-torchrun.sh 8 --config configs/paper-c3-32.json -o runs/c3-32 --set optim.zero_stage=2
# torchrun exports RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, which c3 reads; rank
# 0 logs and writes checkpoints. torchrun restarts every worker when one fails (--max-restarts):
# c3 resumes from the newest checkpoint in the output folder, so a restart loses at most
# train.save_every steps. Check the per-GPU memory first with: build/c3 train --dry-run ...
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 NGPUS [c3 train options...]" >&2; exit 2; }
ngpus=$1
shift
c3=${C3:-$(dirname "$0")/../build/c3}
exec torchrun --standalone --nproc-per-node="$ngpus" --max-restarts="${MAX_RESTARTS:-3}" --no-python \
  "$c3" --device cuda train "$@"
