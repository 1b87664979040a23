#!/usr/bin/env python3
"""Ships a C3 trained by `c3 train` into models/: weights, tokenizer, curves and a model card (issue 15).

    ship_model.py --run RUN [--run RUN2 ...] --eval NAME=EVAL_DIR [...] --corpus data/prose
                  --c3 build/c3 -o models/NAME

The runs are the training phases in order (each warm-started from the one before); the newest
checkpoint of the last is shipped, without its optimizer state. Each --eval is a `c3 eval` output
folder (summary.json, report.md, plots), copied under eval/NAME/. The card (README.md) is written
from those files only, so every number in it is a measured one. The output folder is assembled
beside its destination and renamed into place: an interrupted run leaves the old one whole.
Only the Python standard library is used.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys

SHIPPED_FILES = ("config.json", "model.safetensors", "tokenizer.model", "tokenizer.vocab", "tokenizer.json")
TARGETS = ((4.0, 0.90), (8.0, 0.70))  # (compression ratio, precision) that issue 15 asks for


def newest_checkpoint(run):
    steps = [(int(m.group(1)), name) for name in os.listdir(run) if (m := re.fullmatch(r"checkpoint-(\d+)", name))]
    if not steps:
        sys.exit(f"ship_model.py: {run}: no checkpoint-N folder")
    return os.path.join(run, max(steps)[1])


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def copy_checkpoint(checkpoint, dest):
    for root, dirs, files in os.walk(checkpoint):
        dirs[:] = [d for d in dirs if d != "training_state"]
        rel = os.path.relpath(root, checkpoint)
        for name in files:
            if name in SHIPPED_FILES:
                os.makedirs(os.path.join(dest, rel), exist_ok=True)
                shutil.copy2(os.path.join(root, name), os.path.join(dest, rel, name))


class Phase:
    """One training run: its settings (train_config.json) and its metrics.jsonl."""

    def __init__(self, run, offset):
        self.run = run
        self.offset = offset  # steps of the phases before, for one step axis
        with open(os.path.join(run, "train_config.json"), encoding="utf-8") as f:
            self.config = json.load(f)
        records = read_jsonl(os.path.join(run, "metrics.jsonl"))
        self.train = [r for r in records if r.get("type") == "train"]
        self.validation = [r for r in records if r.get("type") == "validation"]
        self.steps = self.train[-1]["step"] if self.train else 0

    def row(self, index):
        data, optim, train = self.config["data"], self.config["optim"], self.config["train"]
        last_train, last_val = self.train[-1], self.validation[-1]
        start = "from scratch" if not self.config["model"].get("checkpoint") else "from phase %d" % (index - 1)
        seconds = last_train["elapsed_seconds"]
        return (f"| {index} | {start} | {data['min_tokens']}-{data['max_tokens']} | {train['batch_size']} | "
                f"{self.steps} | {optim['lr']:g}, {optim['schedule']}, {optim['warmup_steps']} warmup | "
                f"{seconds / 60:.1f} min | {last_train['tokens_seen'] / 1e6:.1f}M | "
                f"{last_train['tokens_seen'] / seconds:,.0f} | {last_val['validation_loss']:.3f} | "
                f"{100 * last_val['validation_precision']:.1f}% |")


# ---------------------------------------------------------------------------------------------
# The training curves as one SVG: loss (training and validation) above, validation precision below.

def svg_chart(x0, y0, width, height, series, y_label, y_max, x_max, boundaries, y_percent=False):
    out = [f'<rect x="{x0}" y="{y0}" width="{width}" height="{height}" fill="none" stroke="#999"/>']
    sx = lambda x: x0 + width * x / x_max
    sy = lambda y: y0 + height * (1 - min(y, y_max) / y_max)
    for i in range(6):
        value = y_max * i / 5
        label = f"{100 * value:.0f}%" if y_percent else f"{value:.1f}"
        out.append(f'<line x1="{x0}" x2="{x0 + width}" y1="{sy(value):.1f}" y2="{sy(value):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 6}" y="{sy(value) + 4:.1f}" text-anchor="end">{label}</text>')
    for i in range(6):
        step = round(x_max * i / 5)
        out.append(f'<text x="{sx(step):.1f}" y="{y0 + height + 16}" text-anchor="middle">{step}</text>')
    for step, name in boundaries:
        out.append(f'<line x1="{sx(step):.1f}" x2="{sx(step):.1f}" y1="{y0}" y2="{y0 + height}" '
                   f'stroke="#888" stroke-dasharray="4 3"/>')
        out.append(f'<text x="{sx(step) + 4:.1f}" y="{y0 + 14}">{name}</text>')
    for index, (name, colour, points) in enumerate(series):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        out.append(f'<text x="{x0 + width - 8}" y="{y0 + 18 + 16 * index}" text-anchor="end" fill="{colour}">{name}</text>')
    out.append(f'<text x="{x0 - 44}" y="{y0 + height / 2}" transform="rotate(-90 {x0 - 44} {y0 + height / 2})" '
               f'text-anchor="middle">{y_label}</text>')
    return out


def training_curves_svg(phases):
    x_max = phases[-1].offset + phases[-1].steps
    boundaries = [(p.offset, f"phase {i + 1}") for i, p in enumerate(phases)]
    train_loss = [(p.offset + r["step"], r["loss"]) for p in phases for r in p.train]
    val_loss = [(p.offset + r["step"], r["validation_loss"]) for p in phases for r in p.validation]
    val_precision = [(p.offset + r["step"], r["validation_precision"]) for p in phases for r in p.validation]
    width, height = 760, 560
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="380" y="20" text-anchor="middle" font-size="14">Training: loss and greedy reconstruction precision (validation)</text>']
    out += svg_chart(70, 40, 660, 200, [("training loss", "#1f77b4", train_loss), ("validation loss", "#d62728", val_loss)],
                     "loss (nats/token)", 9.0, x_max, boundaries)
    out += svg_chart(70, 300, 660, 200, [("validation precision", "#2ca02c", val_precision)],
                     "word precision", 1.0, x_max, boundaries, y_percent=True)
    out.append(f'<text x="400" y="{height - 20}" text-anchor="middle">optimizer step (phases end to end)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# The card.

def bucket_table(summary, control, unit="pieces"):
    lines = [f"| text tokens | {unit} | mean ratio | precision | 1 - edit distance | BLEU | precision, words shuffled (control) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    shuffled = {b["bucket"]: b for b in summary["conditions"].get(control, {}).get("buckets", [])}
    buckets = summary["conditions"]["none"]["buckets"] + [dict(summary["conditions"]["none"]["overall"], bucket="**all**")]
    if control in summary["conditions"]:
        shuffled["**all**"] = summary["conditions"][control]["overall"]
    for b in buckets:
        c = shuffled.get(b["bucket"])
        lines.append(f"| {b['bucket']} | {b['pages']} | {b['mean_ratio']:.1f}x | {100 * b['precision']:.1f}% | "
                     f"{100 * b['one_minus_edit_distance']:.1f}% | {b['bleu']:.3f} | "
                     f"{'-' if c is None else '%.1f%%' % (100 * c['precision'])} |")
    return "\n".join(lines)


def position_line(summary):
    curve = summary["conditions"]["none"]["overall"]["position_curve"]
    return " | ".join(f"{100 * v:.0f}%" for v in curve)


def precision_near(summary, ratio):
    """The bucket whose mean ratio is closest to `ratio`: (precision, its mean ratio)."""
    best = min(summary["conditions"]["none"]["buckets"], key=lambda b: abs(b["mean_ratio"] - ratio))
    return best["precision"], best["mean_ratio"]


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout.strip()


def card(name, phases, evals, info, corpus, c3_commit):
    model = phases[-1].config["model"]
    enc = info["encoder"]  # the top level of `c3 info` is the whole C3 and its decoder
    n = info["latent_token_len"]
    total_s = sum(p.train[-1]["elapsed_seconds"] for p in phases)
    manifest = read_jsonl(os.path.join(corpus, "manifest.jsonl"))
    splits = {s: sum(1 for r in manifest if r["file"].startswith(s + "/")) for s in ("train", "valid", "test")}
    with open(os.path.join(corpus, "SOURCE"), encoding="utf-8") as f:
        packages = [line.strip() for line in f if line.strip().endswith(".deb")]
    heldout = evals.get("heldout")
    lines = [f"# {name}: a C3 trained from scratch on 2 CPU cores by `c3 train`", "",
             "A Context Cascade Compression model small enough to ship and to run anywhere: the encoder reads up to "
             f"{phases[-1].config['data']['max_tokens']} tokens of English prose followed by {n} learned query slots and "
             f"leaves {n} latent vectors there; the projector hands them to the decoder, which regenerates the text. "
             "It exists to show the whole pipeline working on real text (the main job, `scripts/run.sh`, uses it) and to "
             "test it (`CliModel.ShippedModelRoundTripsHeldOutProse`). It is not the paper's model, which starts from "
             "pretrained Qwen2.5-1.5B and 3B.", "",
             "## The model", "",
             f"- Encoder and decoder: Qwen2 from scratch, each {enc['config']['num_hidden_layers']} layers, hidden "
             f"{enc['config']['hidden_size']}, MLP {enc['config']['intermediate_size']}, {enc['config']['num_attention_heads']} "
             f"heads ({enc['config']['num_key_value_heads']} KV), RoPE theta {enc['config']['rope_theta']:g}, tied embeddings "
             f"(`configs/models/qwen2-4x256.json`): {enc['parameters']:,} + {info['parameters_from_config']:,} parameters, "
             f"{info['parameters']:,} in all with the queries and the projector.",
             f"- {n} latent tokens. Trained on spans of up to {phases[-1].config['data']['max_tokens']} tokens: "
             f"{phases[-1].config['data']['max_tokens'] // n}x compression at the longest; `c3 compress` and `c3 eval` cut "
             "longer texts into spans of at most that length (recorded as `c3_max_text_tokens` in `config.json`).",
             f"- Vocabulary: {enc['config']['vocab_size']}-piece sentencepiece BPE made by `c3 tokenizer train` on the "
             "training split (byte fallback, identity normalisation).",
             f"- Stored in {model.get('dtype', 'bfloat16')} ({sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(phases[-1].shipped) for f in fs if f.endswith('.safetensors')) / 2**20:.1f} MiB); "
             "inference on the CPU runs in float32.",
             f"- Shipped from `{os.path.relpath(phases[-1].checkpoint)}` (optimizer state left out), c3 commit `{c3_commit}`.", "",
             "Use it like any C3 checkpoint:", "",
             "```sh",
             f"build/c3 compress -m models/{name} notes/ -o latents/",
             f"build/c3 reconstruct -m models/{name} latents/ -o restored/",
             f"build/c3 eval -m models/{name} pages.jsonl -o eval/",
             "```", "",
             "## Data", "",
             "English technical prose from Debian documentation packages, built by `scripts/build-prose-corpus.sh` "
             "(cleaned by `scripts/corpus/clean_docs.py`, deduplicated by paragraph, split by document): "
             + ", ".join(f"`{p}`" for p in packages) + ". "
             f"{splits['train']:,} training documents, {splits['valid']} validation documents (the validation "
             f"numbers during training), {splits['test']} held-out test documents (the evaluation below). The text is "
             "GPL-2 (Linux), PSF (Python) and Artistic/GPL (Perl) documentation; it is not redistributed here. "
             "The Fox pages were never used for training or tuning.", "",
             "## Training", "",
             f"`c3 train` alone, in {len(phases)} phases that each resume when rerun (`scripts/train-prose-model.sh`), "
             f"bfloat16 on {platform.machine()} with 2 threads, {total_s / 60:.0f} minutes in all:", "",
             "| phase | start | span tokens | batch | steps | lr | time | tokens | tokens/s | validation loss | validation precision |",
             "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    lines += [p.row(i + 1) for i, p in enumerate(phases)]
    lines += ["", "Phase configs: " + ", ".join(f"`configs/prose-cpu-phase{i + 1}.json`" for i in range(len(phases))) +
              f". Validation precision is greedy word precision on {phases[-1].config['train']['eval_precision_samples']} "
              "validation spans at each evaluation, drawn with the phase's own span lengths (hence the jumps where a phase starts); "
              "the metrics of every step are in `training/`.", "",
              "![training curves](training_curves.svg)", ""]
    if heldout:
        lines += ["## Held-out precision by compression ratio", "",
                  f"`c3 eval` on {heldout['selection']['pages_selected']} pieces of the test documents "
                  f"(`scripts/corpus/heldout_spans.py`, {heldout['selection']['min_tokens']}-"
                  f"{heldout['selection']['max_tokens']} tokens), greedy; ratio = text tokens / {n}. The control "
                  "reconstructs the same pieces with their words shuffled: what a decoder that only kept the bag of "
                  "topic words would score. `eval/heldout/` has the report, `summary.json` and the plots.", "",
                  bucket_table(heldout, "shuffle-words"), "",
                  "Characters reproduced per tenth of the text (all pieces): " + position_line(heldout) + ".", ""]
        lines += ["Against issue 15's targets:", ""]
        for ratio, target in TARGETS:
            got, at = precision_near(heldout, ratio)
            lines.append(f"- {target:.0%} at {ratio:g}x: {100 * got:.1f}% at {at:.1f}x, "
                         f"{'met' if got >= target else 'not met'}.")
        lines.append("")
    for key, summary in evals.items():
        if not key.startswith("fox"):
            continue
        gen = summary["generation"]
        lines += [f"## Fox, out of domain ({key})", "",
                  f"The {summary['selection']['pages_selected']} English Fox pages (`en_page_ocr.json`), cut into spans of at most "
                  f"{gen['max_span_tokens']} tokens ({gen['pages_cut_into_spans']} pages cut; tokens counted with this model's "
                  "4000-piece vocabulary, which cuts text finer than Qwen2's 151k). Fox's pages are "
                  "newspapers, forms and papers, far from the training documents; reported only, nothing was tuned "
                  f"on them. `eval/{key}/` has the report.", "",
                  bucket_table(summary, "shuffle-words", "pages"), "",
                  "Characters reproduced per tenth of the page: " + position_line(summary) + ".", ""]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True)
    parser.add_argument("--eval", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--c3", default="build/c3")
    parser.add_argument("--notes", help="a Markdown file appended to the card (limits, what a GPU run would need)")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()

    phases, offset = [], 0
    for run in args.run:
        phases.append(Phase(run, offset))
        offset += phases[-1].steps
    last = phases[-1]
    last.checkpoint = newest_checkpoint(last.run)
    evals = {}
    for item in args.eval:
        key, _, folder = item.partition("=")
        with open(os.path.join(folder, "summary.json"), encoding="utf-8") as f:
            evals[key] = json.load(f)
        evals[key]["_folder"] = folder

    name = os.path.basename(os.path.normpath(args.output))
    staging = args.output.rstrip("/") + ".partial"
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(os.path.join(staging, "training"))
    copy_checkpoint(last.checkpoint, staging)
    last.shipped = staging
    for i, p in enumerate(phases):
        shutil.copy2(os.path.join(p.run, "metrics.jsonl"), os.path.join(staging, "training", f"phase{i + 1}-metrics.jsonl"))
    with open(os.path.join(staging, "training_curves.svg"), "w", encoding="utf-8") as f:
        f.write(training_curves_svg(phases))
    for key, summary in evals.items():
        dest = os.path.join(staging, "eval", key)
        os.makedirs(dest)
        for file in os.listdir(summary["_folder"]):
            if file.endswith((".json", ".md", ".svg")):
                shutil.copy2(os.path.join(summary["_folder"], file), dest)
    info = json.loads(sh(args.c3, "info", staging, "--json"))
    commit = sh("git", "rev-parse", "--short=12", "HEAD")
    lines = card(name, phases, evals, info, args.corpus, commit)
    if args.notes:
        with open(args.notes, encoding="utf-8") as f:
            lines += [f.read().rstrip(), ""]
    lines += ["## Licence", "",
              "The weights are a product of c3 (Apache-2.0) trained on the documentation named above; "
              f"shipped {datetime.date.today().isoformat()}.", ""]
    with open(os.path.join(staging, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    old = args.output.rstrip("/") + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(args.output):
        os.rename(args.output, old)
    os.rename(staging, args.output)
    shutil.rmtree(old, ignore_errors=True)
    print(f"ship_model.py: {last.checkpoint} -> {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
