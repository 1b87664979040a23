"""`c3 eval --score` against the Fox metrics computed with NLTK the way Fox's official script
(eval_tools/eval_ocr_test.py) computes them, on perturbed page pairs: every metric to 1e-9.

The script calls its per-page function with (label, answer) bound to parameters named (pred, gt),
so NLTK sees the model output as the reference and the ground truth as the hypothesis; the
reference scorer below keeps that order, which is what makes `precision` |GT ∩ OUT| / |GT|."""
import json
import os
import random
from pathlib import Path

import nltk
import pytest
from nltk.metrics import f_measure, precision, recall

from conftest import C3, run

TOLERANCE = 1e-9
# NLTK warns on every BLEU with a zero n-gram count; that is the expected method0 behaviour here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:nltk.translate.bleu_score")


def official_metrics(label, answer):
    """Fox's cal_per_metrics for English pages, with its argument binding (pred=label, gt=answer);
    None where NLTK returns None or the script would divide by zero. METEOR is left out: c3 does
    not compute it (it needs WordNet, which NLTK downloads at run time)."""
    pred, gt = label, answer
    reference, hypothesis = gt.split(), pred.split()
    metrics = {"bleu": nltk.translate.bleu([reference], hypothesis)}
    reference, hypothesis = set(reference), set(hypothesis)
    metrics["f1"] = f_measure(reference, hypothesis)
    metrics["precision"] = precision(reference, hypothesis)
    metrics["recall"] = recall(reference, hypothesis)
    longest = max(len(pred), len(gt))
    metrics["edit_distance"] = nltk.edit_distance(pred, gt) / longest if longest else None
    return metrics


def base_pages():
    """Prose and code pages of 100-700 characters (NLTK's edit distance is a Python double loop)."""
    import transformers

    sources = [Path(nltk.__file__).parent / "translate" / "bleu_score.py",
               Path(transformers.__file__).parent / "generation" / "logits_process.py",
               Path(__file__).resolve().parents[2] / "README.md"]
    rng = random.Random(7)
    pages = []
    for source in sources:
        text = source.read_text(encoding="utf-8")
        for _ in range(8):
            start = rng.randrange(0, len(text) - 800)
            pages.append(text[start: start + rng.randrange(100, 700)])
    fox = os.environ.get("C3_FOX_JSON")
    if fox:  # optional: Fox pages (not shipped with c3), cut for the same reason
        for page in json.loads(Path(fox).read_text(encoding="utf-8"))[::6]:
            pages.append(page["conversations"][1]["value"][:700])
    return pages


def perturbations(page, rng):
    words = page.split()
    def with_words(ws):
        return " ".join(ws)
    def edit_chars(text, rate):
        chars = list(text)
        for i in range(len(chars)):
            if rng.random() < rate:
                chars[i] = rng.choice("abcdefghijklmnopqrstuvwxyz .,")
        return "".join(chars)
    n = len(words)
    yield "identical", page
    yield "drop 5% of words", with_words([w for w in words if rng.random() > 0.05])
    yield "substitute 3% of words", with_words([w if rng.random() > 0.03 else w[::-1] + "x" for w in words])
    yield "swap neighbours", with_words([words[i ^ 1] if (i ^ 1) < n else words[i] for i in range(n)])
    yield "shuffle words", with_words(rng.sample(words, n))
    yield "cut at 80%", page[: int(len(page) * 0.8)]
    yield "first ten words", with_words(words[:10])
    yield "repetition loop", with_words((words[: max(1, n // 5)] * 8)[: 2 * n])
    yield "page twice", page + "\n" + page
    yield "lower case", page.lower()
    yield "whitespace changed", page.replace("\n", " \u00a0").replace(" ", "  ", 3) + "\u3000end"
    yield "typos (2% of characters)", edit_chars(page, 0.02)
    yield "punctuation only", "... , ; !"
    yield "single word", words[0] if words else "x"


def pairs():
    rng = random.Random(11)
    out = []
    for p, page in enumerate(base_pages()):
        for name, answer in perturbations(page, rng):
            out.append({"id": f"{p}:{name}", "label": page, "answer": answer})
    # edges: empty sides (the script divides by zero or NLTK returns None there)
    out += [{"id": "empty answer", "label": "some words here", "answer": ""},
            {"id": "empty label", "label": "", "answer": "some words here"},
            {"id": "both empty", "label": "", "answer": ""},
            {"id": "whitespace answer", "label": "a b", "answer": " \n\t "}]
    return out


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    records = pairs()
    path = tmp_path_factory.mktemp("score") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    lines = run([C3, "eval", "--score", path, "--per-page"]).decode().splitlines()
    got = [json.loads(line) for line in lines]
    assert len(got) == len(records) + 1  # one line per page, then the summary
    official = [official_metrics(r["label"], r["answer"]) for r in records]
    return records, official, got[:-1], got[-1]


def test_every_metric_equals_nltk_as_the_official_script_computes_it(scored):
    records, official, got, _ = scored
    compared, worst = 0, 0.0
    for record, reference, c3 in zip(records, official, got):
        assert c3["id"] == record["id"]
        for metric, value in reference.items():
            if value is None:
                continue
            diff = abs(c3[metric] - value)
            worst = max(worst, diff)
            compared += 1
            assert diff <= TOLERANCE, f"{record['id']}: {metric} c3 {c3[metric]!r} NLTK {value!r}"
    print(f"{len(records)} pairs, {compared} metric values compared, largest difference {worst:.3g}")
    assert compared > 5 * 300


def test_where_nltk_has_no_value_c3_scores_one_for_two_empty_sides_else_zero(scored):
    records, official, got, _ = scored
    seen = 0
    for record, reference, c3 in zip(records, official, got):
        for metric, value in reference.items():
            if value is None:
                both_empty = not record["label"].split() and not record["answer"].split()
                if metric == "edit_distance":
                    assert c3[metric] == 0.0  # both strings empty: nothing to edit
                else:
                    assert c3[metric] == (1.0 if both_empty else 0.0), f"{record['id']}: {metric}"
                seen += 1
    assert seen >= 4


def test_summary_is_the_mean_over_pages(scored):
    records, _, got, summary = scored
    assert summary["pages"] == len(records)
    for metric in ("precision", "recall", "f1", "bleu", "edit_distance"):
        assert abs(summary[metric] - sum(g[metric] for g in got) / len(got)) <= TOLERANCE
