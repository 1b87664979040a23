"""Shared helpers of the Hugging Face parity tests.

These tests build small random checkpoints with Hugging Face transformers, run the real
implementations (transformers, tokenizers, tiktoken, safetensors, NLTK) on them, and compare with
what c3 computes: the `c3` binary itself where a command exists, else `c3_hf_probe` (a thin program
over c3's library, tests/hf/c3_hf_probe.cpp). CTest runs them with C3_BINARY, C3_HF_PROBE and
C3_TEST_DATA set (tests/hf/CMakeLists.txt).
"""
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from c3_reference import perturb_parameters, qwen2_config, qwen2_tokenizer, right_padded  # noqa: F401 (shared with the tests)

C3 = os.environ.get("C3_BINARY", "")
PROBE = os.environ.get("C3_HF_PROBE", "")
TEST_DATA = Path(os.environ.get("C3_TEST_DATA", Path(__file__).resolve().parents[1] / "data"))
QWEN2_TOKENIZER = TEST_DATA / "qwen2-tokenizer"

# Qwen2.5's pre-tokenizer regex (spec section 5); tiktoken and the HF tokenizer.json both use it.
QWEN2_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                 r"""\s*[\r\n]+|\s+(?!\S)|\s+""")

torch.manual_seed(0)
torch.set_num_threads(1)


def pytest_configure(config):
    missing = [name for name, value in (("C3_BINARY", C3), ("C3_HF_PROBE", PROBE)) if not value]
    if missing:
        raise pytest.UsageError(f"run through ctest (set {', '.join(missing)})")


def run(args, input_bytes=None, expect_status=0):
    """Runs a command; returns its stdout (bytes). Fails the test with its stderr otherwise."""
    done = subprocess.run([str(a) for a in args], input=input_bytes, capture_output=True, timeout=600)
    if done.returncode != expect_status:
        pytest.fail(f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}")
    return done.stdout


def probe(*args):
    return run([PROBE, *args])


def save_tensors(path, tensors):
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def load_tensors(path):
    return load_file(str(path))


def rel_err(got, want):
    """max |got - want| / max |want|, in float64."""
    got, want = got.double(), want.double()
    return ((got - want).abs().max() / want.abs().max()).item()


def random_qwen2(seed, attn="eager", **overrides):
    """A random fp32 Qwen2ForCausalLM as transformers builds it, biases and norms perturbed."""
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(seed)
    config = qwen2_config(**overrides)
    config._attn_implementation = attn
    model = Qwen2ForCausalLM(config).float().eval()
    perturb_parameters(model, seed)
    return model


def to_transformers4_spelling(folder):
    """Rewrites a transformers-5 config.json in the transformers-4 spelling (torch_dtype,
    top-level rope_theta, no layer_types), as checkpoints released before 2025 have it."""
    path = Path(folder) / "config.json"
    config = json.loads(path.read_text())
    config["torch_dtype"] = config.pop("dtype", "float32")
    rope = config.pop("rope_parameters", None) or {}
    config["rope_theta"] = rope.get("rope_theta", 10000.0)
    config.pop("layer_types", None)
    path.write_text(json.dumps(config, indent=2))
    return config


def left_padded(rows, pad=0):
    return right_padded(rows, pad, left=True)


def generated_rows(tensor):
    """c3_hf_probe's [B, MAX] generated ids (-1 after the end) -> lists."""
    return [[int(t) for t in row if t >= 0] for row in tensor]


def hf_qwen2_tokenizer(folder, extra_special=()):
    """See c3_reference.qwen2_tokenizer; from this test data's vocabulary."""
    return qwen2_tokenizer(folder, extra_special, QWEN2_TOKENIZER)
