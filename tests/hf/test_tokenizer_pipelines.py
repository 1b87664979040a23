"""Any tokenizer.json, not only Qwen2's: `c3 tokenize` against Hugging Face `tokenizers` on tokenizers
built here with the `tokenizers` library itself (no real Llama or GPT-2 file ships with c3, so each
is trained on package text and given the pipeline its family uses): a Llama-3 style (its Split regex,
ignore_merges, BOS by TemplateProcessing), GPT-2 style (ByteLevel with add_prefix_space and its
regex), Llama-2 style in both of HF's spellings (Metaspace or Prepend+Replace, byte_fallback,
unk_token, the ByteFallback decoder chain), a WordPiece-like BPE (continuing_subword_prefix,
end_of_word_suffix, NFKC, Lowercase, Whitespace, Digits, BertProcessing) and every Split behaviour.
Ids, ids with the post-processor's tokens, and decoded text must all be identical."""
import collections
import json

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

from conftest import C3, run
from test_tokenizer import ADVERSARIAL, compare, fox_texts, llamacpp_texts, package_texts

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                  r"\s*[\r\n]+|\s+(?!\S)|\s+")
TEXT_SETS = {"adversarial": lambda: ADVERSARIAL, "llama.cpp vectors": llamacpp_texts, "packages": package_texts,
             "fox": fox_texts}


def from_doc(doc):
    return Tokenizer.from_str(json.dumps(doc))


def byte_level_vocabulary():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>", "<|begin_of_text|>"], show_progress=False)
    tok.train_from_iterator(package_texts(), trainer)
    return tok


