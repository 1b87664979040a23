#!/usr/bin/env python3
"""Training runs side by side at equal compute (issue 28): validation loss and greedy precision
against the CPU minutes the training steps took, as an SVG and a Markdown table.

    compare_runs.py --run NAME=RUN[,RUN2,...] [--run ...] [--assume-threads 2] --svg OUT.svg [--md OUT.md]

A run given as several folders is a sequence of phases (each warm-started from the one before);
their CPU time adds up. CPU time is metrics.jsonl's cpu_seconds (the process's CPU time in training
steps, all threads); runs from before c3 recorded it have only elapsed_seconds, which
--assume-threads turns into an estimate (marked "~" in the table). Validation and checkpoint saving
are not counted: they are not training. Only the Python standard library is used.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ship_model import svg_chart  # noqa: E402 (the same chart style as the model cards)

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def read_run(folders, assume_threads):
    """(train records, validation records), each with "cpu_minutes" over all phases, and whether
    any CPU time is an estimate."""
    train, validation, offset, estimated = [], [], 0.0, False
    step_offset, token_offset = 0, 0
    for folder in folders:
        path = os.path.join(folder, "metrics.jsonl")
        if not os.path.exists(path):
            sys.exit(f"compare_runs.py: {folder}: no metrics.jsonl")
        with open(path, encoding="utf-8") as f:
            records = [json.loads(line) for line in f if line.strip()]
        cpu_at_step, last = {0: 0.0}, 0.0
        for r in records:
            if r.get("type") != "train":
                continue
            if "cpu_seconds" in r:
                last = r["cpu_seconds"] / 60
            else:
                last, estimated = r["elapsed_seconds"] * assume_threads / 60, True
            cpu_at_step[r["step"]] = last
            train.append(dict(r, cpu_minutes=offset + last, all_steps=step_offset + r["step"],
                              all_tokens=token_offset + r["tokens_seen"]))
        for r in records:
            if r.get("type") == "validation":
                # At the last logged step at or before it (validations fall on logged steps).
                steps = [s for s in cpu_at_step if s <= r["step"]]
                validation.append(dict(r, cpu_minutes=offset + cpu_at_step[max(steps)]))
        offset += last
        if train:
            step_offset, token_offset = train[-1]["all_steps"], train[-1]["all_tokens"]
    return train, validation, estimated


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, metavar="NAME=RUN[,RUN2...]")
    parser.add_argument("--assume-threads", type=float, default=2.0)
    parser.add_argument("--svg", required=True)
    parser.add_argument("--md")
    args = parser.parse_args()
    runs = []
    for spec in args.run:
        name, _, folders = spec.partition("=")
        if not folders:
            sys.exit(f"compare_runs.py: --run {spec}: expected NAME=RUN")
        runs.append((name, *read_run(folders.split(","), args.assume_threads)))

    x_max = max(max((r["cpu_minutes"] for r in train), default=1) for _, train, _, _ in runs)
    x_max = max(10, 10 * round(x_max / 10 + 0.5))
    width, height = 760, 560
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           '<text x="380" y="20" text-anchor="middle" font-size="14">Validation loss and greedy precision against CPU minutes</text>']
    loss = [(name, COLOURS[i % len(COLOURS)], [(r["cpu_minutes"], r["validation_loss"]) for r in val])
            for i, (name, _, val, _) in enumerate(runs)]
    precision = [(name, COLOURS[i % len(COLOURS)], [(r["cpu_minutes"], r["validation_precision"]) for r in val])
                 for i, (name, _, val, _) in enumerate(runs)]
    y_loss = max(1.0, max((y for _, _, pts in loss for _, y in pts), default=1.0))
    out += svg_chart(70, 40, 660, 200, loss, "validation loss", round(y_loss + 0.5), x_max, [])
    out += svg_chart(70, 300, 660, 200, precision, "word precision", 1.0, x_max, [], y_percent=True)
    out.append(f'<text x="400" y="{height - 20}" text-anchor="middle">CPU minutes in training steps (all threads)</text>')
    out.append("</svg>")
    with open(args.svg, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")

    rows = ["| run | CPU minutes | steps | tokens | CPU s / step | validation loss | validation precision |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name, train, val, estimated in runs:
        if not train:
            continue
        last, final = train[-1], (val[-1] if val else {})
        mark = "~" if estimated else ""
        rows.append(f"| {name} | {mark}{last['cpu_minutes']:.0f} | {last['all_steps']} | {last['all_tokens'] / 1e6:.2f}M | "
                    f"{mark}{60 * last['cpu_minutes'] / last['all_steps']:.1f} | "
                    f"{final.get('validation_loss', float('nan')):.3f} | {100 * final.get('validation_precision', 0):.1f}% |")
    table = "\n".join(rows) + "\n"
    if args.md:
        with open(args.md, "w", encoding="utf-8") as f:
            f.write(table)
    sys.stdout.write(table)


if __name__ == "__main__":
    main()
