#!/usr/bin/env python3
"""c3 side by side with Hugging Face transformers on this machine, in one run, on the same shapes and
the same random weights: a full C3 training step (tokens/s), compress (documents/s), greedy
reconstruction with the no-repeat 20-gram rule (tokens/s at batch 1 and 16), tokenizer encode (MB/s,
one thread), and the peak RSS of each. HF runs the authors' code path (tests/hf/c3_reference.py) with
eager and with SDPA attention; its training step is what HF Trainer does (forward with labels,
backward, clip at 1.0, torch AdamW fused, transformers' default with torch >= 2.8). c3 runs its own
library (bench_c3_worker). Every measurement runs in a fresh process, so each peak RSS is its own.

  .venv/bin/python bench/vs_hf.py [--quick] [--sizes tiny,0.5b-2L,50m] [--repeats 3] [--build build]
      [--json FILE] [--corpus FILE_OR_FOLDER]

Each figure is the median of --repeats runs, c3's and HF's interleaved (this machine is shared and
noisy); rows with generation say whether c3 and HF produced the same ids.

Sizes: "tiny" (configs/tiny-cpu.json's geometry, vocabulary 4000, N 16), "0.5b-2L" (Qwen2.5-0.5B's
geometry cut to 2 layers per side, vocabulary 16384, N 32), "50m" (about 50M parameters: hidden 512,
5 layers per side, vocabulary 16384, N 32). The tokenizers are byte-level BPE (Qwen2's pre-tokenizer
and special tokens) trained on --corpus (default: data/corpus/train when built, else English prose
and code from the installed Python packages); the tokenizer row uses the real Qwen2.5 vocabulary.
"""
import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hf"))
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<imgpad>", "<img>", "</img>"]
SIZES = {
    # name: (hidden, intermediate, layers, heads, kv heads, head dim, vocab, N, train batch x text, compress docs
    #        (count, min..max tokens), new tokens)
    "tiny": dict(hidden=64, inter=176, layers=2, heads=4, kv=2, vocab=4000, n=16, train=(8, 96), docs=(256, 48, 96),
                 new=128),
    "0.5b-2L": dict(hidden=896, inter=4864, layers=2, heads=14, kv=2, vocab=16384, n=32, train=(2, 256),
                    docs=(32, 200, 400), new=64),
    "50m": dict(hidden=512, inter=1536, layers=5, heads=8, kv=2, vocab=16384, n=32, train=(4, 128), docs=(64, 100, 300),
                new=96),
}
TRAIN_STEPS = 5
COMPRESS_BATCH = 16


# ---------------------------------------------------------------- data and models (driver side)

def corpus_texts(path):
    if path:
        p = Path(path)
        files = sorted(p.rglob("*.txt")) if p.is_dir() else [p]
    elif (ROOT / "data" / "corpus" / "train").is_dir():
        files = sorted((ROOT / "data" / "corpus" / "train").glob("*.txt"))
    else:
        import nltk
        import transformers
        base = Path(transformers.__file__).parent
        files = sorted(base.glob("generation/*.py")) + sorted(base.glob("models/qwen2*/*.py")) + \
            sorted(Path(nltk.__file__).parent.glob("translate/*.py")) + [ROOT / "README.md"]
    return [f.read_text(encoding="utf-8", errors="replace") for f in files]


