"""c3's greedy decoding with the no-repeat 20-gram rule against transformers' generate(do_sample=False,
no_repeat_ngram_size=20): the same ids over a few hundred tokens, for one prompt and for a padded batch
(c3 pads on the right and decodes the batch together; HF pads on the left, its convention)."""
import torch

from conftest import generated_rows, left_padded, load_tensors, probe, random_qwen2, right_padded, save_tensors

MAX_NEW = 300
NO_REPEAT = 20


def hf_generate(model, rows, stop, no_repeat=NO_REPEAT):
    ids, mask = left_padded(rows)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1,
                             no_repeat_ngram_size=no_repeat, max_new_tokens=MAX_NEW, eos_token_id=stop,
                             pad_token_id=0, top_k=None, top_p=None, temperature=None)
    result = []
    for row in out[:, ids.shape[1]:].tolist():
        result.append(row[: row.index(stop)] if stop in row else row)
    return result


def choose_stop(generations):
    """A token standing in for <|im_end|>: one that row 0 first produces between tokens 100 and 250
    and the other rows not before 250, so one row stops part way and the others run long."""
    def first(row, token):
        return row.index(token) if token in row else len(row)
    for token in range(1, 512):
        if 100 <= first(generations[0], token) <= 250 and all(first(g, token) > 250 for g in generations[1:]):
            return token
    raise AssertionError("no token fits as the stop token; change the seed")


def c3_generate(tmp_path, rows, stop):
    ids, mask = right_padded(rows)
    save_tensors(tmp_path / "in.safetensors", {"input_ids": ids, "attention_mask": mask})
    probe("qwen2-generate", tmp_path / "model", tmp_path / "in.safetensors", tmp_path / "out.safetensors",
          MAX_NEW, NO_REPEAT, stop)
    return generated_rows(load_tensors(tmp_path / "out.safetensors")["generated"])


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def test_greedy_ids_equal_transformers_generate(tmp_path):
    model = random_qwen2(5, vocab_size=512)  # loops within ~20 tokens: the rule bans from there on
    model.save_pretrained(tmp_path / "model")
    g = torch.Generator().manual_seed(5)
    rows = [torch.randint(1, 512, (n,), generator=g).tolist() for n in (13, 4, 9)]
    never = model.config.vocab_size  # an id no step can produce
    stop = choose_stop([hf_generate(model, [r], stop=never)[0] for r in rows])

    want_alone = [hf_generate(model, [r], stop)[0] for r in rows]
    want_batch = hf_generate(model, rows, stop)
    assert want_batch == want_alone, "HF's own left-padded batch should equal its single prompts"
    assert len(want_alone[0]) < 250 and min(len(r) for r in want_alone[1:]) > 250
    # The rule must be doing something: without it, every row's greedy decoding differs early on.
    free = [hf_generate(model, [r], stop, no_repeat=0)[0] for r in rows]
    assert all(first_difference(f, w) is not None and first_difference(f, w) < 50 for f, w in zip(free, want_alone))

    got_alone = c3_generate(tmp_path, rows[:1], stop)
    got_batch = c3_generate(tmp_path, rows, stop)
    print("lengths:", [len(r) for r in want_alone])
    assert got_alone[0] == want_alone[0], f"batch 1 differs at token {first_difference(got_alone[0], want_alone[0])}"
    for r, (got, want) in enumerate(zip(got_batch, want_alone)):
        assert got == want, f"padded batch row {r} differs at token {first_difference(got, want)}"
