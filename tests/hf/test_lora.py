"""LoRA against Hugging Face PEFT: `c3 train` with model.lora_encoder / model.lora_decoder trains
adapters that PEFT's PeftModel.from_pretrained loads onto the same base models, with the same
latents, decoder logits and greedy ids as c3 computes with the adapters beside the weights and
merged into them; `c3 export --merge` writes the weights PEFT's merge_and_unload gives; base weights
under an adapter never change; adapters c3 cannot run are refused by name."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from c3_reference import load_released_layout
from conftest import (C3, generated_rows, hf_qwen2_tokenizer, load_tensors, probe, rel_err, right_padded, run,
                      save_tensors)
from test_c3 import IMAGE_TOKENS, MAX_NEW, N, TEXTS, tiny_authors_c3

TOLERANCE = 1e-4
DECODER_TARGETS = ["down_proj", "q_proj", "v_proj"]


def c3_run(args, status=0):
    import subprocess
    done = subprocess.run([str(a) for a in [C3, *args]], capture_output=True, timeout=600)
    assert done.returncode == status, done.stderr.decode()
    return done.stderr.decode()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny C3, then 3 steps of c3 train with LoRA on all of the encoder's projections and three
    of the decoder's (rank 4, alpha 8), a learning rate high enough to move every adapter."""
    root = tmp_path_factory.mktemp("lora")
    tokenizer = hf_qwen2_tokenizer(root / "tokenizer", IMAGE_TOKENS)
    model = tiny_authors_c3(tokenizer, seed=5)
    model.save_released_layout(root / "base")
    hf_qwen2_tokenizer(root / "base", IMAGE_TOKENS)
    (root / "train.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS * 4))
    c3_run(["--threads", "1", "train", "--checkpoint", root / "base", "--data", root / "train.jsonl", "-o", root / "run",
            "--steps", 3, "--batch-size", 2, "--grad-accum", 1, "--lr", 0.02, "--dtype", "float32",
            "--set", 'model.lora_encoder=["all-linear"]', "--set", f"model.lora_decoder={json.dumps(DECODER_TARGETS)}",
            "--set", "model.lora_rank=4", "--set", "model.lora_alpha=8", "--set", "optim.warmup_steps=0",
            "--set", "train.eval_every=0", "--set", "data.validation_samples=1"])
    return {"root": root, "tokenizer": tokenizer, "base": model, "ckpt": root / "run" / "checkpoint-3"}


def peft_c3(folder, tokenizer):
    """The authors' C3 on transformers with PEFT's LoRA layers injected into both LLMs."""
    from peft import PeftModel

    special = {t: tokenizer.convert_tokens_to_ids(t) for t in IMAGE_TOKENS + ["<|im_end|>"]}
    model = load_released_layout(folder, special, tokenizer(decoder_prompt_n())["input_ids"], attn="eager")
    decoder = PeftModel.from_pretrained(model.decoder, folder)  # injects in place into model.decoder
    encoder = PeftModel.from_pretrained(model.encoder, folder / "llm1")
    return model.eval(), encoder, decoder


def decoder_prompt_n():
    from c3_reference import decoder_prompt
    return decoder_prompt(N)


def reference_outputs(model, texts):
    out = []
    with torch.no_grad():
        for ids in texts:
            z = model.latents([ids])
            dec_ids = torch.tensor([model.prompt_ids + ids + [model.im_end]])
            out.append({"latents": z[0], "logits": model.decoder(inputs_embeds=model.decoder_embeds(dec_ids, z)).logits[0],
                        "generated": model.generate(z, MAX_NEW)[0]})
    return out


def probe_outputs(folder, texts, tmp_path, merge):
    import os
    ids, mask = right_padded(texts)
    save_tensors(tmp_path / "in.safetensors", {"text_ids": ids, "text_mask": mask})
    os.environ["C3_PROBE_MERGE"] = "1" if merge else "0"
    try:
        probe("c3", folder, tmp_path / "in.safetensors", tmp_path / "out.safetensors", MAX_NEW)
    finally:
        del os.environ["C3_PROBE_MERGE"]
    return load_tensors(tmp_path / "out.safetensors")


def test_the_checkpoint_holds_peft_adapters_and_untouched_base_weights(trained):
    ckpt = trained["ckpt"]
    for folder, targets in ((ckpt, DECODER_TARGETS), (ckpt / "llm1", ["down_proj", "gate_proj", "k_proj", "o_proj",
                                                                       "q_proj", "up_proj", "v_proj"])):
        config = json.loads((folder / "adapter_config.json").read_text())
        assert (config["peft_type"], config["r"], config["lora_alpha"], sorted(config["target_modules"])) == \
            ("LORA", 4, 8, targets)
        adapter = load_file(str(folder / "adapter_model.safetensors"))
        layers = trained["base"].decoder.config.num_hidden_layers if folder == ckpt else \
            trained["base"].encoder.config.num_hidden_layers
        assert len(adapter) == 2 * len(targets) * layers
        assert all(k.startswith("base_model.model.model.layers.") for k in adapter)
        assert all(v.abs().max() > 0 for k, v in adapter.items() if "lora_B" in k), "every adapter trained"
        assert not any("lora" in k for k in load_file(str(folder / "model.safetensors")))
    # Under an adapter the weights are frozen: the decoder's base weights are the initial ones.
    stored = load_file(str(ckpt / "model.safetensors"))
    for name, value in trained["base"].decoder.state_dict().items():
        if name in stored:
            assert torch.equal(stored[name], value.detach()), name
    initial = load_file(str(trained["root"] / "base" / "model.safetensors"))
    assert not torch.equal(stored["model.Q.weight"], initial["model.Q.weight"]), "Q trains"


@pytest.mark.parametrize("merge", [False, True], ids=["adapters", "merged"])
def test_latents_logits_and_greedy_ids_match_peft(trained, tmp_path, merge):
    model, _, _ = peft_c3(trained["ckpt"], trained["tokenizer"])
    texts = [trained["tokenizer"](t)["input_ids"] for t in TEXTS]
    want = reference_outputs(model, texts)
    got = probe_outputs(trained["ckpt"], texts, tmp_path, merge)
    generated = generated_rows(got["generated"])
    for r, ref in enumerate(want):
        n = ref["logits"].shape[0]
        latent_err, logits_err = rel_err(got["latents"][r], ref["latents"]), rel_err(got["decoder_logits"][r, :n], ref["logits"])
        print(f"text {r}: latents {latent_err:.2e}, decoder logits {logits_err:.2e}")
        assert latent_err < TOLERANCE and logits_err < TOLERANCE
        assert generated[r] == ref["generated"], f"text {r}"
    # The comparison can fail: without the decoder's adapter the logits are far off.
    plain = load_released_layout(trained["ckpt"], {t: trained["tokenizer"].convert_tokens_to_ids(t) for t in
                                                   IMAGE_TOKENS + ["<|im_end|>"]}, model.prompt_ids, attn="eager").eval()
    with torch.no_grad():
        z = plain.latents([texts[0]])
        dec_ids = torch.tensor([plain.prompt_ids + texts[0] + [plain.im_end]])
        logits = plain.decoder(inputs_embeds=plain.decoder_embeds(dec_ids, z)).logits[0]
    assert rel_err(logits, want[0]["logits"]) > 100 * TOLERANCE


def test_export_merge_writes_what_peft_merge_and_unload_gives(trained, tmp_path):
    ckpt = trained["ckpt"]
    c3_run(["export", ckpt, "-o", tmp_path / "merged", "--merge"])
    c3_run(["export", trained["root"] / "run", "-o", tmp_path / "kept"])  # a run folder: its newest checkpoint
    assert not list((tmp_path / "merged").rglob("adapter_*"))
    assert (tmp_path / "kept" / "adapter_config.json").exists() and (tmp_path / "kept" / "llm1" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "kept" / "training_state").exists()
    model, encoder, decoder = peft_c3(ckpt, trained["tokenizer"])
    for peft_model, folder in ((decoder, tmp_path / "merged"), (encoder, tmp_path / "merged" / "llm1")):
        merged = peft_model.merge_and_unload().state_dict()
        stored = load_file(str(folder / "model.safetensors"))
        for name, value in merged.items():
            if name in stored:
                assert rel_err(stored[name], value) < 1e-6, name
    # The exported folders are models c3 runs: both reconstruct as the checkpoint does.
    texts = [trained["tokenizer"](t)["input_ids"] for t in TEXTS[:2]]
    ids = [generated_rows(probe_outputs(f, texts, tmp_path, merge=False)["generated"])
           for f in (ckpt, tmp_path / "merged", tmp_path / "kept")]
    assert ids[0] == ids[1] == ids[2]
    c3_run(["export", ckpt, "-o", tmp_path / "merged", "--merge"], status=1)  # never replaced without --force


def test_training_resumes_the_adapter_and_refuses_another(trained, tmp_path):
    root = trained["root"]
    shutil.copytree(root / "run", tmp_path / "run")
    common = ["--threads", "1", "train", "--data", root / "train.jsonl", "-o", tmp_path / "run", "--batch-size", 2,
              "--grad-accum", 1, "--lr", 0.02, "--dtype", "float32", "--set", "optim.warmup_steps=0",
              "--set", "train.eval_every=0", "--set", "data.validation_samples=1"]
    err = c3_run(common + ["--steps", 4])
    assert "resumed at step 3" in err
    before = load_file(str(tmp_path / "run" / "checkpoint-3" / "adapter_model.safetensors"))
    after = load_file(str(tmp_path / "run" / "checkpoint-4" / "adapter_model.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # Warm-starting from it without asking for the adapter, or asking for another, is refused.
    warm = ["--threads", "1", "train", "--checkpoint", trained["ckpt"], "--data", root / "train.jsonl", "--steps", 1,
            "--set", "train.eval_every=0", "--set", "data.validation_samples=1"]
    err = c3_run(warm + ["-o", tmp_path / "w1"], status=2)
    assert "has a LoRA adapter: set model.lora_" in err and err.count("[error]") == 1, err
    err = c3_run(warm + ["-o", tmp_path / "w2", "--set", 'model.lora_encoder=["all-linear"]',
                         "--set", 'model.lora_decoder=["q_proj"]', "--set", "model.lora_rank=4",
                         "--set", "model.lora_alpha=8"], status=2)
    assert "is not the one model.lora_decoder" in err, err
    err = c3_run(warm + ["-o", tmp_path / "w3", "--set", 'model.lora_encoder=["qkv"]'], status=2)
    assert "model.lora_encoder: unknown target 'qkv'" in err, err
    err = c3_run(warm + ["-o", tmp_path / "w4", "--set", 'model.lora_decoder=["q_proj"]',
                         "--set", 'optim.frozen=["decoder"]'], status=2)
    assert "trains an adapter on the decoder, which optim.frozen freezes" in err, err
    assert not any((tmp_path / f"w{i}").exists() for i in range(1, 5))


@pytest.mark.parametrize("change, message", [
    ({"use_dora": True}, "adapter option use_dora = true is not supported by c3"),
    ({"use_rslora": True}, "adapter option use_rslora = true is not supported by c3"),
    ({"target_modules": ".*proj"}, "target_modules as a regular expression is not supported by c3"),
    ({"target_modules": ["lm_head"]}, "unknown target 'lm_head'"),
    ({"rank_pattern": {"q_proj": 8}}, "adapter option rank_pattern"),
    ({"layers_pattern": "layers", "layers_to_transform": [0]}, "adapter option layers_to_transform = [0]"),
    ({"peft_type": "IA3"}, 'peft_type "IA3" is not LORA'),
    ({"r": 8}, "has shape [4, 48] but the adapter expects [8, 48]"),
])
def test_adapters_c3_cannot_run_are_refused_by_name(trained, tmp_path, change, message):
    folder = tmp_path / "model"
    shutil.copytree(trained["ckpt"], folder, ignore=shutil.ignore_patterns("training_state"))
    config = json.loads((folder / "adapter_config.json").read_text())
    config.update(change)
    (folder / "adapter_config.json").write_text(json.dumps(config))
    err = c3_run(["export", folder, "-o", tmp_path / "out"], status=1)
    assert message in err and "adapter_" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_damaged_adapter_file_is_named(trained, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(trained["ckpt"], folder, ignore=shutil.ignore_patterns("training_state"))
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    name = sorted(tensors)[0]
    del tensors[name]
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    err = c3_run(["export", folder, "-o", tmp_path / "out"], status=1)
    assert f"missing tensor '{name}'" in err and err.count("\n") == 1, err
    (folder / "adapter_model.safetensors").unlink()
    err = c3_run(["export", folder, "-o", tmp_path / "out"], status=1)
    assert "has adapter_config.json but no adapter_model.safetensors" in err, err


def test_a_lean_part_holds_what_training_changed_and_assembles_into_the_trained_model(tmp_path):
    """c3 init from two LLM folders records its recipe; c3 train with the decoder frozen and LoRA
    on the encoder changes Q, the projector and the encoder's adapter alone, which is all that
    c3 export --lean-base writes; c3 assemble rebuilds from the LLM folders the model training
    saved, and refuses LLM folders that are not the ones the recipe names."""
    tokenizer = hf_qwen2_tokenizer(tmp_path / "tokenizer", IMAGE_TOKENS)
    authors = tiny_authors_c3(tokenizer, seed=9)
    for name, llm in (("enc", authors.encoder), ("dec", authors.decoder)):
        llm.save_pretrained(tmp_path / name)
        hf_qwen2_tokenizer(tmp_path / name, IMAGE_TOKENS)
    c3_run(["init", tmp_path / "base", "--encoder", tmp_path / "enc", "--decoder", tmp_path / "dec",
            "--latent-tokens", N, "--encoder-layers", 1, "--seed", 4])
    recipe = json.loads((tmp_path / "base" / "c3_init.json").read_text())
    assert (recipe["latent_tokens"], recipe["encoder_layers"], recipe["seed"]) == (N, 1, 4)
    assert recipe["encoder_weights_sha256"] != recipe["decoder_weights_sha256"]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS * 4))
    c3_run(["--threads", "1", "train", "--checkpoint", tmp_path / "base", "--data", tmp_path / "train.jsonl",
            "-o", tmp_path / "run", "--steps", 2, "--batch-size", 2, "--grad-accum", 1, "--lr", 0.02, "--dtype", "float32",
            "--set", 'model.lora_encoder=["q_proj","up_proj"]', "--set", "model.lora_rank=2",
            "--set", 'optim.frozen=["decoder"]', "--set", "optim.warmup_steps=0", "--set", "train.eval_every=0",
            "--set", "data.validation_samples=1"])
    c3_run(["export", tmp_path / "run", "-o", tmp_path / "part", "--lean-base", tmp_path / "base"])
    part = tmp_path / "part"
    assert sorted(load_file(str(part / "lean.safetensors"))) == ["model.Q.weight", "model.mm_projector.bias",
                                                                 "model.mm_projector.weight"]
    assert (part / "llm1" / "adapter_model.safetensors").exists() and not (part / "adapter_config.json").exists()
    assert not list(part.rglob("model*.safetensors")), "no base weights in the part"
    (tmp_path / "doc.txt").write_text(TEXTS[0])
    err = c3_run(["compress", "-m", part, tmp_path / "doc.txt", "-o", tmp_path / "latents"], 1)
    assert "is a lean part" in err and "c3 assemble" in err and err.count("[error]") == 1, err
    c3_run(["assemble", part, "--encoder", tmp_path / "enc", "--decoder", tmp_path / "dec", "-o", tmp_path / "full"])
    texts = [tokenizer(t)["input_ids"] for t in TEXTS]
    want = probe_outputs(tmp_path / "run" / "checkpoint-2", texts, tmp_path, merge=True)
    got = probe_outputs(tmp_path / "full", texts, tmp_path, merge=True)
    assert torch.equal(got["latents"], want["latents"]) and torch.equal(got["generated"], want["generated"])
    assert not list(tmp_path.glob(".c3-base-*")), "the temporary base is gone"
    # The wrong LLM folders, and a base c3 init did not write, are refused with one line.
    err = c3_run(["assemble", part, "--encoder", tmp_path / "dec", "--decoder", tmp_path / "dec", "-o", tmp_path / "x"], 1)
    assert "is not the encoder LLM this model was trained from" in err and err.count("\n") == 1, err
    (tmp_path / "base" / "c3_init.json").unlink()
    err = c3_run(["export", tmp_path / "run", "-o", tmp_path / "y", "--lean-base", tmp_path / "base"], 1)
    assert "has no c3_init.json" in err and err.count("[error]") == 1, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
