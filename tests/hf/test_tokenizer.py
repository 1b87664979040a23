"""`c3 tokenize` against the real tokenizers on the same texts: Hugging Face `tokenizers` with the
tokenizer.json transformers writes for Qwen2.5, and `tiktoken` with a qwen.tiktoken file in the
released C3 (GOT-OCR2.0) layout, on the llama.cpp Qwen2 vectors, an adversarial set, real prose
and code from the installed packages, and, when C3_FOX_JSON names Fox's en_page_ocr.json, the 112
Fox pages."""
import base64
import json
import os
import unicodedata
from pathlib import Path

import pytest

from conftest import C3, QWEN2_PATTERN, QWEN2_TOKENIZER, hf_qwen2_tokenizer, run

# The special tokens of the released C3 tokenizer (GOT-OCR2.0's QWenTokenizer) after the 151643 ranks.
GOT_SPECIALS = (["<|endoftext|>", "<|im_start|>", "<|im_end|>"] + [f"<|extra_{i}|>" for i in range(205)]
                + ["<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<img>", "</img>", "<imgpad>"])

ADVERSARIAL = [
    # special tokens inside text, whole, repeated, broken, nested
    "a<|im_end|>b", "<|im_start|>user\nhi<|im_end|>\n", "<|endoftext|><|endoftext|>", "<|im_end", "|im_end|>",
    "<<|im_end|>>", "<img><imgpad><imgpad></img>", "x<img>y</img>z", "<|extra_0|>", "<tool_call>{}</tool_call>",
    "<|vision_start|><|image_pad|>", " <|im_end|> ", "<|im_end|>\n\n<|im_start|>",
    # digits: the pre-tokenizer splits every digit
    "1" * 1000, "1234567890" * 40, "3.14159265358979323846", "-0.000001e+10", "１２３４５", "٣٤٥", "½ ¾ ²",
    # CJK, Korean, Japanese, Thai, Arabic, Hindi, mixed scripts
    "中文字符测试，包括标点。", "日本語のテキストとカタカナ", "한국어 텍스트", "ภาษาไทย", "العربية نص", "हिन्दी पाठ",
    "Mixed 中文 and English 和 العربية",
    # emoji: skin tones, ZWJ sequences, flags, keycaps
    "👍🏽", "👨‍👩‍👧‍👦 family", "🇩🇪🇯🇵", "1️⃣", "🤖🤖🤖", "e\u0301mojis 😀😃😄",
    # whitespace runs and unusual spaces
    "a" + " " * 100 + "b", "\t\t\n\n \r\n", "   leading", "trailing   ", "\n" * 50, " \n \n ", "x\u00a0y\u3000z\u2028w",
    "tabs\tand\tspaces  \t  mixed", "\r\r\r", " " * 5000,
    # normalisation: non-NFC input (combining marks), compatibility characters, ligatures
    "e\u0301 a\u0308 n\u0303", "Åström", "ﬁﬂﬀ ligatures", "Ⅻ ㎏ ﬃ", "\u1e9b\u0323",
    # contractions and case
    "I'LL DON'T we've they'd She's", "'s 's's", "rock'n'roll", "o'clock O'CLOCK",
    # code, punctuation, long words, control characters
    "def f(x):\n    return x**2  # comment\n", "a==b!=c<=d>=e", "!!!???...,,,;;;", "x" * 3000,
    "supercalifragilisticexpialidocious" * 20, "\x00\x01\x07\x1b[0m", "\ufeffBOM at start", "\ufffd replacement",
    "zero\u200bwidth\u200djoiner", "right-to-left \u202eevil\u202c",
]

# Bytes that are not UTF-8: c3 replaces each ill-formed sequence by U+FFFD as Python's "replace" does.
INVALID_UTF8 = [b"\xff\xfe", b"abc\xe2\x82", b"\xed\xa0\x80 surrogate", b"\xc0\xaf overlong", b"\xf4\x90\x80\x80",
                b"ok \x80\x80\x80 ok", b"\xe2\x82\xac\xe2\x82", b"tail\xf0\x9f\x98"]


def llamacpp_texts():
    data = (QWEN2_TOKENIZER / "llamacpp-ggml-vocab-qwen2.gguf.inp").read_text(encoding="utf-8")
    texts = data.split("\n__ggml_vocab_test__\n")
    assert texts[-1] == ""
    return texts[:-1]


def package_texts():
    """Real English prose and code that every machine with the test environment has."""
    import nltk
    import transformers

    files = [Path(transformers.__file__).parent / "models" / "qwen2" / "modeling_qwen2.py",
             Path(transformers.__file__).parent / "generation" / "logits_process.py",
             Path(nltk.__file__).parent / "translate" / "bleu_score.py",
             Path(__file__).resolve().parents[2] / "README.md"]
    texts = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        texts += [text[i: i + 4000] for i in range(0, len(text), 4000)]
    return texts


def fox_texts():
    path = os.environ.get("C3_FOX_JSON")
    if not path:
        return []
    pages = json.loads(Path(path).read_text(encoding="utf-8"))
    return [turn["value"] for page in pages for turn in page["conversations"] if turn["from"] == "gpt"]


