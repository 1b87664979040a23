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
  python3 bench/vs_hf.py --device cuda --model DIR [--quick] [--build build-gpu] [--json FILE]

The second form is the device table (the GPU check's step 4, scripts/gpu-check.sh) on a C3
checkpoint DIR with its tokenizer.json (scripts/gpu/parity.py --keep-model writes the paper's
geometry): at the authors' settings (bf16 weights with fp32 master weights, recomputation,
micro-batch 2 of 1024-token texts) the training step's tokens/s and MFU against a bf16 matmul peak
measured in the same run, the largest micro-batch that trains, compress (pages/s), greedy
reconstruction at batch 1 and 32 (tokens/s; HF generate with no_repeat_ngram_size=20), the batch-1
decode time per token against the memory floor (the decoder's bf16 weight bytes over the measured
copy bandwidth), and each side's peak device memory. HF runs with SDPA; each side runs its tasks in
one process (one load of the model). --quick: tiny shapes (the CPU dry run).

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
import math
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
# The device table's shapes: the authors' micro-batch (2) of 1024-token texts, the micro-batches tried
# for the largest that trains, pages of 512-1024 tokens, reconstruction of 200 tokens after texts of
# 256; "quick" is the CPU dry run's.
PLANS = {
    "paper": dict(train=(2, 1024), train_steps=5, fit_batches=[4, 8, 16, 32, 64], docs=(64, 512, 1024),
                  compress_batch=16, generate=(32, 256), generate_batches=[1, 32], new_tokens=200),
    "quick": dict(train=(2, 48), train_steps=2, fit_batches=[4, 8], docs=(8, 16, 32), compress_batch=4,
                  generate=(4, 24), generate_batches=[1, 4], new_tokens=16),
}


# ---------------------------------------------------------------- data and models (driver side)

def corpus_texts(path):
    if path:
        p = Path(path)
        files = sorted(p.rglob("*.txt")) if p.is_dir() else [p]
    elif (ROOT / "data" / "corpus" / "train").is_dir():
        files = sorted((ROOT / "data" / "corpus" / "train").glob("*.txt"))
    else:
        import transformers
        base = Path(transformers.__file__).parent
        files = sorted(base.glob("generation/*.py")) + sorted(base.glob("models/qwen2*/*.py")) + [ROOT / "README.md"]
        try:
            import nltk
            files += sorted(Path(nltk.__file__).parent.glob("translate/*.py"))
        except ImportError:  # the GPU machine has no NLTK
            pass
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


def write_inputs(tok, texts, path, train, steps, docs, generate, seed=0):
    """train_ids [steps + 1, B, T] (train = (B, T)), docs [D, L] + doc_lengths (docs = (D, min, max
    length)), generate_ids [rows, T] (generate = (rows, T)): token ids of corpus pieces (the same for
    c3 and HF)."""
    import torch
    from safetensors.torch import save_file

    rng = random.Random(seed)
    stream = [i for t in texts for i in tok.encode(t).ids]

    def piece(length):
        start = rng.randrange(0, len(stream) - length)
        return stream[start: start + length]

    batch, length = train
    count, lo, hi = docs
    lengths = sorted((rng.randint(lo, hi) for _ in range(count)), reverse=True)  # length-sorted, as c3 batches
    doc_ids = torch.zeros((count, hi), dtype=torch.long)
    for i, n in enumerate(lengths):
        doc_ids[i, :n] = torch.tensor(piece(n))
    save_file({"train_ids": torch.tensor([[piece(length) for _ in range(batch)] for _ in range(steps + 1)]),
               "docs": doc_ids, "doc_lengths": torch.tensor(lengths),
               "generate_ids": torch.tensor([piece(generate[1]) for _ in range(generate[0])])}, str(path))


# ---------------------------------------------------------------- the Hugging Face side (worker)

def load_authors_c3(model_dir, attn, device="cpu"):
    from c3_reference import decoder_prompt, load_released_layout
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    n = json.loads((Path(model_dir) / "config.json").read_text())["latent_token_len"]
    special = {t: tok.token_to_id(t) for t in SPECIALS}
    return load_released_layout(model_dir, special, tok.encode(decoder_prompt(n)).ids, attn, device)