def train_tokenizer(texts, vocab, folder):
    """Byte-level BPE with Qwen2's normaliser, pre-tokenizer and C3's special tokens, as tokenizer.json."""
    from conftest import QWEN2_PATTERN
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab - len(SPECIALS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.add_special_tokens(SPECIALS)
    assert tok.get_vocab_size() <= vocab, tok.get_vocab_size()
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    return tok


def build_model(size, tok, folder, seed=0):
    import torch
    from c3_reference import AuthorsC3, decoder_prompt
    from conftest import perturb_parameters, qwen2_config
    from transformers import Qwen2ForCausalLM

    s = SIZES[size]
    torch.manual_seed(seed)
    cfg = dict(vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["inter"],
               num_hidden_layers=s["layers"], num_attention_heads=s["heads"], num_key_value_heads=s["kv"],
               initializer_range=0.02)
    encoder, decoder = Qwen2ForCausalLM(qwen2_config(**cfg)), Qwen2ForCausalLM(qwen2_config(**cfg))
    for i, m in enumerate((encoder, decoder)):
        perturb_parameters(m.float(), seed + i)
    special = {t: tok.token_to_id(t) for t in SPECIALS}
    model = AuthorsC3(encoder, decoder, s["n"], special, tok.encode(decoder_prompt(s["n"])).ids, seed=seed)
    model.save_released_layout(folder)
    (folder / "tokenizer.json").write_bytes((folder.parent / "tokenizer" / "tokenizer.json").read_bytes())
    return sum(p.numel() for p in model.parameters())


def write_inputs(size, tok, texts, path, seed=0):
    """train_ids [steps + 1, B, T], docs [D, L] + doc_lengths, generate_ids [16, T]: token ids of
    corpus pieces (the same for c3 and HF)."""
    import torch
    from safetensors.torch import save_file

    s = SIZES[size]
    rng = random.Random(seed)
    stream = [i for t in texts for i in tok.encode(t).ids]

    def piece(length):
        start = rng.randrange(0, len(stream) - length)
        return stream[start: start + length]

    batch, length = s["train"]
    count, lo, hi = s["docs"]
    lengths = sorted((rng.randint(lo, hi) for _ in range(count)), reverse=True)  # length-sorted, as c3 batches
    docs = torch.zeros((count, hi), dtype=torch.long)
    for i, n in enumerate(lengths):
        docs[i, :n] = torch.tensor(piece(n))
    save_file({"train_ids": torch.tensor([[piece(length) for _ in range(batch)] for _ in range(TRAIN_STEPS + 1)]),
               "docs": docs, "doc_lengths": torch.tensor(lengths),
               "generate_ids": torch.tensor([piece(lo) for _ in range(16)])}, str(path))


# ---------------------------------------------------------------- the Hugging Face side (worker)

def load_authors_c3(model_dir, attn):
    from c3_reference import decoder_prompt, load_released_layout
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    n = json.loads((Path(model_dir) / "config.json").read_text())["latent_token_len"]
    special = {t: tok.token_to_id(t) for t in SPECIALS}
    return load_released_layout(model_dir, special, tok.encode(decoder_prompt(n)).ids, attn)


def read_ids(path, name):
    from safetensors.torch import load_file
    return load_file(str(path))[name]


def hf_train(model_dir, inputs, attn, steps, dtype):
    """HF Trainer's step; dtype bfloat16 = Trainer(bf16=True): fp32 weights and AdamW, the forward under
    CPU autocast to bf16."""
    import contextlib
    import torch
    model = load_authors_c3(model_dir, attn).train()

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0, fused=True)
    ids = read_ids(inputs, "train_ids")
    times, optimizer_times, tokens = [], [], 0
    for s in range(int(steps) + 1):  # step 0 warms up
        texts = ids[s % ids.shape[0]].tolist()
        start = time.perf_counter()
        with autocast():
            loss, tokens = model.training_loss(texts)
        loss.backward()
        update = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if s > 0:
            times.append(time.perf_counter() - start)
            optimizer_times.append(time.perf_counter() - update)
    step = statistics.median(times)
    return {"tokens_per_second": tokens / step, "step_seconds": step, "optimizer_seconds": statistics.median(optimizer_times),
            "tokens_per_step": tokens}


def hf_compress(model_dir, inputs, attn, batch):
    import torch
    model = load_authors_c3(model_dir, attn).eval()
    docs, lengths = read_ids(inputs, "docs"), read_ids(inputs, "doc_lengths")
    rows = [docs[i, :n].tolist() for i, n in enumerate(lengths.tolist())]

    def run():
        with torch.no_grad():
            for i in range(0, len(rows), batch):
                model.latents(rows[i: i + batch])
    run()
    start = time.perf_counter()
    run()
    return {"documents_per_second": len(rows) / (time.perf_counter() - start)}


