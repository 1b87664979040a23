#!/usr/bin/env python3
"""Picks the held-out prose that the repository ships (issue 15): the main job's sample folder and
the round-trip test's pieces.

    pick_samples.py TEST_SPANS.jsonl C3 TOKENIZER --samples data/samples --test tests/data/prose-heldout.jsonl

Only pieces of the Python documentation's test documents are taken (PSF licence, which allows
redistribution with its notice; the Linux and Perl pieces are GPL/Artistic). The rule, fixed before
any model was scored on them: in file order, the first pieces of 64-128 tokens (counted with
TOKENIZER) of each such document, at most 8 per document for the test and the first 2 per document
for the samples. Only the Python standard library is used.
"""
import argparse
import json
import os
import subprocess

# The python3.11-doc files in test/, and the names their samples get.
PYTHON_DOCS = {"rst-02094": "c-api-stable", "rst-02210": "email-contentmanager", "rst-02356": "threading",
               "rst-02457": "whatsnew-3.8"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spans")
    parser.add_argument("c3")
    parser.add_argument("tokenizer")
    parser.add_argument("--samples", required=True)
    parser.add_argument("--test", required=True)
    args = parser.parse_args()
    with open(args.spans, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.split('"id": "')[1].startswith(tuple(PYTHON_DOCS))]
    counts = subprocess.run([args.c3, "tokenize", "--tokenizer", args.tokenizer, "--jsonl", "--count"], check=True,
                            capture_output=True, text=True, input="".join(json.dumps(r) + "\n" for r in rows)).stdout
    taken = {}
    test, samples = [], []
    for row, line in zip(rows, counts.splitlines()):
        doc = row["id"].split("#")[0]
        if not 64 <= json.loads(line)["count"] <= 128 or taken.get(doc, 0) >= 8:
            continue
        taken[doc] = taken.get(doc, 0) + 1
        test.append(row)
        if taken[doc] <= 2:
            samples.append(row)
    with open(args.test, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in test)
    os.makedirs(args.samples, exist_ok=True)
    for row in samples:
        doc, piece = row["id"].split("#")
        with open(os.path.join(args.samples, f"{PYTHON_DOCS[doc]}-{piece}.txt"), "w", encoding="utf-8") as f:
            f.write(row["text"] + "\n")
    print(f"pick_samples.py: {len(test)} test pieces, {len(samples)} samples")


if __name__ == "__main__":
    main()
