#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/TARGET/ (committed; rerun after a
format changes). Small valid inputs of every kind each parser reads, made with the reference
libraries (Hugging Face tokenizers and safetensors) and, for latent files, the c3 binary.

    .venv/bin/python fuzz/make_seeds.py --c3 build/c3
"""
import argparse
import base64
import json
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Context cascade compression keeps 32 latent vectors per page.\n\nSecond paragraph, with numbers 1234 and 3.14.",
    "中文文本，包含标点。 Mixed with English and emoji 🙂.",
    "<|im_start|>user\nRepeat the text: <img><imgpad></img><|im_end|>\n",
    "  leading spaces, tabs\tand trailing newlines\n\n\n",
]


def write(target, name, data):
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def safetensors_seeds():
    import numpy as np
    from safetensors.numpy import save

    write("safetensors", "two-tensors", save({"a": np.arange(6, dtype=np.float32).reshape(2, 3),
                                               "b": np.ones(4, dtype=np.int64)}, metadata={"format": "pt"}))
    write("safetensors", "empty-and-scalar", save({"e": np.zeros((0, 3), dtype=np.float16),
                                                    "s": np.array(7, dtype=np.int32)}))
    header = json.dumps({"x": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    write("safetensors", "bf16-by-hand", struct.pack("<Q", len(header)) + header + b"\x80\x3f\x00\x40")


def tokenizer_seeds(tmp):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXTS * 20, trainer)
    write("tokenizer_json", "bpe-300", tok.to_str())
    files = tok.model.save(str(tmp))
    vocab = Path([f for f in files if f.endswith("vocab.json")][0]).read_bytes()
    merges = Path([f for f in files if f.endswith("merges.txt")][0]).read_bytes()
    write("vocab_merges", "bpe-300", vocab + b"\0" + merges)
    ranks = sorted(json.loads(vocab).items(), key=lambda kv: kv[1])
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    lines = [base64.b64encode(bytes(byte_of[c] for c in token)).decode() + f" {rank}" for token, rank in ranks]
    write("tiktoken", "bpe-300", "\n".join(lines) + "\n")
    added = {"added_tokens_decoder": {"256": {"content": "<|im_end|>", "special": True},
                                      "257": {"content": "<img>", "special": True}}}
    write("added_tokens", "config-and-added", json.dumps(added) + "\0" + json.dumps({"<imgpad>": 258, "</img>": 259}))
    write("added_tokens", "config-only", json.dumps(added))
    for i, text in enumerate(TEXTS):
        write("tokenizer_roundtrip", f"text-{i}", text)


def config_seeds():
    write("hf_config", "c3-prose-n16", (ROOT / "models" / "c3-prose-n16" / "config.json").read_bytes())
    write("hf_config", "qwen2-4x256", (ROOT / "configs" / "models" / "qwen2-4x256.json").read_bytes())
    write("c3_config", "train-steps", json.dumps({"train": {"steps": 5, "resume": False, "dtype": "bfloat16"},
                                                  "optim": {"lr": 1e-3}, "data": {"train": ["a.jsonl", "/b.jsonl"]},
                                                  "model": {"encoder": "preset:tiny"}})
          + "\0train.steps=7\noptim.lr=2e-4\ntrain.dtype=float32\ndata.train=[\"x\"]\n")


def data_seeds():
    pages = [{"image": f"page_{i}.png", "conversations": [{"from": "human", "value": "<image>\nOCR"},
                                                         {"from": "gpt", "value": text}]} for i, text in enumerate(TEXTS)]
    write("eval_pages", "fox-json", b"\x00" + json.dumps(pages).encode())
    write("eval_pages", "jsonl", b"\x01" + "".join(json.dumps({"id": f"p{i}", "text": t}) + "\n"
                                                   for i, t in enumerate(TEXTS)).encode())
    write("eval_pages", "pairs", b"\x02" + "".join(json.dumps({"label": t, "answer": t[::-1]}) + "\n"
                                                   for t in TEXTS).encode())
    write("training_data", "jsonl", b"\x00" + "".join(json.dumps({"text": t}) + "\n" for t in TEXTS).encode())
    conversations = [{"conversations": [{"from": "context", "value": t}, {"from": "gpt", "value": t}]} for t in TEXTS]
    write("training_data", "conversations", b"\x01" + json.dumps(conversations).encode())


def latent_seeds(c3, tmp):
    model = ROOT / "models" / "c3-prose-n16"
    (tmp / "a.txt").write_text("The latent file seed: a short text of one span.\n")
    subprocess.run([c3, "--log-level", "error", "compress", "-m", str(model), str(tmp / "a.txt"), "-o",
                    str(tmp / "a.c3"), "--latent-dtype", "bfloat16"], check=True)
    write("latent_file", "one-span", (tmp / "a.c3").read_bytes())


def gguf_seeds():
    """Small GGUF files of llama, qwen2 and qwen3 models in several tensor types (gguf-py's writer)."""
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.quants import quantize

    rng = np.random.default_rng(0)
    for arch, qtype in (("llama", T.Q4_K), ("qwen2", T.Q8_0), ("qwen3", T.Q4_1)):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.gguf"
            w = gguf.GGUFWriter(str(path), arch)
            w.add_embedding_length(256), w.add_block_count(1), w.add_feed_forward_length(32)
            w.add_head_count(2), w.add_head_count_kv(1), w.add_context_length(64)
            w.add_tensor("token_embd.weight", np.zeros((2, 256), dtype=np.float16))
            values = rng.standard_normal((1, 256)).astype(np.float32)
            if qtype == T.Q4_K:
                w.add_tensor("blk.0.attn_q.weight", rng.integers(0, 256, (1, 144), dtype=np.uint8), raw_dtype=qtype)
            else:
                w.add_tensor("blk.0.attn_q.weight", quantize(values, qtype), raw_dtype=qtype)
            w.add_tensor("output_norm.weight", np.ones(256, dtype=np.float32))
            w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
            write("gguf", f"{arch}-{qtype.name}", path.read_bytes())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c3", default=str(ROOT / "build" / "c3"), help="the c3 binary (for latent files)")
    parser.add_argument("--only", help="write only this target's seeds (gguf), leaving the others")
    args = parser.parse_args()
    if args.only == "gguf":
        shutil.rmtree(CORPUS / "gguf", ignore_errors=True)
        gguf_seeds()
        return
    shutil.rmtree(CORPUS, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        safetensors_seeds()
        tokenizer_seeds(Path(tmp))
        config_seeds()
        data_seeds()
        latent_seeds(args.c3, Path(tmp))
        gguf_seeds()
    for folder in sorted(CORPUS.iterdir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} seeds")


if __name__ == "__main__":
    main()