def hf_generate(model_dir, inputs, attn, batch, new_tokens):
    import torch
    model = load_authors_c3(model_dir, attn).eval()
    texts = read_ids(inputs, "generate_ids")[:batch].tolist()
    with torch.no_grad():
        latents = model.latents(texts)
        model.generate(latents, new_tokens)
        start = time.perf_counter()
        out = model.generate(latents, new_tokens)
        seconds = time.perf_counter() - start
    return {"tokens_per_second": sum(len(r) for r in out) / seconds, "ids": out}


def hf_tokenize(tokenizer_json, texts_file):
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tokenizer_json))
    texts = [json.loads(line)["text"] for line in Path(texts_file).read_text(encoding="utf-8").splitlines()]
    for t in texts[:8]:
        tok.encode(t, add_special_tokens=False)
    start = time.perf_counter()
    tokens = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in texts)
    seconds = time.perf_counter() - start
    return {"mb_per_second": sum(len(t.encode()) for t in texts) / 1e6 / seconds, "tokens": tokens}


def worker(argv):
    import torch
    task, args = argv[0], argv[1:]
    if task != "tokenize":
        torch.set_num_threads(os.cpu_count())
    result = {"train": lambda: hf_train(*args), "compress": lambda: hf_compress(args[0], args[1], args[2], int(args[3])),
              "generate": lambda: hf_generate(args[0], args[1], args[2], int(args[3]), int(args[4])),
              "tokenize": lambda: hf_tokenize(*args)}[task]()
    print(json.dumps(result))


# ---------------------------------------------------------------- driver

