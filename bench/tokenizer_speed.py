#!/usr/bin/env python3
"""Tokenizer encode speed, c3 against Hugging Face `tokenizers` on the same tokenizer.json, one thread
each, in one run: the real Qwen2.5 vocabulary, SmolLM2's as `c3 import` writes it from its GGUF (when
scripts/fetch-smollm2.sh can fetch it), and the Llama-3, GPT-2 and Llama-2 style pipelines the parity
tests build (tests/hf/test_tokenizer_pipelines.py), on prose and code from the installed packages and
on inputs made to hurt regex engines and BPE: 1 MB of spaces, of newlines and spaces, of digits, of
punctuation, of CJK, and one 200 KB word. Each figure is the median of --repeats runs in fresh
processes (bench_c3_worker tokenize for c3); token counts must agree.

  .venv/bin/python bench/tokenizer_speed.py [--repeats 3] [--build build] [--json FILE]
"""
import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "hf"))

from vs_hf import median_run, run_worker  # noqa: E402


def inputs():
    from test_tokenizer import package_texts
    rng = random.Random(0)
    prose = package_texts()
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(200_000))
    # Both sides warm up on the first 8 texts: short ones here, so the long one is timed cold.
    warm = ["warm-up text"] * 8
    return {"prose and code": prose, "1 MB spaces": warm + [" " * 1_000_000],
            "1 MB newlines and spaces": warm + [" \n  \n\t" * 200_000], "1 MB digits": warm + ["1234567890" * 100_000],
            "1 MB punctuation": warm + ["!?.,;:-" * 150_000], "1 MB CJK": warm + ["中文字符测试包括标点日本語" * 27_000],
            "one 200 KB word": warm + [word]}


def tokenizers(tmp, build):
    import test_tokenizer_pipelines as pipelines
    from conftest import hf_qwen2_tokenizer
    hf_qwen2_tokenizer(tmp / "qwen2.5", [])
    files = {"Qwen2.5": tmp / "qwen2.5" / "tokenizer.json"}
    fetched = subprocess.run(["bash", str(ROOT / "scripts" / "fetch-smollm2.sh")], capture_output=True, text=True, cwd=ROOT)
    if fetched.returncode == 0:
        subprocess.run([str(Path(build) / "c3"), "--log-level", "warn", "import", str(ROOT / fetched.stdout.strip()),
                        "-o", str(tmp / "smollm2")], check=True)
        files["SmolLM2"] = tmp / "smollm2" / "tokenizer.json"
    else:
        print(f"SmolLM2 not fetched, its rows left out: {fetched.stderr.strip()}")
    byte_level, metaspace = pipelines.byte_level_vocabulary(), pipelines.metaspace_vocabulary()
    for name, tok in {"Llama-3 style": pipelines.llama3(byte_level), "GPT-2 style": pipelines.gpt2(byte_level),
                      "Llama-2 style": pipelines.llama2_metaspace(metaspace)}.items():
        files[name] = tmp / f"{name}.json"
        tok.save(str(files[name]))
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("worker", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.worker:  # the HF side, in its own process
        from vs_hf import hf_tokenize
        print(json.dumps(hf_tokenize(*args.worker[1:])))
        return
    c3_worker = Path(args.build) / "bench_c3_worker"
    py = [sys.executable, __file__]
    one_thread = {"RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = tokenizers(tmp, args.build)
        print(f"{'tokenizer':<14} {'input':<26} {'MB':>6} {'tokens':>9} {'c3 MB/s':>9} {'HF MB/s':>9} {'c3/HF':>7}")
        for input_name, texts in inputs().items():
            path = tmp / "texts.jsonl"
            path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
            mb = sum(len(t.encode()) for t in texts) / 1e6
            for name, tokenizer_json in files.items():
                c3 = median_run([run_worker([c3_worker, "tokenize", tokenizer_json, path]) for _ in range(args.repeats)],
                                "mb_per_second")
                hf = median_run([run_worker([*py, "tokenize", tokenizer_json, path], env=one_thread)
                                 for _ in range(args.repeats)], "mb_per_second")
                assert c3["tokens"] == hf["tokens"], (name, input_name, c3["tokens"], hf["tokens"])
                rows.append({"tokenizer": name, "input": input_name, "mb": mb, "tokens": c3["tokens"],
                             "c3_mb_per_second": c3["mb_per_second"], "hf_mb_per_second": hf["mb_per_second"]})
                print(f"{name:<14} {input_name:<26} {mb:6.2f} {c3['tokens']:9d} {c3['mb_per_second']:9.2f} "
                      f"{hf['mb_per_second']:9.2f} {c3['mb_per_second'] / hf['mb_per_second']:6.1f}x", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
