#!/usr/bin/env python3
"""c3 against the authors' C3 on Hugging Face transformers (tests/hf/c3_reference.py, SDPA), both
on random weights of one geometry, on one device: latents, teacher-forced decoder logits and greedy
reconstruction ids, in float32 (TF32 off) and in bfloat16. c3 runs through c3_hf_probe (its
library, on C3_PROBE_DEVICE in C3_PROBE_DTYPE); the reference in this process.

    python3 scripts/gpu/parity.py --probe build/tests/hf/c3_hf_probe --device cuda --geometry paper \
        --max-new 200 --json OUT/parity.json

Geometries: "paper" (the encoder of Qwen2.5-1.5B, the decoder of Qwen2.5-3B, N = 32: 4.6B
parameters, about 18.5 GB of fp32 weights written to --work), "tiny" (a few MB, for the CPU
dry run). Prints one line per dtype; exits 0 whatever the figures (the report judges them).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "hf"))
from c3_reference import AuthorsC3, decoder_prompt, perturb_parameters, qwen2_config, qwen2_tokenizer  # noqa: E402

IMAGE_TOKENS = ["<imgpad>", "<img>", "</img>"]
GEOMETRIES = {
    # Qwen2.5-1.5B and -3B (their config.json), vocabulary 151936 (holds the image tokens' ids).
    "paper": dict(n=32, encoder=dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                                     num_attention_heads=12, num_key_value_heads=2, vocab_size=151936),
                  decoder=dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                               num_attention_heads=16, num_key_value_heads=2, vocab_size=151936)),
    "tiny": dict(n=8, encoder=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                   num_key_value_heads=1, vocab_size=151936),
                 decoder=dict(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=3,
                              num_key_value_heads=1, vocab_size=151936)),
}
SENTENCE = ("Context cascade compression reads a page of text and leaves a handful of latent vectors behind; "
            "a larger model then writes the page again from those vectors alone. ")


def qwen2(seed, device, **geometry):
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = qwen2_config(max_position_embeddings=32768, initializer_range=0.02, **geometry)
    config._attn_implementation = "sdpa"
    with torch.device(device):
        model = Qwen2ForCausalLM(config).float().eval()
    perturb_parameters(model, seed)
    return model


def rel_err(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def reference(model, texts, max_new):
    """Per text, alone (no padding): latents, decoder logits on prompt + text + <|im_end|>, greedy ids."""
    out = []
    with torch.no_grad():
        for ids in texts:
            z = model.latents([ids])
            dec = torch.tensor([model.prompt_ids + ids + [model.im_end]], device=z.device)
            logits = model.decoder(inputs_embeds=model.decoder_embeds(dec, z)).logits[0]
            out.append({"latents": z[0].float().cpu(), "logits": logits.float().cpu(),
                        "generated": model.generate(z, max_new)[0]})
    return out


def run_probe(probe, folder, texts, max_new, device, dtype, work):
    from safetensors.torch import load_file, save_file

    width = max(len(t) for t in texts)
    ids = torch.zeros(len(texts), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, t in enumerate(texts):
        ids[r, : len(t)], mask[r, : len(t)] = torch.tensor(t), 1
    save_file({"text_ids": ids, "text_mask": mask}, str(work / "in.safetensors"))
    env = dict(os.environ, C3_PROBE_DEVICE=device, C3_PROBE_DTYPE=dtype)
    start = time.time()
    done = subprocess.run([probe, "c3", str(folder), str(work / "in.safetensors"), str(work / "out.safetensors"),
                           str(max_new)], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"parity: c3_hf_probe failed: {done.stderr.strip()}")
    return load_file(str(work / "out.safetensors")), time.time() - start


def compare(ref, c3, texts, prompt_len):
    latent_err = max(rel_err(c3["latents"][r], ref[r]["latents"]) for r in range(len(texts)))
    logit_err = max(rel_err(c3["decoder_logits"][r, : prompt_len + len(t) + 1], ref[r]["logits"])
                    for r, t in enumerate(texts))
    same = compared = 0
    identical_rows = 0
    for r in range(len(texts)):
        mine = [int(t) for t in c3["generated"][r] if t >= 0]
        theirs = ref[r]["generated"]
        n = max(len(mine), len(theirs))
        compared += n
        same += sum(1 for i in range(n) if i < len(mine) and i < len(theirs) and mine[i] == theirs[i])
        identical_rows += mine == theirs
    return {"latents_rel_err": latent_err, "logits_rel_err": logit_err, "generated_ids_compared": compared,
            "generated_ids_identical_share": same / max(compared, 1), "rows_identical": identical_rows,
            "rows": len(texts)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", required=True, help="c3_hf_probe")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--geometry", choices=sorted(GEOMETRIES), default="paper")
    parser.add_argument("--max-new", type=int, default=200)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--work", default=None, help="folder for temporary files (default: the system's)")
    parser.add_argument("--keep-model", default=None,
                        help="write the random checkpoint (with its tokenizer) here and keep it, for bench/vs_hf.py --model")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    g = GEOMETRIES[args.geometry]
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        folder = Path(args.keep_model) if args.keep_model else work / "model"
        tokenizer = qwen2_tokenizer(folder, IMAGE_TOKENS)
        texts = [tokenizer(SENTENCE * k)["input_ids"] for k in (1, 4, 10)]
        special = {t: tokenizer.convert_tokens_to_ids(t) for t in IMAGE_TOKENS + ["<|im_end|>"]}
        start = time.time()
        model = AuthorsC3(qwen2(1, args.device, **g["encoder"]), qwen2(2, args.device, **g["decoder"]), g["n"], special,
                          tokenizer(decoder_prompt(g["n"]))["input_ids"], seed=3).to(args.device).eval()
        model.save_released_layout(folder)
        params = sum(p.numel() for p in model.parameters())
        result = {"geometry": args.geometry, "device": args.device, "parameters": params, "latent_tokens": g["n"],
                  "text_tokens": [len(t) for t in texts], "max_new_tokens": args.max_new, "tf32": False,
                  "setup_seconds": round(time.time() - start, 1)}
        for dtype in args.dtypes.split(","):
            model.to(getattr(torch, dtype))
            start = time.time()
            ref = reference(model, texts, args.max_new)
            hf_seconds = time.time() - start
            c3, c3_seconds = run_probe(args.probe, folder, texts, args.max_new, args.device, dtype, work)
            row = compare(ref, c3, texts, len(model.prompt_ids))
            row.update(hf_seconds=round(hf_seconds, 1), c3_seconds=round(c3_seconds, 1))
            result[dtype] = row
            print(f"parity {args.geometry} {dtype}: latents rel err {row['latents_rel_err']:.2e}, logits rel err "
                  f"{row['logits_rel_err']:.2e}, greedy ids identical {100 * row['generated_ids_identical_share']:.1f}% "
                  f"of {row['generated_ids_compared']} ({row['rows_identical']}/{row['rows']} rows whole)", flush=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
