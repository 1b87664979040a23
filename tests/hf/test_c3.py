"""A tiny C3 in the released layout, run the way the authors' code runs it (spec sections 1-2) on top
of transformers' Qwen2 modules (c3_reference.py), against c3: encoder input layout, latents, decoder
input layout, decoder logits and greedy reconstruction ids (fp32); then the c3 command line on the
same checkpoint: `c3 compress` latent files opened with the safetensors package, and
`c3 reconstruct` text."""
import pytest
import torch
from safetensors import safe_open

from c3_reference import AuthorsC3, decoder_prompt
from conftest import (C3, generated_rows, hf_qwen2_tokenizer, load_tensors, perturb_parameters, probe, qwen2_config,
                      rel_err, right_padded, run, save_tensors)

N = 8  # latent tokens
MAX_NEW = 120
TOLERANCE = 1e-5
IMAGE_TOKENS = ["<imgpad>", "<img>", "</img>"]
TEXTS = [
    "Context cascade compression reads a text and leaves a handful of latent vectors behind.",
    "Short one.",
    "The decoder regenerates the text from the latents; errors gather at the end of long pages, "
    "which the paper calls sequential information loss (about 93% at 40x).",
]


def tiny_authors_c3(tokenizer, seed):
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(seed)
    vocab = len(tokenizer)
    encoder = Qwen2ForCausalLM(qwen2_config(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                            num_attention_heads=2, num_key_value_heads=1))
    decoder = Qwen2ForCausalLM(qwen2_config(vocab_size=vocab, hidden_size=48, intermediate_size=96,
                                            num_attention_heads=3, num_key_value_heads=1))
    for i, m in enumerate((encoder, decoder)):
        m.float().eval().config._attn_implementation = "eager"
        perturb_parameters(m, seed + i)
    special = {t: tokenizer.convert_tokens_to_ids(t) for t in IMAGE_TOKENS + ["<|im_end|>"]}
    return AuthorsC3(encoder, decoder, N, special, tokenizer(decoder_prompt(N))["input_ids"], seed=seed).eval()


@pytest.fixture(scope="module")
def c3_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("c3")
    tokenizer = hf_qwen2_tokenizer(root / "tokenizer", IMAGE_TOKENS)
    assert tokenizer.convert_tokens_to_ids(IMAGE_TOKENS) == [151665, 151666, 151667]
    model = tiny_authors_c3(tokenizer, seed=21)
    model.save_released_layout(root / "model")
    hf_qwen2_tokenizer(root / "model", IMAGE_TOKENS)
    texts = [tokenizer(t)["input_ids"] for t in TEXTS]
    reference = []
    with torch.no_grad():
        for ids in texts:  # one text at a time, no padding: the authors' path at its plainest
            z = model.latents([ids])
            dec_ids = torch.tensor([model.prompt_ids + ids + [model.im_end]])
            reference.append({"encoder_ids": model.encoder_ids(ids), "latents": z[0], "decoder_ids": dec_ids[0],
                              "decoder_logits": model.decoder(inputs_embeds=model.decoder_embeds(dec_ids, z)).logits[0],
                              "generated": model.generate(z, MAX_NEW)[0]})
    ids, mask = right_padded(texts)
    save_tensors(root / "in.safetensors", {"text_ids": ids, "text_mask": mask})
    probe("c3", root / "model", root / "in.safetensors", root / "out.safetensors", MAX_NEW)
    return {"root": root, "model": model, "tokenizer": tokenizer, "texts": texts, "reference": reference,
            "c3": load_tensors(root / "out.safetensors")}


def test_input_layouts_match_the_authors(c3_model):
    c3, tok = c3_model["c3"], c3_model["tokenizer"]
    for r, (text, ref) in enumerate(zip(TEXTS, c3_model["reference"])):
        enc, dec = ref["encoder_ids"], ref["decoder_ids"].tolist()
        assert c3["encoder_ids"][r, : len(enc)].tolist() == enc
        assert c3["decoder_ids"][r, : len(dec)].tolist() == dec
        assert c3["decoder_mask"][r].sum().item() == len(dec)
        # and the decoder sequence is the tokenization of the whole conversation string
        assert dec == tok(decoder_prompt(N) + text + "<|im_end|>")["input_ids"]


def test_latents_and_decoder_logits_match(c3_model):
    c3 = c3_model["c3"]
    for r, ref in enumerate(c3_model["reference"]):
        latent_err = rel_err(c3["latents"][r], ref["latents"])
        n = ref["decoder_logits"].shape[0]
        logits_err = rel_err(c3["decoder_logits"][r, :n], ref["decoder_logits"])
        print(f"text {r}: latents {latent_err:.2e}, decoder logits {logits_err:.2e}")
        assert latent_err < TOLERANCE
        assert logits_err < TOLERANCE


def test_greedy_reconstruction_ids_are_identical(c3_model):
    got = generated_rows(c3_model["c3"]["generated"])
    for r, ref in enumerate(c3_model["reference"]):
        assert len(ref["generated"]) > 20
        assert got[r] == ref["generated"], f"text {r}"


def test_compress_writes_latents_safetensors_reads_and_reconstruct_writes_the_text(c3_model, tmp_path):
    model_dir = c3_model["root"] / "model"
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(TEXTS):
        (docs / f"d{i}.txt").write_text(text, encoding="utf-8")
    run([C3, "--threads", "1", "compress", "-m", model_dir, docs, "-o", tmp_path / "latents"])
    run([C3, "--threads", "1", "reconstruct", "-m", model_dir, tmp_path / "latents", "-o", tmp_path / "out",
         "--max-new-tokens", MAX_NEW])
    tok = c3_model["tokenizer"]
    for i, ref in enumerate(c3_model["reference"]):
        with safe_open(str(tmp_path / "latents" / f"d{i}.txt.c3"), framework="pt") as f:
            assert f.metadata()["format"] == "c3-latents"
            assert list(f.keys()) == ["latents"]
            latents = f.get_tensor("latents")
        assert latents.dtype == torch.float32 and tuple(latents.shape) == (1, N, 48)
        assert rel_err(latents[0], ref["latents"]) < TOLERANCE
        # Spec section 2: decode without skipping special tokens, strip, drop a trailing <|im_end|>, strip.
        text = tok.decode(ref["generated"], skip_special_tokens=False).strip()
        text = text.removesuffix("<|im_end|>").strip()
        assert (tmp_path / "out" / f"d{i}.txt").read_text(encoding="utf-8") == text
