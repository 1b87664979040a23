"""A tiny C3 in the released layout, run the way the authors' code runs it (spec sections 1-2) on top
of transformers' Qwen2 modules, against c3: encoder input layout, latents, decoder input layout,
decoder logits and greedy reconstruction ids (fp32); then the c3 command line on the same checkpoint:
`c3 compress` latent files opened with the safetensors package, and `c3 reconstruct` text."""
import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import (generated_rows, hf_qwen2_tokenizer, load_tensors, perturb_parameters, probe, qwen2_config,
                      rel_err, right_padded, run, save_tensors, C3)

N = 8  # latent tokens
MAX_NEW = 120
TOLERANCE = 1e-5
PROMPT = ("<|im_start|>system\nYou should follow the instructions carefully and explain your answers in detail."
          "<|im_end|><|im_start|>user\n<img>" + "<imgpad>" * N + "</img>\nRepeat the text: <|im_end|>"
          "<|im_start|>assistant\n")
TEXTS = [
    "Context cascade compression reads a text and leaves a handful of latent vectors behind.",
    "Short one.",
    "The decoder regenerates the text from the latents; errors gather at the end of long pages, "
    "which the paper calls sequential information loss (about 93% at 40x).",
]


class AuthorsC3(torch.nn.Module):
    """C3 as spec section 1 describes the authors' model, built from transformers' Qwen2 modules."""

    def __init__(self, tokenizer, seed):
        super().__init__()
        from transformers import Qwen2ForCausalLM

        torch.manual_seed(seed)
        vocab = len(tokenizer)
        self.encoder = Qwen2ForCausalLM(qwen2_config(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                                     num_attention_heads=2, num_key_value_heads=1)).float().eval()
        self.decoder = Qwen2ForCausalLM(qwen2_config(vocab_size=vocab, hidden_size=48, intermediate_size=96,
                                                     num_attention_heads=3, num_key_value_heads=1)).float().eval()
        for i, m in enumerate((self.encoder, self.decoder)):
            m.config._attn_implementation = "eager"
            perturb_parameters(m, seed + i)
        self.Q = torch.nn.Parameter(torch.randn(N, 32) * 0.5)
        self.mm_projector = torch.nn.Linear(32, 48, bias=True)
        self.tok = tokenizer
        self.img, self.imgpad, self.img_end, self.im_end = tokenizer.convert_tokens_to_ids(
            ["<img>", "<imgpad>", "</img>", "<|im_end|>"])

    def encoder_ids(self, text_ids):
        return text_ids + [self.img] + [self.imgpad] * N + [self.img_end]

    def latents(self, text_ids):
        ids = torch.tensor([self.encoder_ids(text_ids)])
        embeds = self.encoder.get_input_embeddings()(ids)
        slots = ids[0] == self.imgpad
        embeds[0, slots] = self.Q
        states = self.encoder.model(inputs_embeds=embeds).last_hidden_state[0, slots]  # after the final norm
        return self.mm_projector(states)

    def decoder_inputs(self, latents, text_ids=None):
        ids = self.tok(PROMPT)["input_ids"] + ([] if text_ids is None else text_ids + [self.im_end])
        ids = torch.tensor([ids])
        embeds = self.decoder.get_input_embeddings()(ids)
        embeds[0, ids[0] == self.imgpad] = latents
        return ids, embeds

    def save_released_layout(self, folder):
        """Root: decoder + model.Q.weight + model.mm_projector.* with model_type C3; llm1/: the encoder."""
        folder.mkdir()
        self.encoder.save_pretrained(folder / "llm1")
        tensors = {k: v.contiguous() for k, v in self.decoder.state_dict().items()
                   if not (k == "lm_head.weight" and self.decoder.config.tie_word_embeddings)}
        tensors["model.Q.weight"] = self.Q.detach().clone()
        tensors["model.mm_projector.weight"] = self.mm_projector.weight.detach().clone()
        tensors["model.mm_projector.bias"] = self.mm_projector.bias.detach().clone()
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        config = self.decoder.config.to_dict()
        config.update(model_type="C3", architectures=["C3QwenForCausalLM"], latent_token_len=N,
                      contexts_compression_llm_hidden_size=32)
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        hf_qwen2_tokenizer(folder, ["<imgpad>", "<img>", "</img>"])


@pytest.fixture(scope="module")
def c3_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("c3")
    tokenizer = hf_qwen2_tokenizer(root / "tokenizer", ["<imgpad>", "<img>", "</img>"])
    assert tokenizer.convert_tokens_to_ids(["<imgpad>", "<img>", "</img>"]) == [151665, 151666, 151667]
    model = AuthorsC3(tokenizer, seed=21)
    model.save_released_layout(root / "model")
    texts = [tokenizer(t)["input_ids"] for t in TEXTS]
    with torch.no_grad():
        reference = []
        for ids in texts:
            z = model.latents(ids)
            dec_ids, dec_embeds = model.decoder_inputs(z, ids)
            prompt_ids, prompt_embeds = model.decoder_inputs(z)
            out = model.decoder.generate(input_ids=prompt_ids, inputs_embeds=prompt_embeds, do_sample=False,
                                         num_beams=1, no_repeat_ngram_size=20, max_new_tokens=MAX_NEW,
                                         eos_token_id=model.im_end, pad_token_id=model.im_end, top_k=None,
                                         top_p=None, temperature=None)
            assert out[0, : prompt_ids.shape[1]].tolist() == prompt_ids[0].tolist()  # the prompt, then new ids
            generated = out[0, prompt_ids.shape[1]:].tolist()
            generated = generated[: generated.index(model.im_end)] if model.im_end in generated else generated
            reference.append({"encoder_ids": model.encoder_ids(ids), "latents": z, "decoder_ids": dec_ids[0],
                              "decoder_logits": model.decoder(inputs_embeds=dec_embeds).logits[0],
                              "generated": generated})
    ids, mask = right_padded(texts)
    save_tensors(root / "in.safetensors", {"text_ids": ids, "text_mask": mask})
    probe("c3", root / "model", root / "in.safetensors", root / "out.safetensors", MAX_NEW)
    return {"root": root, "model": model, "tokenizer": tokenizer, "texts": texts, "reference": reference,
            "c3": load_tensors(root / "out.safetensors")}


def test_input_layouts_match_the_authors(c3_model):
    c3 = c3_model["c3"]
    for r, ref in enumerate(c3_model["reference"]):
        enc, dec = ref["encoder_ids"], ref["decoder_ids"].tolist()
        assert c3["encoder_ids"][r, : len(enc)].tolist() == enc
        assert c3["decoder_ids"][r, : len(dec)].tolist() == dec
        assert c3["decoder_mask"][r].sum().item() == len(dec)


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
