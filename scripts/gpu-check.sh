#!/usr/bin/env bash
# The GPU check: one command for a lent GPU machine (python3 with CUDA PyTorch and transformers; no
# registry: the Debian packages travel in .gpu-debs/, see scripts/gpu/fetch-debs.sh). In order:
#   1. builds c3 and what the check needs against that Python's torch (scripts/gpu/build.sh);
#   2. the CUDA tests (model and generation in fp32 and bf16), and `c3 train` steps on the device
#      through a one-rank process group (NCCL; ZeRO-2), then as two ranks sharing it (Gloo; ZeRO-2
#      with gradient accumulation, so the reducer runs with CUDA streams);
#   3. parity at the paper's geometry with random weights (Qwen2.5-1.5B encoder, 3B decoder, N 32):
#      c3 against HF transformers (SDPA) in fp32 with TF32 off and in bf16 (scripts/gpu/parity.py);
#   4. speed and memory side by side with HF on the same checkpoint (bench/vs_hf.py --model): the
#      training step at the authors' settings (tokens/s, MFU against a measured bf16 matmul peak),
#      the largest micro-batch that trains, compress, reconstruct at batch 1 and 32, batch-1 decode
#      against the memory floor, peak memory;
#   5. writes OUTDIR/report.md and report.json and prints the table last (scripts/gpu/report.py).
#   scripts/gpu-check.sh OUTDIR              on the GPU machine (at most 9 min; the build is the most)
#   scripts/gpu-check.sh OUTDIR --dry-run    the same steps on the CPU at tiny sizes, with the
#                                            existing build (BUILD_DIR, default build); CI runs it
# Exit 1 when a step fails or fp32 parity misses its bound; the report says which.
set -euo pipefail
cd "$(dirname "$0")/.."
out="" dry=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "gpu-check: unknown option $arg" >&2; exit 2 ;;
    *) out=$arg ;;
  esac