def run_worker(command, env=None):
    """A worker's JSON result plus its own peak RSS in MiB (os.wait4 gives the child's alone)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(write_fd, 1)
        os.close(read_fd)
        os.execve(str(command[0]), [str(c) for c in command], {**os.environ, **(env or {})})
    os.close(write_fd)
    with os.fdopen(read_fd) as stream:
        out = stream.read()
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed (status {status})")
    result = json.loads(out.splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    return result


def median_run(results, key):
    """The run with the median `key`, with the largest peak RSS of all runs."""
    ordered = sorted(results, key=lambda r: r[key])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["peak_rss_mib"] = max(r["peak_rss_mib"] for r in results)
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("worker", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="the tiny size only, fewer tokens")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--corpus", default="")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.worker:
        if args.worker[0] != "worker":
            parser.error(f"unexpected arguments {args.worker}")
        return worker(args.worker[1:])

    import torch
    import transformers
    c3_worker = Path(args.build) / "bench_c3_worker"
    if not c3_worker.exists():
        raise SystemExit(f"{c3_worker}: not built (bash scripts/build.sh)")
    sizes = ["tiny"] if args.quick else args.sizes.split(",")
    repeats = 1 if args.quick else max(1, args.repeats)
    for s in sizes:
        if s not in SIZES:
            raise SystemExit(f"--sizes: unknown size '{s}' (choose from {', '.join(SIZES)})")
    py = [sys.executable, __file__, "worker"]
    rows = []
    texts = corpus_texts(args.corpus)
    print(f"c3 vs Hugging Face transformers {transformers.__version__} (torch {torch.__version__}), CPU, "
          f"{os.cpu_count()} threads, fp32 unless marked bf16; median of {repeats}; "
          f"corpus: {sum(len(t) for t in texts) / 1e6:.1f} MB")
    header = f"{'size':<8} {'params':>8} {'task':<22} {'c3':>10} {'HF eager':>10} {'HF sdpa':>10} {'c3/eager':>9} {'c3/sdpa':>8}  peak RSS MiB c3 / eager / sdpa"
    with tempfile.TemporaryDirectory(prefix="c3-vs-hf-") as tmp:
        tmp = Path(tmp)
        for size in sizes:
            s = SIZES[size]
            tok = train_tokenizer(texts, s["vocab"], tmp / size / "tokenizer")
            params = build_model(size, tok, tmp / size / "model")
            write_inputs(size, tok, texts, tmp / size / "inputs.safetensors")
            model, inputs = tmp / size / "model", tmp / size / "inputs.safetensors"
            new = min(s["new"], 32) if args.quick else s["new"]
            tasks = [("train step", "tokens_per_second", ["train", model, inputs], [TRAIN_STEPS, "float32"]),
                     ("train step bf16", "tokens_per_second", ["train", model, inputs], [TRAIN_STEPS, "bfloat16"]),
                     ("compress", "documents_per_second", ["compress", model, inputs], [COMPRESS_BATCH]),
                     ("reconstruct batch 1", "tokens_per_second", ["generate", model, inputs], [1, new]),
                     ("reconstruct batch 16", "tokens_per_second", ["generate", model, inputs], [16, new])]
            print("\n" + header)
            for name, key, common, extra in tasks:
                runs = {"c3": [], "eager": [], "sdpa": []}
                for _ in range(repeats):  # interleaved, so a noisy minute hits every side alike
                    runs["c3"].append(run_worker([c3_worker, *common, *extra]))
                    for attn in ("eager", "sdpa"):
                        runs[attn].append(run_worker([*py, *common, attn, *extra]))
                c3, eager, sdpa = (median_run(runs[k], key) for k in ("c3", "eager", "sdpa"))
                hf = {"eager": eager, "sdpa": sdpa}
                same = None
                if "ids" in c3:
                    same = all(c3["ids"] == hf[a]["ids"] for a in hf)
                row = {"size": size, "parameters": params, "task": name, "unit": key, "c3": c3[key],
                       "hf_eager": hf["eager"][key], "hf_sdpa": hf["sdpa"][key],
                       "rss_mib": {"c3": c3["peak_rss_mib"], "hf_eager": hf["eager"]["peak_rss_mib"],
                                   "hf_sdpa": hf["sdpa"]["peak_rss_mib"]}}
                if same is not None:
                    row["same_ids"] = same
                rows.append(row)
                print(f"{size:<8} {params / 1e6:7.1f}M {name:<22} {c3[key]:10.1f} {hf['eager'][key]:10.1f} "
                      f"{hf['sdpa'][key]:10.1f} {c3[key] / hf['eager'][key]:8.2f}x {c3[key] / hf['sdpa'][key]:7.2f}x  "
                      f"{c3['peak_rss_mib']:.0f} / {hf['eager']['peak_rss_mib']:.0f} / {hf['sdpa']['peak_rss_mib']:.0f}"
                      + ("" if same is None else ("  same ids" if same else "  IDS DIFFER")), flush=True)

        # Tokenizer: the real Qwen2.5 vocabulary, one thread on both sides.
        from conftest import hf_qwen2_tokenizer
        hf_qwen2_tokenizer(tmp / "qwen2.5", [])
        pieces = [t[i: i + 4000] for t in texts for i in range(0, len(t), 4000)]
        (tmp / "texts.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in pieces), encoding="utf-8")
        one_thread = {"RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        c3 = median_run([run_worker([c3_worker, "tokenize", tmp / "qwen2.5" / "tokenizer.json", tmp / "texts.jsonl"])
                         for _ in range(repeats)], "mb_per_second")
        hf = median_run([run_worker([*py, "tokenize", tmp / "qwen2.5" / "tokenizer.json", tmp / "texts.jsonl"],
                                    env=one_thread) for _ in range(repeats)], "mb_per_second")
        assert c3["tokens"] == hf["tokens"], (c3["tokens"], hf["tokens"])
        rows.append({"size": "qwen2.5 tokenizer", "task": "tokenize", "unit": "mb_per_second", "c3": c3["mb_per_second"],
                     "hf_tokenizers": hf["mb_per_second"], "tokens": c3["tokens"],
                     "rss_mib": {"c3": c3["peak_rss_mib"], "hf_tokenizers": hf["peak_rss_mib"]}})
        print(f"\nQwen2.5 tokenizer encode, one thread, {sum(len(p.encode()) for p in pieces) / 1e6:.2f} MB in "
              f"{len(pieces)} pieces ({c3['tokens']} tokens, identical): c3 {c3['mb_per_second']:.2f} MB/s, "
              f"HF tokenizers {hf['mb_per_second']:.2f} MB/s, c3/HF {c3['mb_per_second'] / hf['mb_per_second']:.2f}x; "
              f"peak RSS {c3['peak_rss_mib']:.0f} / {hf['peak_rss_mib']:.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
