#!/usr/bin/env python3
"""Peak memory per rank of data-parallel `c3 train` on the CPU (Gloo), at 1, 2 and 4 ranks for ZeRO
stages 0, 1 and 2 (and 2 without overlapping the gradient reduction with backward), beside
`c3 train --dry-run`'s estimate for the same run, and the time per step.

    .venv/bin/python bench/data_parallel_memory.py [--build build] [--ranks 1,2,4] [--stages 0,1,2]
        [--steps 4] [--json FILE]

The model: Qwen2.5-0.5B's geometry cut to 2 layers per side (vocabulary 4000, about 90M parameters),
trained in fp32 (the CPU's dtype) on random text, micro-batch 2 of up to 128 tokens, 2 accumulated,
recomputation on. Ranks are started as torchrun starts them; each one's peak RSS comes from the kernel
(wait4), so it includes LibTorch's own footprint (the "idle" row: a 1-step run of a tiny model).
The estimate counts the training state and activations only. Ranks share this machine's cores, so
the step time grows with the rank count here; compare stages at one rank count.
"""
import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GEOMETRY = dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_act="silu", hidden_size=896,
                intermediate_size=4864, num_hidden_layers=2, num_attention_heads=14, num_key_value_heads=2,
                max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True,
                initializer_range=0.02, vocab_size=4000)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(c3, args, world, cwd):
    """Starts `world` ranks of `c3 ARGS`; returns each one's (exit status, peak RSS MiB) and the seconds."""
    port, procs = free_port(), []
    start = time.time()
    for rank in range(world):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        if world > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port))
        log = open(Path(cwd) / f"rank{rank}.log", "w")
        procs.append(subprocess.Popen([str(c3), *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log))
    results = []
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        results.append((os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024))
    return results, time.time() - start


def estimate(c3, args, world, zero, cwd):
    """The dry run's total for `world` GPUs (the c3 row of its table), GiB."""
    out = subprocess.run([str(c3), *args, "--dry-run"], cwd=cwd, capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 3 and cells[0] == str(world) and cells[1].startswith(f"c3, ZeRO-{zero}"):
            return float(cells[-1].strip("*"))
    raise SystemExit(f"no estimate for {world} GPUs, ZeRO-{zero} in:\n{out}")


def step_seconds(metrics):
    rows = [json.loads(line) for line in Path(metrics).read_text().splitlines()]
    train = [r for r in rows if r.get("type") == "train"]
    return (train[-1]["elapsed_seconds"] - train[0]["elapsed_seconds"]) / max(1, len(train) - 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--ranks", default="1,2,4")
    parser.add_argument("--stages", default="0,1,2")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    c3 = Path(args.build) / "c3"
    if not c3.exists():
        raise SystemExit(f"{c3}: not built (bash scripts/build.sh)")
    rng = random.Random(0)
    words = [''.join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 8))) for _ in range(400)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="c3-dp-memory-") as tmp:
        tmp = Path(tmp)
        (tmp / "text.txt").write_text("\n".join(" ".join(rng.choice(words) for _ in range(20)) for _ in range(2000)))
        (tmp / "train.jsonl").write_text("".join(json.dumps({"text": " ".join(rng.choice(words) for _ in range(60))}) + "\n"
                                                 for _ in range(256)))
        (tmp / "model.json").write_text(json.dumps(GEOMETRY))
        subprocess.run([str(c3), "--log-level", "warn", "tokenizer", "train", "--input", "text.txt", "-o", "tok",
                        "--vocab-size", "500"], cwd=tmp, check=True)
        common = ["--set", "train.eval_every=0", "--set", "data.validation_samples=0", "--set", "train.log_every=1",
                  "--set", "train.save_every=100000", "--set", "data.max_length=320", "--set", "data.min_tokens=32",
                  "--set", "data.max_tokens=128",
                  "--set", "model.dtype=float32", "--latent-tokens", "16", "--grad-accum", "2",
                  "--set", "train.dist_timeout=600"]
        idle, _ = run_ranks(c3, ["--threads", "1", "train", "--encoder", "preset:tiny", "--decoder", "preset:tiny",
                                 "--tokenizer", "tok", "--data", "train.jsonl", "-o", "idle", "--steps", "1",
                                 "--batch-size", "2", *common], 1, tmp)
        if idle[0][0] != 0:
            raise SystemExit(f"the idle run failed: {(tmp / 'rank0.log').read_text()[-2000:]}")
        print(f"data-parallel c3 train on the CPU over Gloo: 0.5B geometry cut to 2 layers per side, fp32, micro-batch "
              f"2 x <= 128 tokens x 2 accumulated, {args.steps} steps; {os.cpu_count()} cores shared by the ranks\n"
              f"idle footprint (tiny model, 1 step): {idle[0][1]:.0f} MiB\n")
        print(f"{'ranks':>5} {'ZeRO':>4} {'overlap':>7} {'peak RSS MiB per rank (max)':>28} {'minus idle':>10} "
              f"{'estimate MiB':>12} {'s/step':>7}")
        cases = [(int(w), int(z), True) for w in args.ranks.split(",") for z in args.stages.split(",")]
        cases += [(w, 2, False) for w, z, _ in cases if z == 2 and w > 1]
        for world, zero, overlap in cases:
            run = f"run-{world}-{zero}-{int(overlap)}"
            train = ["--threads", "1", "train", "--encoder", "model.json", "--decoder", "model.json",
                     "--tokenizer", "tok", "--data", "train.jsonl", "-o", run, "--steps", str(args.steps),
                     "--batch-size", "2", "--set", f"optim.zero_stage={zero}",
                     "--set", f"optim.overlap_comm={str(overlap).lower()}", *common]
            results, _ = run_ranks(c3, train, world, tmp)
            if any(code != 0 for code, _ in results):
                raise SystemExit(f"{world} ranks, ZeRO-{zero} failed: {(tmp / 'rank0.log').read_text()[-2000:]}")
            peak = max(rss for _, rss in results)
            est = estimate(c3, train, world, zero, tmp) * 1024
            seconds = step_seconds(tmp / run / "metrics.jsonl")
            rows.append({"ranks": world, "zero_stage": zero, "overlap": overlap, "peak_rss_mib": peak,
                         "idle_rss_mib": idle[0][1],
                         "estimate_mib": est, "seconds_per_step": seconds,
                         "per_rank_rss_mib": [rss for _, rss in results]})
            print(f"{world:>5} {zero:>4} {'yes' if overlap else 'no':>7} {peak:>28.0f} {peak - idle[0][1]:>10.0f} "
                  f"{est:>12.0f} {seconds:>7.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