def read_ids(path, name):
    from safetensors.torch import load_file
    return load_file(str(path))[name]


def synchronized_clock(device):
    """time.perf_counter after the device has finished what was queued."""
    import torch

    def now():
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()
    return now


def peak_memory(device, reset=False):
    """The device's peak allocated MiB since the last reset (CUDA), None on the CPU (the driver takes
    the process's peak RSS)."""
    import torch
    if device.type != "cuda":
        return None
    if reset:
        torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def hf_train_steps(model, ids, steps, dtype, device):
    """HF Trainer's step; dtype bfloat16 = Trainer(bf16=True): fp32 weights and AdamW, the forward under
    autocast to bf16. Trains `model` in place; returns the median step and the optimizer."""
    import contextlib
    import torch

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()
    now = synchronized_clock(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0, fused=True)
    times, optimizer_times, tokens = [], [], 0
    peak_memory(device, reset=True)
    for s in range(int(steps) + 1):  # step 0 warms up
        texts = ids[s % ids.shape[0]].tolist()
        start = now()
        with autocast():
            loss, tokens = model.training_loss(texts)
        loss.backward()
        update = now()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if s > 0:
            times.append(now() - start)
            optimizer_times.append(now() - update)
    step = statistics.median(times)
    return {"tokens_per_second": tokens / step, "step_seconds": step, "optimizer_seconds": statistics.median(optimizer_times),
            "tokens_per_step": tokens, "peak_device_mib": peak_memory(device)}


def hf_compress_docs(model, inputs, batch, device):
    import torch
    docs, lengths = read_ids(inputs, "docs"), read_ids(inputs, "doc_lengths")
    rows = [docs[i, :n].tolist() for i, n in enumerate(lengths.tolist())]
    now = synchronized_clock(device)

    def run():
        with torch.no_grad():
            for i in range(0, len(rows), batch):
                model.latents(rows[i: i + batch])
    run()
    peak_memory(device, reset=True)
    start = now()
    run()
    return {"documents_per_second": len(rows) / (now() - start), "peak_device_mib": peak_memory(device)}


def hf_generate_texts(model, inputs, batch, new_tokens, device):
    import torch
    texts = read_ids(inputs, "generate_ids")[:batch].tolist()
    now = synchronized_clock(device)
    with torch.no_grad():
        latents = model.latents(texts)
        model.generate(latents, new_tokens)
        peak_memory(device, reset=True)
        start = now()
        out = model.generate(latents, new_tokens)
        seconds = now() - start
    return {"tokens_per_second": sum(len(r) for r in out) / seconds,
            "seconds_per_step": seconds / max(1, max(len(r) for r in out)), "peak_device_mib": peak_memory(device),
            "ids": out}


def hf_train(model_dir, inputs, attn, steps, dtype):
    import torch
    return hf_train_steps(load_authors_c3(model_dir, attn).train(), read_ids(inputs, "train_ids"), steps, dtype,
                          torch.device("cpu"))


def hf_compress(model_dir, inputs, attn, batch):
    import torch
    return hf_compress_docs(load_authors_c3(model_dir, attn).eval(), inputs, batch, torch.device("cpu"))


def hf_generate(model_dir, inputs, attn, batch, new_tokens):
    import torch
    return hf_generate_texts(load_authors_c3(model_dir, attn).eval(), inputs, batch, new_tokens, torch.device("cpu"))


