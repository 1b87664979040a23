#!/usr/bin/env python3
"""Held-out evaluation spans for a C3 trained on the prose corpus (issue 15).

    heldout_spans.py CORPUS_DIR OUT.jsonl [--seed S] [--min-words 40] [--max-words 110]

Cuts every document of CORPUS_DIR/test/ (documents the training never saw) into consecutive
pieces of a seeded number of words in [min, max], each ending at a sentence end when one is near,
and writes one {"id", "text"} line per piece: the JSONL that `c3 eval` reads. `c3 eval
--min-tokens 64 --max-tokens 128 --bucket-width 16` then selects the pieces of 64-128 tokens with
the model's tokenizer and reports precision by compression ratio (tokens / N).
Only the Python standard library is used.
"""
import argparse
import json
import os
import random


def pieces(words, rng, low, high):
    start = 0
    while len(words) - start >= low:
        end = min(len(words), start + rng.randint(low, high))
        for back in range(0, min(15, end - start - low)):  # prefer a sentence end close before
            if words[end - 1 - back].endswith((".", "?", "!")):
                end -= back
                break
        yield " ".join(words[start:end])
        start = end


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-words", type=int, default=40)
    parser.add_argument("--max-words", type=int, default=110)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = os.path.join(args.corpus, "test")
    count = 0
    with open(args.out + ".partial", "w", encoding="utf-8") as out:
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                words = f.read().split()
            for k, text in enumerate(pieces(words, rng, args.min_words, args.max_words)):
                out.write(json.dumps({"id": f"{os.path.splitext(name)[0]}#{k}", "text": text}) + "\n")
                count += 1
    os.replace(args.out + ".partial", args.out)
    print(f"heldout_spans: {count} pieces from {folder} in {args.out}")


if __name__ == "__main__":
    main()
