#!/usr/bin/env python3
"""The end of scripts/gpu-train.sh: from WORK's runs (run-nN/), held-out evaluations (eval-nN/) and
Fox evaluations (fox-nN/, when made), writes OUTDIR/report.json and report.md, copies the model files
of the run with the best held-out precision (its newest checkpoint: config.json, model.safetensors,
llm1/config.json, llm1/model.safetensors, tokenizer.model) into OUTDIR, and prints the table. Exit 1
when a model file is over 16 MiB (it would not come back from the GPU machine) or a run is missing.

    train_report.py WORK OUTDIR --latents 16 32 [--device cuda] [--build-seconds S] [--span-tokens 128-256]
"""
import argparse
import json
import shutil
import sys
from pathlib import Path

MODEL_FILES = ["config.json", "model.safetensors", "llm1/config.json", "llm1/model.safetensors", "tokenizer.model"]
MAX_FILE_BYTES = 16 << 20


def records(metrics):
    """metrics.jsonl's records by type ("train", "validation")."""
    out = {"train": [], "validation": []}
    for line in metrics.read_text().splitlines():
        r = json.loads(line)
        out.setdefault(r.get("type"), []).append(r)
    return out


def overall(summary_path):
    if not summary_path.exists():
        return None
    s = json.loads(summary_path.read_text())["conditions"]["none"]["overall"]
    return {k: s[k] for k in ("precision", "recall", "f1", "edit_distance", "bleu", "pages", "mean_ratio")}


def newest_checkpoint(run):
    found = sorted(run.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]) if p.name.split("-")[1].isdigit() else -1)
    return found[-1] if found else None


def describe(work, n):
    run = work / f"run-n{n}"
    by_type = records(run / "metrics.jsonl")
    train, validation = by_type["train"], by_type["validation"]
    last = train[-1] if train else {}
    checkpoint = newest_checkpoint(run)
    state = json.loads((checkpoint / "training_state" / "state.json").read_text()) if checkpoint else {}
    return {"latent_tokens": n, "checkpoint": str(checkpoint), "steps": state.get("step"),
            "tokens_seen": state.get("tokens_seen"), "minutes": round(state.get("elapsed_seconds", 0) / 60, 2),
            "tokens_per_second": state.get("tokens_seen", 0) / max(state.get("elapsed_seconds", 0), 1e-9),
            "final_train_loss": last.get("loss"),
            "validation": validation[-1] if validation else None,
            "heldout": overall(work / f"eval-n{n}" / "summary.json"), "fox": overall(work / f"fox-n{n}" / "summary.json")}


def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def number(x):
    """A loss, or '-' where the run logged none (it ended by its time budget before train.log_every steps)."""
    return "-" if x is None else f"{x:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--latents", type=int, nargs="+", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--build-seconds", type=int, default=0)
    parser.add_argument("--span-tokens", default="")
    args = parser.parse_args()
    device_name = args.device
    if args.device == "cuda":
        import torch
        device_name = torch.cuda.get_device_name(0)
    runs = [describe(args.work, n) for n in args.latents]
    missing = [r["latent_tokens"] for r in runs if r["checkpoint"] == "None" or r["heldout"] is None]
    if missing:
        sys.exit(f"train_report: no checkpoint or held-out evaluation for N = {missing}")
    best = max(runs, key=lambda r: r["heldout"]["precision"])
    shipped, ok = [], True
    for name in MODEL_FILES:
        source = Path(best["checkpoint"]) / name
        target = args.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        size = target.stat().st_size
        shipped.append({"file": name, "bytes": size})
        ok &= size <= MAX_FILE_BYTES
    report = {"ok": ok, "device": device_name, "build_seconds": args.build_seconds, "span_tokens": args.span_tokens,
              "runs": runs, "shipped": {"latent_tokens": best["latent_tokens"], "from": best["checkpoint"], "files": shipped}}
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    head = f"{'N':>3} {'steps':>7} {'tokens':>11} {'min':>5} {'tok/s':>9} {'loss':>7} {'held-out P':>10} {'ratio':>6} {'Fox P':>7} {'Fox ratio':>9}"
    lines = [head]
    for r in runs:
        h, f = r["heldout"], r["fox"]
        lines.append(f"{r['latent_tokens']:>3} {r['steps']:>7} {r['tokens_seen']:>11} {r['minutes']:>5} "
                     f"{r['tokens_per_second'] or 0:>9.0f} {number(r['final_train_loss']):>7} {pct(h['precision']):>10} "
                     f"{h['mean_ratio']:>5.1f}x {pct(f and f['precision']):>7} "
                     f"{'-' if not f else format(f['mean_ratio'], '.1f') + 'x':>9}")
    files = ", ".join(f"{s['file']} {s['bytes'] / 2**20:.1f} MiB" for s in shipped)
    md = [f"# c3 trained from scratch on {device_name}", "",
          f"`scripts/gpu-train.sh`: `c3 train` (configs/prose-gpu.json) on the prose corpus, spans of {args.span_tokens} "
          f"tokens; build {args.build_seconds} s. Held-out: spans of the corpus's test split (`c3 eval`, precision as the "
          "Fox metric computes it). Fox: out of domain, report only.", "", "```", *lines, "```", "",
          f"Shipped: N = {best['latent_tokens']} from {Path(best['checkpoint']).name} "
          f"({files})"
          + ("" if ok else " -- A FILE IS OVER 16 MiB")]
    (args.out / "report.md").write_text("\n".join(md) + "\n")
    print("\n".join(lines))
    print(md[-1])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