def hf_suite(model_dir, inputs, plan_file, device):
    """The device table's HF column in one process: the training step as the authors train (HF
    Trainer, bf16 autocast over fp32 weights, gradient checkpointing on both LLMs), then the bf16
    model's compress and generate."""
    import gc
    import torch
    plan = json.loads(Path(plan_file).read_text())
    device = torch.device(device)
    model = load_authors_c3(model_dir, "sdpa", device).train()
    if plan["recompute"]:
        for llm in (model.encoder, model.decoder):
            # transformers 5 renamed it; the authors' Trainer(gradient_checkpointing=True) calls it
            (getattr(llm, "activation_checkpointing_enable", None) or llm.gradient_checkpointing_enable)()
            llm.config.use_cache = False
    result = {"train": hf_train_steps(model, read_ids(inputs, "train_ids"), plan["train_steps"], plan["dtype"], device)}
    gc.collect()  # the optimizer's state, before inference
    if device.type == "cuda":
        torch.cuda.empty_cache()
    model = model.to(getattr(torch, plan["dtype"])).eval()
    for llm in (model.encoder, model.decoder):
        (getattr(llm, "activation_checkpointing_disable", None) or llm.gradient_checkpointing_disable)()
        llm.config.use_cache = True
    result["compress"] = hf_compress_docs(model, inputs, plan["compress_batch"], device)
    for b in plan["generate_batches"]:
        result[f"generate_{b}"] = hf_generate_texts(model, inputs, b, plan["new_tokens"], device)
    return result


def device_peaks(device):
    """What the device can do, measured: bf16 matrix-product TFLOP/s (square products) and copy
    bandwidth in GB/s (bytes read + written)."""
    import torch
    device = torch.device(device)
    cuda = device.type == "cuda"
    now = synchronized_clock(device)
    n, reps = (8192, 50) if cuda else (512, 5)
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    c = torch.empty_like(a)
    for _ in range(3):
        torch.mm(a, b, out=c)
    start = now()
    for _ in range(reps):
        torch.mm(a, b, out=c)
    tflops = 2 * n**3 * reps / (now() - start) / 1e12
    del a, b, c
    nbytes, reps = (2 << 30, 20) if cuda else (64 << 20, 5)
    x = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    y = torch.empty_like(x)
    y.copy_(x)
    start = now()
    for _ in range(reps):
        y.copy_(x)
    return {"bf16_matmul_tflops": tflops, "copy_gb_per_second": 2 * nbytes * reps / (now() - start) / 1e9,
            "device_name": torch.cuda.get_device_name(device) if cuda else "cpu"}


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
              "tokenize": lambda: hf_tokenize(*args), "suite": lambda: hf_suite(*args),
              "peaks": lambda: device_peaks(*args)}[task]()
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


def matmul_parameters(cfg):
    """Weights of one Qwen2 stack's matrix products per token (attention projections and MLP)."""
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or h // heads
    q, kv = heads * head_dim, cfg["num_key_value_heads"] * head_dim
    return cfg["num_hidden_layers"] * (2 * h * q + 2 * h * kv + 3 * h * cfg["intermediate_size"])


def attention_flops(cfg, length):
    """A causal forward's QK^T and AV over one sequence: 2 x length^2 x query width per layer."""
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    return cfg["num_hidden_layers"] * 2 * length * length * cfg["num_attention_heads"] * head_dim


def train_step_flops(model_dir, text_lengths, prompt_length):
    """Model FLOPs of one C3 training step (forward + backward = 3 forwards; recomputation not
    counted, as MFU does): the encoder on text + <img> + N slots + </img>, the decoder on prompt +
    text + <|im_end|>, lm_head on the supervised positions."""
    enc = json.loads((Path(model_dir) / "llm1" / "config.json").read_text())
    dec = json.loads((Path(model_dir) / "config.json").read_text())
    n = dec["latent_token_len"]
    total = 0
    for t in text_lengths:
        te, td = t + n + 2, prompt_length + t + 1
        total += 3 * (2 * matmul_parameters(enc) * te + attention_flops(enc, te) + 2 * matmul_parameters(dec) * td +
                      attention_flops(dec, td) + 2 * dec["vocab_size"] * dec["hidden_size"] * (t + 1))
    return total


def decoder_weight_bytes(model_dir, bytes_per_value=2):
    """The decoder's weights in bf16, as one decode step reads them (root safetensors less Q and the
    projector; a tied lm_head is the embedding table, read once)."""
    from safetensors import safe_open
    count = 0
    for path in sorted(Path(model_dir).glob("model*.safetensors")):
        with safe_open(str(path), "pt") as f:
            for name in f.keys():
                if not name.startswith(("model.Q.", "model.mm_projector.")):
                    count += math.prod(f.get_slice(name).get_shape())
    return count * bytes_per_value


