"""c3's Qwen2 against transformers' Qwen2ForCausalLM: fp32 logits and last hidden states of a
right-padded batch, tied and untied, GQA ratios 1/2/4, both config.json spellings."""
import pytest
import torch

from conftest import load_tensors, probe, random_qwen2, rel_err, right_padded, save_tensors, to_transformers4_spelling

TOLERANCE = 1e-4  # relative: max |c3 - HF| / max |HF| over the real (unpadded) positions
LENGTHS = [23, 11, 1]  # one full row, one half, one single token


@pytest.mark.parametrize("spelling", ["dtype", "torch_dtype"])
@pytest.mark.parametrize("kv_heads", [4, 2, 1], ids=["gqa1", "gqa2", "gqa4"])
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_logits_and_hidden_states_match_transformers(tmp_path, tied, kv_heads, spelling):
    seed = 10 * kv_heads + tied
    model = random_qwen2(seed, tie_word_embeddings=tied, num_key_value_heads=kv_heads)
    model.save_pretrained(tmp_path / "model")
    if spelling == "torch_dtype":
        config = to_transformers4_spelling(tmp_path / "model")
        assert "dtype" not in config and config["rope_theta"] == 1e6
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(0, model.config.vocab_size, (n,), generator=g).tolist() for n in LENGTHS]
    ids, mask = right_padded(rows)
    with torch.no_grad():
        out = model.model(input_ids=ids, attention_mask=mask)
        want_hidden = out.last_hidden_state
        want_logits = model.lm_head(want_hidden)
    save_tensors(tmp_path / "in.safetensors", {"input_ids": ids, "attention_mask": mask})
    probe("qwen2-forward", tmp_path / "model", tmp_path / "in.safetensors", tmp_path / "out.safetensors")
    got = load_tensors(tmp_path / "out.safetensors")
    real = mask.bool()
    logits_err = rel_err(got["logits"][real], want_logits[real])
    hidden_err = rel_err(got["hidden"][real], want_hidden[real])
    print(f"tied={tied} kv_heads={kv_heads} spelling={spelling}: logits {logits_err:.2e}, hidden {hidden_err:.2e}")
    assert logits_err < TOLERANCE
    assert hidden_err < TOLERANCE


def test_a_wrong_rope_theta_would_be_caught(tmp_path):
    """The comparison can fail: the same weights read with another rope_theta differ far beyond
    the tolerance (so the spelling test above really checks that rope_theta is read)."""
    model = random_qwen2(3)
    model.save_pretrained(tmp_path / "model")
    config = to_transformers4_spelling(tmp_path / "model")
    config_path = tmp_path / "model" / "config.json"
    import json
    config["rope_theta"] = 10000.0
    config_path.write_text(json.dumps(config))
    ids, mask = right_padded([list(range(1, 24))])
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask).logits
    save_tensors(tmp_path / "in.safetensors", {"input_ids": ids, "attention_mask": mask})
    probe("qwen2-forward", tmp_path / "model", tmp_path / "in.safetensors", tmp_path / "out.safetensors")
    assert rel_err(load_tensors(tmp_path / "out.safetensors")["logits"], want) > 100 * TOLERANCE