TEXT_SETS = {"llama.cpp vectors": llamacpp_texts, "adversarial": lambda: ADVERSARIAL, "packages": package_texts,
             "fox": fox_texts}


def c3_tokenize_lines(tokenizer_path, texts, tmp_path, special=True):
    """special: special-token strings are those tokens (`--special`, HF's default); else ordinary text
    (c3's default, how compress, eval and train read documents)."""
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    (tmp_path / "texts.jsonl").write_text(lines, encoding="utf-8")
    out = run([C3, "tokenize", "--tokenizer", tokenizer_path, "--jsonl", tmp_path / "texts.jsonl"]
              + (["--special"] if special else []))
    return [json.loads(line)["ids"] for line in out.decode().splitlines()]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    hf_qwen2_tokenizer(folder)
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(folder / "tokenizer.json"))
    plain = Tokenizer.from_file(str(folder / "tokenizer.json"))
    plain.encode_special_tokens = True  # HF's split_special_tokens: special-token strings as text
    return (folder / "tokenizer.json", lambda text: hf.encode(text, add_special_tokens=False).ids,
            lambda text: plain.encode(text, add_special_tokens=False).ids)


@pytest.fixture(scope="module")
def qwen_tiktoken(tmp_path_factory):
    """qwen.tiktoken written from the same vocabulary (base64 bytes, rank), and tiktoken's Encoding
    over it with GOT's special tokens; GOT normalises to NFC before encoding, so the reference does too."""
    import tiktoken
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    vocab = json.loads((QWEN2_TOKENIZER / "vocab.json").read_text(encoding="utf-8"))
    ranks = {bytes(byte_of[c] for c in token): rank for token, rank in vocab.items()}
    path = tmp_path_factory.mktemp("tiktoken") / "qwen.tiktoken"
    path.write_text("".join(f"{base64.b64encode(b).decode()} {r}\n" for b, r in sorted(ranks.items(), key=lambda x: x[1])))
    specials = {t: len(ranks) + i for i, t in enumerate(GOT_SPECIALS)}
    enc = tiktoken.Encoding("qwen", pat_str=QWEN2_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
    return (path, lambda text: enc.encode(unicodedata.normalize("NFC", text), allowed_special="all"),
            lambda text: enc.encode(unicodedata.normalize("NFC", text), disallowed_special=()))


def compare(name, texts, got, want):
    assert len(got) == len(want) == len(texts)
    bad = [i for i in range(len(texts)) if got[i] != want[i]]
    print(f"{name}: {len(texts)} texts, {sum(len(t.encode()) for t in texts)} bytes, "
          f"{sum(len(w) for w in want)} tokens, {len(bad)} differ")
    assert not bad, f"{name}: first difference in text {bad[0]}: {texts[bad[0]][:80]!r}"


@pytest.mark.parametrize("text_set", list(TEXT_SETS))
@pytest.mark.parametrize("layout", ["tokenizer.json", "qwen.tiktoken"])
def test_c3_equals_the_reference_tokenizer(request, layout, text_set, tmp_path):
    """tokenizer.json against HF tokenizers; qwen.tiktoken against tiktoken."""
    path, encode, _ = request.getfixturevalue("tokenizer_json" if layout == "tokenizer.json" else "qwen_tiktoken")
    texts = TEXT_SETS[text_set]()
    if not texts:
        pytest.skip("C3_FOX_JSON is not set (Fox's en_page_ocr.json is not shipped with c3)")
    compare(f"{layout} / {text_set}", texts, c3_tokenize_lines(path, texts, tmp_path), [encode(t) for t in texts])


@pytest.mark.parametrize("layout", ["tokenizer.json", "qwen.tiktoken"])
def test_documents_read_special_token_strings_as_text(request, layout, tmp_path):
    """How c3 reads documents: "<|im_end|>" or "<img>" in a text are characters, as HF tokenizers with
    encode_special_tokens (split_special_tokens) and tiktoken with disallowed_special=() read them."""
    path, special, plain = request.getfixturevalue("tokenizer_json" if layout == "tokenizer.json" else "qwen_tiktoken")
    texts = ADVERSARIAL + llamacpp_texts()
    got = c3_tokenize_lines(path, texts, tmp_path, special=False)
    compare(f"{layout} / plain text", texts, got, [plain(t) for t in texts])
    assert sum(g != special(t) for g, t in zip(got, texts)) >= 5, "the texts with special-token strings differ"


@pytest.mark.parametrize("data", INVALID_UTF8, ids=range(len(INVALID_UTF8)))
def test_invalid_utf8_is_tokenized_as_its_replacement(tokenizer_json, data, tmp_path):
    path, encode, _ = tokenizer_json
    (tmp_path / "bad.txt").write_bytes(data)
    got = [int(t) for t in run([C3, "tokenize", "--tokenizer", path, tmp_path / "bad.txt"]).split()]
    assert got == encode(data.decode("utf-8", errors="replace"))