def device_table(args):
    """The device table (see the module's header)."""
    import torch
    from c3_reference import decoder_prompt
    from tokenizers import Tokenizer

    model = Path(args.model).resolve()
    c3_worker = Path(args.build) / "bench_c3_worker"
    if not c3_worker.exists():
        raise SystemExit(f"{c3_worker}: not built (bench_c3_worker target)")
    plan = dict(PLANS["quick" if args.quick else "paper"], dtype="bfloat16", recompute=True)
    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    n = json.loads((model / "config.json").read_text())["latent_token_len"]
    prompt_length = len(tok.encode(decoder_prompt(n)).ids)
    py = [sys.executable, __file__, "worker"]
    with tempfile.TemporaryDirectory(prefix="c3-vs-hf-device-") as tmp:
        tmp = Path(tmp)
        inputs, plan_file = tmp / "inputs.safetensors", tmp / "plan.json"
        write_inputs(tok, corpus_texts(args.corpus), inputs, plan["train"], plan["train_steps"], plan["docs"], plan["generate"])
        plan_file.write_text(json.dumps(plan))
        peaks = run_worker([*py, "peaks", args.device])
        c3 = run_worker([c3_worker, "--device", args.device, "suite", model, inputs, plan_file])
        hf = run_worker([*py, "suite", model, inputs, plan_file, args.device])
    batch, length = plan["train"]
    flops = train_step_flops(model, [length] * batch, prompt_length)
    floor = decoder_weight_bytes(model) / (peaks["copy_gb_per_second"] * 1e9)
    for side in (c3, hf):
        side["train"]["mfu"] = flops / side["train"]["step_seconds"] / (peaks["bf16_matmul_tflops"] * 1e12)
    result = {"device": args.device, "device_name": peaks["device_name"], "torch": torch.__version__, "plan": plan,
              "peaks": peaks, "train_step_flops": flops, "decode_floor_seconds": floor, "c3": c3, "hf_sdpa": hf}
    print_device_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def print_device_table(r):
    c3, hf, plan = r["c3"], r["hf_sdpa"], r["plan"]

    def gib(side):
        return "-" if side.get("peak_device_mib") is None else f"{side['peak_device_mib'] / 1024:.1f}"
    batch, length = plan["train"]
    print(f"c3 vs HF transformers (SDPA) on {r['device_name']} ({r['device']}), torch {r['torch']}, bf16; measured "
          f"peaks: bf16 matmul {r['peaks']['bf16_matmul_tflops']:.0f} TFLOP/s, copy {r['peaks']['copy_gb_per_second']:.0f} GB/s")
    print(f"{'task':<34} {'c3':>10} {'HF sdpa':>10} {'c3/HF':>7}  peak GiB c3 / HF")
    rows = [(f"train step, {batch} x {length} tokens, tok/s", c3["train"], hf["train"], "tokens_per_second"),
            ("compress, pages/s", c3["compress"], hf["compress"], "documents_per_second")]
    rows += [(f"reconstruct batch {b}, tok/s", c3[f"generate_{b}"], hf[f"generate_{b}"], "tokens_per_second")
             for b in plan["generate_batches"]]
    for name, mine, theirs, key in rows:
        print(f"{name:<34} {mine[key]:10.1f} {theirs[key]:10.1f} {mine[key] / theirs[key]:6.2f}x  {gib(mine)} / {gib(theirs)}")
    print(f"{'train step MFU':<34} {100 * c3['train']['mfu']:9.1f}% {100 * hf['train']['mfu']:9.1f}%")
    one = f"generate_{plan['generate_batches'][0]}"
    floor = r["decode_floor_seconds"]
    print(f"{'batch-1 decode, ms/token':<34} {1e3 * c3[one]['seconds_per_step']:10.2f} {1e3 * hf[one]['seconds_per_step']:10.2f}"
          f"   floor {1e3 * floor:.2f} ms (c3 {c3[one]['seconds_per_step'] / floor:.1f}x it)")
    fit = c3["fit"]
    print(f"largest micro-batch that trains (c3, fp32 masters, recomputation): {fit['largest_batch'] or 'none'} of "
          f"{[t['batch'] for t in fit['tried']]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("worker", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="the tiny size only, fewer tokens")
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build", default=str(ROOT / "build"))
    parser.add_argument("--corpus", default="")
    parser.add_argument("--json", default="")
    parser.add_argument("--device", default="cpu", help="the device table's device (with --model)")
    parser.add_argument("--model", default="", help="a C3 checkpoint with tokenizer.json: the device table on it")
    args = parser.parse_args()
    if args.worker:
        if args.worker[0] != "worker":
            parser.error(f"unexpected arguments {args.worker}")
        return worker(args.worker[1:])
    if args.model:
        return device_table(args)
    if args.device != "cpu":
        parser.error("--device needs --model (the size table runs on the CPU)")

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
            write_inputs(tok, texts, tmp / size / "inputs.safetensors", s["train"], TRAIN_STEPS, s["docs"], (16, s["docs"][1]))
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

        # Tokenizers: the real Qwen2.5 vocabulary, and SmolLM2's as c3 import writes it from its GGUF
        # (scripts/fetch-smollm2.sh), one thread on both sides.
        from conftest import hf_qwen2_tokenizer
        hf_qwen2_tokenizer(tmp / "qwen2.5", [])
        tokenizers = {"Qwen2.5": tmp / "qwen2.5" / "tokenizer.json"}
        fetched = subprocess.run(["bash", str(ROOT / "scripts" / "fetch-smollm2.sh")], capture_output=True, text=True, cwd=ROOT)
        if fetched.returncode == 0:
            subprocess.run([str(Path(args.build) / "c3"), "--log-level", "warn", "import", str(ROOT / fetched.stdout.strip()),
                            "-o", str(tmp / "smollm2")], check=True)
            tokenizers["SmolLM2"] = tmp / "smollm2" / "tokenizer.json"
        else:
            print(f"SmolLM2 not fetched, its tokenizer row left out: {fetched.stderr.strip()}")
        pieces = [t[i: i + 4000] for t in texts for i in range(0, len(t), 4000)]
        (tmp / "texts.jsonl").write_text("".join(json.dumps({"text": p}) + "\n" for p in pieces), encoding="utf-8")
        one_thread = {"RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        for name, tokenizer_json in tokenizers.items():
            c3 = median_run([run_worker([c3_worker, "tokenize", tokenizer_json, tmp / "texts.jsonl"])
                             for _ in range(repeats)], "mb_per_second")
            hf = median_run([run_worker([*py, "tokenize", tokenizer_json, tmp / "texts.jsonl"], env=one_thread)
                             for _ in range(repeats)], "mb_per_second")
            assert c3["tokens"] == hf["tokens"], (name, c3["tokens"], hf["tokens"])
            rows.append({"size": f"{name.lower()} tokenizer", "task": "tokenize", "unit": "mb_per_second",
                         "c3": c3["mb_per_second"], "hf_tokenizers": hf["mb_per_second"], "tokens": c3["tokens"],
                         "rss_mib": {"c3": c3["peak_rss_mib"], "hf_tokenizers": hf["peak_rss_mib"]}})
            print(f"\n{name} tokenizer encode, one thread, {sum(len(p.encode()) for p in pieces) / 1e6:.2f} MB in "
                  f"{len(pieces)} pieces ({c3['tokens']} tokens, as many on both sides): c3 {c3['mb_per_second']:.2f} MB/s, "
                  f"HF tokenizers {hf['mb_per_second']:.2f} MB/s, c3/HF {c3['mb_per_second'] / hf['mb_per_second']:.2f}x; "
                  f"peak RSS {c3['peak_rss_mib']:.0f} / {hf['peak_rss_mib']:.0f} MiB")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