done
[ -n "$out" ] || { echo "usage: scripts/gpu-check.sh OUTDIR [--dry-run]" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/c3-gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
test_binaries=(test_model test_infer)  # the model, and decoding (the CUDA graph's token step)
targets=(c3 c3_hf_probe "${test_binaries[@]}" bench_c3_worker)
if [ $dry -eq 1 ]; then
  build=${BUILD_DIR:-build} python=${C3_PYTHON:-.venv/bin/python} device=cpu geometry=tiny max_new=20 filter='*cpu*'
  speed=(--quick)
else
  build=${BUILD_DIR:-build-gpu} python=${C3_PYTHON:-python3} device=cuda geometry=paper max_new=200
  filter='*cuda*' speed=()
fi
export LD_LIBRARY_PATH="${C3_DEPS:-/opt/c3deps}/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
status=0
step() { echo "gpu-check: $*" >&2; }
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

step "1/5 build ($build, torch of $python)"
start=$SECONDS
if [ $dry -eq 1 ]; then
  cmake --build "$build" --target "${targets[@]}" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
else
  bash scripts/gpu/build.sh "$build" "$python" "${targets[@]}" >"$work/build.log" 2>&1 ||
    { tail -20 "$work/build.log" >&2; cp "$work/build.log" "$out/build.log"; exit 1; }
fi
echo "{\"seconds\": $((SECONDS - start)), \"device\": \"$device\", \"build_dir\": \"$build\"}" >"$out/build.json"

step "2/5 device tests (${test_binaries[*]} $filter) and c3 train on $device"
for t in "${test_binaries[@]}"; do
  "$build/tests/$t" --gtest_filter="$filter" --gtest_output="json:$work/$t.json" >"$work/$t.log" 2>&1 ||
    { status=1; grep -E "FAILED|Failure" "$work/$t.log" | head -20 >&2; }
done
"$python" - "$out/tests.json" "${test_binaries[@]/#/$work/}" <<'PY'
import json, sys
runs = [json.load(open(f + ".json")) for f in sys.argv[2:]]
json.dump({k: sum(r.get(k, 0) for r in runs) for k in ("tests", "failures", "disabled", "errors")}, open(sys.argv[1], "w"))
PY
"$python" - "$work" <<'PY'
import json, random, sys
random.seed(0)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
lines = [" ".join(random.choice(words) for _ in range(12)) for _ in range(300)]
open(sys.argv[1] + "/text.txt", "w").write("\n".join(lines) + "\n")
open(sys.argv[1] + "/train.jsonl", "w").write("".join(json.dumps({"text": t}) + "\n" for t in lines[:32]))
PY
# As torchrun --nproc-per-node 1 starts it: a one-rank process group, NCCL on CUDA (Gloo on the CPU).
backend=$([ "$device" = cuda ] && echo nccl || echo gloo)
port=$(free_port)
train_start=$SECONDS
if "$build/c3" --log-level warn tokenizer train --input "$work/text.txt" -o "$work/tok" --vocab-size 300 2>"$work/train.log" &&
  RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
  "$build/c3" --device "$device" train --encoder preset:tiny --decoder preset:tiny \
    --tokenizer "$work/tok" --data "$work/train.jsonl" -o "$work/run" --latent-tokens 4 --batch-size 8 \
    --grad-accum 1 --steps 3 --set train.eval_every=0 --set data.validation_samples=2 --set optim.zero_stage=2 \
    2>>"$work/train.log" && grep -q "data parallel: $backend, rank 0 of 1" "$work/train.log"; then
  echo "{\"steps\": 3, \"seconds\": $((SECONDS - train_start)), \"backend\": \"$backend\", \"ok\": true}" >"$out/train.json"
else
  status=1; tail -5 "$work/train.log" >&2
  echo "{\"steps\": 3, \"backend\": \"$backend\", \"ok\": false}" >"$out/train.json"
fi
# Two ranks on the one device, ZeRO-2 with 2 micro-batches each, over Gloo (NCCL refuses two ranks
# on one GPU; Gloo takes CUDA tensors): the gradient reducer's buckets and streams and the
# per-micro-batch sums run as they do on several GPUs. Both ranks are local rank 0 (two "nodes").
port=$(free_port)
train_start=$SECONDS
pids=()
for rank in 0 1; do
  RANK=$rank WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    "$build/c3" --device "$device" train --encoder preset:tiny --decoder preset:tiny \
    --tokenizer "$work/tok" --data "$work/train.jsonl" -o "$work/run2" --latent-tokens 4 --batch-size 4 \
    --grad-accum 2 --steps 3 --set train.eval_every=0 --set data.validation_samples=2 --set optim.zero_stage=2 \
    --set train.dist_backend=gloo --set train.dist_timeout=120 2>"$work/train2-$rank.log" &
  pids+=($!)
done
two_ok=true
for pid in "${pids[@]}"; do wait "$pid" || two_ok=false; done
grep -q "data parallel: gloo, rank 0 of 2" "$work/train2-0.log" || two_ok=false
$two_ok || { status=1; tail -5 "$work/train2-0.log" "$work/train2-1.log" >&2; }
echo "{\"steps\": 3, \"seconds\": $((SECONDS - train_start)), \"ranks\": 2, \"grad_accum\": 2, \"backend\": \"gloo\", \"ok\": $two_ok}" \
  >"$out/train2.json"

step "3/5 parity with HF transformers ($geometry geometry on $device)"
"$python" scripts/gpu/parity.py --probe "$build/c3_hf_probe" --device "$device" --geometry "$geometry" \
  --max-new "$max_new" --work "$work" --keep-model "$work/model" --json "$out/parity.json" || status=1

step "4/5 speed and memory against HF ($geometry geometry on $device)"
if [ -f "$work/model/config.json" ]; then
  PYTHONUNBUFFERED=1 "$python" bench/vs_hf.py --device "$device" --model "$work/model" --build "$build" "${speed[@]}" \
    --json "$out/speed.json" >"$work/speed.log" 2>&1 || { status=1; tail -20 "$work/speed.log" >&2; }
else
  status=1; echo "gpu-check: no checkpoint from step 3 to measure" >&2
fi

step "5/5 report"
"$python" scripts/gpu/report.py "$out" || status=1
exit $status
