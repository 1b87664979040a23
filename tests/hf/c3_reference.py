"""C3 as the authors' code runs it (spec sections 1-2), on top of Hugging Face transformers' Qwen2
modules: the reference that tests/hf/test_c3.py checks c3 against and bench/vs_hf.py measures c3
beside. Token ids come in and go out; the tokenizer is the caller's."""
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

# The "mpt" prompt (spec section 1.5) with N <imgpad> between <img> and </img>.
PROMPT = ("<|im_start|>system\nYou should follow the instructions carefully and explain your answers in detail."
          "<|im_end|><|im_start|>user\n<img>{pads}</img>\nRepeat the text: <|im_end|><|im_start|>assistant\n")
IGNORE_INDEX = -100
QWEN2_TOKENIZER = Path(__file__).resolve().parents[1] / "data" / "qwen2-tokenizer"


def decoder_prompt(latent_tokens):
    return PROMPT.format(pads="<imgpad>" * latent_tokens)


class AuthorsC3(torch.nn.Module):
    """encoder (Qwen2ForCausalLM), Q [N, He], projector Linear(He, Hd) with bias, decoder.
    `special`: ids of <img>, <imgpad>, </img>, <|im_end|>; `prompt_ids`: the decoder prompt's ids."""

    def __init__(self, encoder, decoder, latent_tokens, special, prompt_ids, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.encoder, self.decoder, self.n = encoder, decoder, latent_tokens
        he, hd = encoder.config.hidden_size, decoder.config.hidden_size
        self.Q = torch.nn.Parameter(torch.randn(latent_tokens, he, generator=g) * 0.5)
        self.mm_projector = torch.nn.Linear(he, hd, bias=True)
        self.img, self.imgpad, self.img_end, self.im_end = (special[k] for k in ("<img>", "<imgpad>", "</img>", "<|im_end|>"))
        self.prompt_ids = list(prompt_ids)
        assert self.prompt_ids.count(self.imgpad) == latent_tokens

    def encoder_ids(self, text_ids):
        return list(text_ids) + [self.img] + [self.imgpad] * self.n + [self.img_end]

    def latents(self, texts):
        """Texts (lists of ids) -> [B, N, Hd]: a right-padded encoder batch, Q in the N slots of each
        row, the final-norm states at the slots through the projector."""
        rows = [self.encoder_ids(t) for t in texts]
        ids, mask = (x.to(self.Q.device) for x in right_padded(rows))
        embeds = self.encoder.get_input_embeddings()(ids)
        slots = ids == self.imgpad
        embeds[slots] = self.Q.repeat(len(rows), 1).to(embeds.dtype)
        states = self.encoder.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return self.mm_projector(states[slots].view(len(rows), self.n, -1))

    def decoder_embeds(self, ids, latents):
        embeds = self.decoder.get_input_embeddings()(ids)
        embeds[ids == self.imgpad] = latents.reshape(-1, latents.shape[-1]).to(embeds.dtype)
        return embeds

    def training_loss(self, texts):
        """The decoder on prompt + TEXT + <|im_end|>, only TEXT <|im_end|> supervised, the loss as
        Qwen2ForCausalLM(labels=...) computes it (fp32 logits, shifted, mean over supervised tokens)."""
        latents = self.latents(texts)
        rows = [self.prompt_ids + list(t) + [self.im_end] for t in texts]
        ids, mask = (x.to(self.Q.device) for x in right_padded(rows))
        labels = torch.full_like(ids, IGNORE_INDEX)
        for r, t in enumerate(texts):
            labels[r, len(self.prompt_ids): len(self.prompt_ids) + len(t) + 1] = ids[r, len(self.prompt_ids): len(self.prompt_ids) + len(t) + 1]
        out = self.decoder(inputs_embeds=self.decoder_embeds(ids, latents), attention_mask=mask, labels=labels)
        return out.loss, int(mask.sum()) + sum(len(t) + self.n + 2 for t in texts)

    def generate(self, latents, max_new_tokens, no_repeat_ngram_size=20):
        """Greedy reconstruction (spec section 2): the n-gram ban sees prompt ids + output, stop at
        <|im_end|>. Returns each row's new ids without the <|im_end|>."""
        b = latents.shape[0]
        ids = torch.tensor([self.prompt_ids] * b, device=latents.device)
        out = self.decoder.generate(input_ids=ids, inputs_embeds=self.decoder_embeds(ids, latents),
                                    attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                                    no_repeat_ngram_size=no_repeat_ngram_size, max_new_tokens=max_new_tokens,
                                    eos_token_id=self.im_end, pad_token_id=self.im_end, top_k=None, top_p=None,
                                    temperature=None)
        assert out[:, : ids.shape[1]].equal(ids)  # the prompt, then the new ids
        rows = []
        for row in out[:, ids.shape[1]:].tolist():
            rows.append(row[: row.index(self.im_end)] if self.im_end in row else row)
        return rows

    def save_released_layout(self, folder):
        """Root: the decoder + model.Q.weight + model.mm_projector.{weight,bias}, config.json with
        model_type C3; llm1/: the encoder as a plain Qwen2 checkpoint. Tokenizer files: the caller's."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder / "llm1")
        tied = self.decoder.config.tie_word_embeddings
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.decoder.state_dict().items()
                   if not (tied and k == "lm_head.weight")}
        tensors["model.Q.weight"] = self.Q.detach().cpu().clone()
        tensors["model.mm_projector.weight"] = self.mm_projector.weight.detach().cpu().clone()
        tensors["model.mm_projector.bias"] = self.mm_projector.bias.detach().cpu().clone()
        save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
        config = self.decoder.config.to_dict()
        config.update(model_type="C3", architectures=["C3QwenForCausalLM"], latent_token_len=self.n,
                      contexts_compression_llm_hidden_size=self.encoder.config.hidden_size)
        (folder / "config.json").write_text(json.dumps(config, indent=2))


def load_released_layout(folder, special, prompt_ids, attn="sdpa", device="cpu"):
    """The inverse of AuthorsC3.save_released_layout: transformers loads llm1/ and builds the decoder
    from the root config.json; Q and the projector come from the root's tensors. The model is built
    on `device` (a billion-parameter decoder's initial values are drawn there, fast, then replaced)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = Path(folder)
    encoder = AutoModelForCausalLM.from_pretrained(folder / "llm1", attn_implementation=attn, dtype=torch.float32).to(device)
    config = json.loads((folder / "config.json").read_text())
    # The decoder's family: Qwen2 in the authors' release, else what c3 recorded (c3_decoder_model_type).
    family = config.get("c3_decoder_model_type", "qwen2")
    decoder_config = AutoConfig.for_model(family, **{k: v for k, v in config.items()
                                                     if k not in ("model_type", "architectures", "c3_decoder_model_type")})
    decoder_config._attn_implementation = attn
    with torch.device(device):
        decoder = AutoModelForCausalLM.from_config(decoder_config, attn_implementation=attn).float()
    model = AuthorsC3(encoder, decoder, config["latent_token_len"], special, prompt_ids).to(device)
    tensors = load_file(str(folder / "model.safetensors"))
    with torch.no_grad():
        model.Q.copy_(tensors.pop("model.Q.weight"))
        model.mm_projector.weight.copy_(tensors.pop("model.mm_projector.weight"))
        model.mm_projector.bias.copy_(tensors.pop("model.mm_projector.bias"))
    missing, unexpected = model.decoder.load_state_dict(tensors, strict=False)
    assert not unexpected and missing in ([], ["lm_head.weight"]), (missing, unexpected)
    if decoder_config.tie_word_embeddings:
        model.decoder.tie_weights()
    return model


def right_padded(rows, pad=0, left=False):
    """Rows of ids -> (input_ids, attention_mask), int64, padded on the right (or the left)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        at = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, at] = torch.tensor(r, dtype=torch.long)
        mask[i, at] = 1
    return ids, mask


def perturb_parameters(model, seed, scale=0.05):
    """Non-zero biases and norm weights: HF initialises them to 0 and 1, which would hide their handling."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_((torch.randn(p.shape, generator=g) * scale).to(p.device, p.dtype))


def qwen2_config(**overrides):
    """A small Qwen2Config as the tests use it; `overrides` set the geometry."""
    from transformers import Qwen2Config

    values = dict(vocab_size=512, hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-6, initializer_range=0.05,
                  rope_parameters={"rope_type": "default", "rope_theta": 1e6}, tie_word_embeddings=True)
    values.update(overrides)
    return Qwen2Config(**values)


def qwen2_tokenizer(folder, extra_special=(), data=QWEN2_TOKENIZER):
    """The Qwen2.5 tokenizer as transformers builds it from `data`'s vocab.json + merges.txt, with
    Qwen2.5's 22 added tokens (and `extra_special` appended after them), saved to `folder`
    (tokenizer.json and friends). Returns the loaded transformers tokenizer."""
    from transformers import AutoTokenizer, Qwen2TokenizerFast
    from tokenizers import AddedToken

    data = Path(data)
    vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))
    lines = (data / "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    tok = Qwen2TokenizerFast(vocab=vocab, merges=merges, unk_token=None, bos_token=None,
                             eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    added = json.loads((data / "added_tokens_qwen2.5.json").read_text())
    for t in sorted(added, key=lambda t: t["id"]):
        tok.add_tokens([AddedToken(t["content"], special=t["special"], normalized=False)],
                       special_tokens=t["special"])
        assert tok.convert_tokens_to_ids(t["content"]) == t["id"], t
    for content in extra_special:
        tok.add_tokens([AddedToken(content, special=True, normalized=False)], special_tokens=True)
    tok.save_pretrained(str(folder))
    return AutoTokenizer.from_pretrained(str(folder))
