"""c3's one decoder block against transformers' Llama, Qwen3 and Mistral (random small checkpoints
that transformers writes itself): fp32 logits and last hidden states of a right-padded batch within
1e-4 relative, in both config.json spellings; greedy ids with the no-repeat 20-gram rule identical
to HF generate; and what c3 does not implement refused by name, never loaded wrongly."""
import json
import subprocess

import pytest
import torch

from conftest import C3, load_tensors, perturb_parameters, probe, rel_err, right_padded, save_tensors
from test_generate import c3_generate, choose_stop, hf_generate

TOLERANCE = 1e-4
LENGTHS = [23, 11, 1]
BASE = dict(vocab_size=512, hidden_size=64, intermediate_size=112, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-6, initializer_range=0.05)
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}  # all three wavelength bands at head_dim 24

CASES = {
    "llama-tied": ("llama", dict(tie_word_embeddings=True)),
    "llama-untied-biases-llama3rope-headdim24-gqa4": (
        "llama", dict(tie_word_embeddings=False, attention_bias=True, mlp_bias=True, head_dim=24, num_key_value_heads=1,
                      rope_parameters=LLAMA3_ROPE)),
    "qwen3-tied-headdim32": ("qwen3", dict(tie_word_embeddings=True, head_dim=32)),
    "qwen3-untied-bias-gqa4": ("qwen3", dict(tie_word_embeddings=False, attention_bias=True, num_key_value_heads=1,
                                             head_dim=16)),
    "mistral": ("mistral", dict(tie_word_embeddings=False, sliding_window=None, head_dim=16)),
}


def build(family, seed, **overrides):
    """A random fp32 model of `family` as transformers builds it, biases and norms perturbed."""
    import transformers

    names = {"llama": "Llama", "qwen3": "Qwen3", "mistral": "Mistral"}[family]
    torch.manual_seed(seed)
    config = getattr(transformers, names + "Config")(**{**BASE, **overrides})
    config._attn_implementation = "eager"
    model = getattr(transformers, names + "ForCausalLM")(config).float().eval()
    perturb_parameters(model, seed)
    return model


def transformers4_spelling(folder):
    """config.json as checkpoints from before transformers 5 spell it: top-level rope_theta, RoPE
    scaling in rope_scaling, torch_dtype."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["torch_dtype"] = config.pop("dtype", "float32")
    rope = dict(config.pop("rope_parameters", None) or {})
    config["rope_theta"] = rope.pop("rope_theta", 10000.0)
    if rope.get("rope_type", "default") != "default":
        config["rope_scaling"] = rope
    config.pop("layer_types", None)
    path.write_text(json.dumps(config, indent=2))


@pytest.mark.parametrize("spelling", ["transformers5", "transformers4"])
@pytest.mark.parametrize("case", CASES)
def test_logits_and_hidden_states_match_transformers(tmp_path, case, spelling):
    family, overrides = CASES[case]
    seed = 7 + list(CASES).index(case)
    model = build(family, seed, **overrides)
    model.save_pretrained(tmp_path / "model")
    if spelling == "transformers4":
        transformers4_spelling(tmp_path / "model")
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(0, model.config.vocab_size, (n,), generator=g).tolist() for n in LENGTHS]
    ids, mask = right_padded(rows)
    with torch.no_grad():
        want_hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        want_logits = model.lm_head(want_hidden)
    save_tensors(tmp_path / "in.safetensors", {"input_ids": ids, "attention_mask": mask})
    probe("qwen2-forward", tmp_path / "model", tmp_path / "in.safetensors", tmp_path / "out.safetensors")
    got = load_tensors(tmp_path / "out.safetensors")
    real = mask.bool()
    logits_err = rel_err(got["logits"][real], want_logits[real])
    hidden_err = rel_err(got["hidden"][real], want_hidden[real])
    print(f"{case} {spelling}: logits {logits_err:.2e}, hidden {hidden_err:.2e}")
    assert logits_err < TOLERANCE
    assert hidden_err < TOLERANCE


@pytest.mark.parametrize("case", ["llama-untied-biases-llama3rope-headdim24-gqa4", "qwen3-tied-headdim32"])
def test_greedy_ids_equal_transformers_generate(tmp_path, case):
    family, overrides = CASES[case]
    model = build(family, 5, **overrides)
    model.save_pretrained(tmp_path / "model")
    g = torch.Generator().manual_seed(5)
    rows = [torch.randint(1, 512, (n,), generator=g).tolist() for n in (13, 4, 9)]
    stop = choose_stop([hf_generate(model, [r], stop=model.config.vocab_size)[0] for r in rows])
    want = [hf_generate(model, [r], stop)[0] for r in rows]
    got = c3_generate(tmp_path, rows, stop)
    assert got == want
    assert sum(len(r) for r in got) > 300, "long enough for the no-repeat rule to act"


def test_the_comparison_can_fail(tmp_path):
    """The llama3 frequencies read as default RoPE differ far beyond the tolerance: the test above
    really checks that the scaling is applied."""
    model = build("llama", 3, **CASES["llama-untied-biases-llama3rope-headdim24-gqa4"][1])
    model.save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["rope_parameters"] = {"rope_type": "default", "rope_theta": 500000.0}
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    ids, mask = right_padded([list(range(1, 60))])
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask).logits
    save_tensors(tmp_path / "in.safetensors", {"input_ids": ids, "attention_mask": mask})
    probe("qwen2-forward", tmp_path / "model", tmp_path / "in.safetensors", tmp_path / "out.safetensors")
    assert rel_err(load_tensors(tmp_path / "out.safetensors")["logits"], want) > 100 * TOLERANCE


@pytest.mark.parametrize("change, message", [
    ({"model_type": "gemma"}, "model_type 'gemma' is not supported (c3 runs qwen2, llama, qwen3 and mistral)"),
    ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}},
     "rope_parameters type 'yarn' is not supported"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu' is not supported"),
    ({"model_type": "mistral", "sliding_window": 4096}, "sliding-window attention (sliding_window 4096) is not supported"),
])
def test_what_c3_does_not_implement_is_refused_by_name(tmp_path, change, message):
    model = build("llama", 1)
    model.save_pretrained(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config.update(change)
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    done = subprocess.run([C3, "info", str(tmp_path / "model")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