def metaspace_vocabulary():
    """Characters outside the 150 most frequent fall back to <0xXX> tokens (or <unk>)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    trainer = trainers.BpeTrainer(vocab_size=2000, limit_alphabet=150, special_tokens=["<unk>", "<s>", "</s>"],
                                  show_progress=False)
    tok.train_from_iterator(package_texts(), trainer)
    doc = json.loads(tok.to_str())
    vocab = doc["model"]["vocab"]
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    doc["model"].update(byte_fallback=True, fuse_unk=True)
    doc["post_processor"] = json.loads(processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", vocab["<s>"])]).__getstate__())
    return doc


def llama3(tok):
    """As in Llama 3, some vocabulary tokens are words no merge sequence reaches: with ignore_merges a
    pre-token that is one of them is that token."""
    doc = json.loads(tok.to_str())
    doc["model"]["ignore_merges"] = True
    vocab = doc["model"]["vocab"]
    split = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    counts = collections.Counter(p for t in package_texts() for p, _ in split.pre_tokenize_str(t))
    for word in [w for w, _ in counts.most_common() if w not in vocab][:20]:
        vocab[word] = max(vocab.values()) + 1
    t = from_doc(doc)
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    t.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])
    return t


def gpt2(tok):
    t = from_doc(json.loads(tok.to_str()))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    t.post_processor = processors.ByteLevel(trim_offsets=True)
    return t


def llama2_metaspace(doc):
    t = from_doc(doc)
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    return t


def llama2_legacy(doc):
    """transformers' legacy Llama tokenizer.json: the spaces are the normalizer's, no pre-tokenizer."""
    doc = dict(doc, pre_tokenizer=None)
    t = from_doc(doc)
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(content=" ", left=1, right=0)])
    return t


def metaspace_split_always(doc):
    t = from_doc(doc)
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    t.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return t


def subword_affixes():
    tok = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                           normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(),
                                                 pre_tokenizers.Digits(individual_digits=True)])
    trainer = trainers.BpeTrainer(vocab_size=2000, limit_alphabet=120, continuing_subword_prefix="##",
                                  end_of_word_suffix="</w>", special_tokens=["[UNK]", "[CLS]", "[SEP]"],
                                  show_progress=False)
    tok.train_from_iterator(package_texts(), trainer)
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    tok.post_processor = processors.BertProcessing(("[SEP]", tok.token_to_id("[SEP]")),
                                                   ("[CLS]", tok.token_to_id("[CLS]")))
    return tok


def with_pre_tokenizer(tok, pre, normalizer=None):
    t = from_doc(json.loads(tok.to_str()))
    t.pre_tokenizer = pre_tokenizers.Sequence([pre, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    if normalizer is not None:
        t.normalizer = normalizer
    return t


SPLITS = {f"split {b}{' inverted' if inv else ''}": (Regex(r"\s+|[.,;:!?]"), b, inv)
          for b in ["removed", "isolated", "merged_with_previous", "merged_with_next", "contiguous"]
          for inv in (False, True)}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    byte_level = byte_level_vocabulary()
    metaspace = metaspace_vocabulary()
    built = {"llama-3 style": llama3(byte_level), "gpt-2 style": gpt2(byte_level),
             "llama-2 style (Metaspace)": llama2_metaspace(metaspace),
             "llama-2 style (legacy normalizer)": llama2_legacy(metaspace),
             "Metaspace split, always": metaspace_split_always(metaspace), "subword affixes": subword_affixes()}
    for name, (pattern, behavior, invert) in SPLITS.items():
        built[name] = with_pre_tokenizer(byte_level, pre_tokenizers.Split(pattern, behavior=behavior, invert=invert))
    built["split on a string, digits"] = with_pre_tokenizer(
        byte_level, pre_tokenizers.Sequence([pre_tokenizers.Split(" ", behavior="merged_with_next"),
                                             pre_tokenizers.Digits(individual_digits=False)]))
    built["NFKC, prepend, whitespace split"] = with_pre_tokenizer(
        byte_level, pre_tokenizers.WhitespaceSplit(),
        normalizers.Sequence([normalizers.NFKC(), normalizers.Prepend("> "), normalizers.Replace("e", "E")]))
    built["NFD, NFKD, strip"] = with_pre_tokenizer(
        byte_level, pre_tokenizers.Split(Regex(r"\p{L}+"), behavior="isolated"),
        normalizers.Sequence([normalizers.NFKD(), normalizers.NFD(), normalizers.Strip(left=True, right=False)]))
    folder = tmp_path_factory.mktemp("pipelines")
    files = {}
    for i, (name, tok) in enumerate(built.items()):
        files[name] = folder / f"{i}.json"
        tok.save(str(files[name]))
    return {name: (files[name], tok) for name, tok in built.items()}


NAMES = ["llama-3 style", "gpt-2 style", "llama-2 style (Metaspace)", "llama-2 style (legacy normalizer)",
         "Metaspace split, always", "subword affixes", *SPLITS, "split on a string, digits",
         "NFKC, prepend, whitespace split", "NFD, NFKD, strip"]


def c3_lines(args, records, tmp_path):
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = run([C3, "tokenize", *args, "--jsonl", tmp_path / "in.jsonl"])
    # split on "\n" only: decoded texts may hold U+2028, which str.splitlines() also splits on
    return [json.loads(line) for line in out.decode().split("\n") if line]


@pytest.mark.parametrize("text_set", list(TEXT_SETS))
@pytest.mark.parametrize("name", NAMES)
def test_ids_and_text_equal_hf_tokenizers(tokenizers, name, text_set, tmp_path):
    path, hf = tokenizers[name]
    texts = TEXT_SETS[text_set]()
    if not texts:
        pytest.skip("C3_FOX_JSON is not set (Fox's en_page_ocr.json is not shipped with c3)")
    want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    got = [r["ids"] for r in c3_lines(["--tokenizer", path, "--special"], [{"text": t} for t in texts], tmp_path)]
    compare(f"{name} / {text_set}", texts, got, want)
    # The post-processor's tokens (BOS, CLS/SEP) where it has them.
    want_special = [e.ids for e in hf.encode_batch(texts, add_special_tokens=True)]
    got_special = [r["ids"] for r in c3_lines(["--tokenizer", path, "--special", "--add-special-tokens"],
                                              [{"text": t} for t in texts], tmp_path)]
    compare(f"{name} / {text_set} + special tokens", texts, got_special, want_special)
    # Decoding HF's ids, special tokens kept and skipped.
    for skip in (False, True):
        decoded = [r["text"] for r in c3_lines(["--tokenizer", path, "--decode"] + (["--skip-special"] if skip else []),
                                               [{"ids": ids} for ids in want_special], tmp_path)]
        want_text = hf.decode_batch(want_special, skip_special_tokens=skip)
        compare(f"{name} / {text_set} decoded", texts, decoded, want_text)


def test_the_pipelines_are_not_trivial(tokenizers):
    """The variants exercise what they claim: fallback bytes, unknown tokens, BOS, ignore_merges."""
    _, llama2 = tokenizers["llama-2 style (Metaspace)"]
    ids = llama2.encode("日本語 ok").ids
    assert any(llama2.id_to_token(i).startswith("<0x") for i in ids)
    _, affixes = tokenizers["subword affixes"]
    assert affixes.token_to_id("[UNK]") in affixes.encode("日本語 ok").ids
    _, l3 = tokenizers["llama-3 style"]
    assert l3.encode("hello").ids[0] == l3.token_to_id("<|begin_of_text|>")
    plain = from_doc(dict(json.loads(l3.to_str()), model=dict(json.loads(l3.to_str())["model"], ignore_merges=False)))
    texts = package_texts()
    assert sum(plain.encode(t).ids != l3.encode(t).ids for t in texts) > 0, "ignore_merges changes no text"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(normalizer={"type": "Precompiled", "precompiled_charsmap": ""}), "normalizer 'Precompiled'"),
    (lambda d: d.update(pre_tokenizer={"type": "UnicodeScripts"}), "pre_tokenizer 'UnicodeScripts'"),
    (lambda d: d.update(decoder={"type": "CTC"}), "decoder 'CTC'"),
    (lambda d: d["model"].update(type="Unigram"), "model type 'Unigram'"),
    (lambda d: d["model"].update(dropout=0.1), "dropout"),
    (lambda d: d["model"].update(unk_token="<nope>"), "unk_token '<nope>'"),
    (lambda d: d["added_tokens"][0].update(single_word=True), "single_word"),
    (lambda d: d.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}),
     "does not compile"),
])
def test_what_c3_does_not_implement_is_refused_by_name(tokenizers, edit, message, tmp_path):
    path, _ = tokenizers["llama-3 style"]
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    out = run([C3, "tokenize", "--tokenizer", bad], input_bytes=b"hello", expect_status=1)
    assert out == b""
    done = __import__("subprocess").run([C3, "tokenize", "--tokenizer", bad], input=b"hello", capture_output=True)
    err = done.stderr.decode()
    assert message in err and str(bad) in err and len(err.strip().splitlines()) == 1, err
