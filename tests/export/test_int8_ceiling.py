"""benchmarks/int8_ceiling.py: its pieces compute what they stand for, and its table adds up."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import benchmark_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "int8_ceiling.py"
SHAPES = {"hidden_size": 16, "num_attention_heads": 4, "intermediate_size": 40, "num_hidden_layers": 3, "vocab_size": 5000}


@pytest.fixture(scope="module")
def ceiling():
    return benchmark_script("int8_ceiling")


def reference_attention(q, k, v, heads: int, lengths=None) -> np.ndarray:
    """softmax(Q K^T / sqrt(d)) V per head, keys past each row's length masked out."""
    batch, tokens, hidden = q.shape
    split = lambda x: x.reshape(batch, tokens, heads, hidden // heads).transpose(0, 2, 1, 3)  # noqa: E731
    scores = split(q) @ split(k).transpose(0, 1, 3, 2) / np.sqrt(hidden // heads)
    if lengths is not None:
        scores = np.where(np.arange(tokens)[None, None, None, :] < np.asarray(lengths)[:, None, None, None], scores, -np.inf)
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return (weights @ split(v)).transpose(0, 2, 1, 3).reshape(batch, tokens, hidden)


def test_the_attention_part_is_multi_head_attention_with_and_without_a_mask(ceiling):
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((2, 7, 16)).astype(np.float32) for _ in range(3))
    flash = ceiling._session(ceiling.attention_model(SHAPES, masked=False), threads=1)
    outputs = flash.run(None, {"q": q, "k": k, "v": v})
    assert len(outputs) == SHAPES["num_hidden_layers"]
    np.testing.assert_allclose(outputs[0], reference_attention(q, k, v, heads=4), atol=1e-5)

    masked = ceiling._session(ceiling.attention_model(SHAPES, masked=True), threads=1)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3], np.int32)
    outputs = masked.run(None, {"q": q, "k": k, "v": v, "mask": mask})
    np.testing.assert_allclose(outputs[-1], reference_attention(q, k, v, heads=4, lengths=[7, 4]), atol=1e-5)


def test_the_gemm_part_holds_the_four_int8_products_of_each_layer(ceiling):
    model = ceiling.gemm_model(SHAPES)
    products = [node for node in model.graph.node if node.op_type == "DynamicQuantizeMatMul"]
    assert len(products) == 4 * SHAPES["num_hidden_layers"]
    session = ceiling._session(model, threads=1)
    outputs = session.run(None, {"x": np.ones((2, 5, 16), np.float32)})
    assert [o.shape for o in outputs] == [(2, 5, 48)] * 3 + [(2, 5, 16)]  # each layer's QKV, then the last layer's output
    assert all(np.isfinite(o).all() for o in outputs)


def test_the_script_prints_a_table_whose_ceiling_adds_up(pair_checkpoint, pair_bundle):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(pair_checkpoint), "--bundle", str(pair_bundle),
         "--seq-lens", "8,16", "--batch-sizes", "1,2", "--seconds", "0.05", "--threads", "1"],
        capture_output=True, text=True, timeout=300, env={"HF_HUB_OFFLINE": "1", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if re.match(r"\| \d", line)]
    assert [tuple(int(cell) for cell in row.split("|")[1:3]) for row in rows] == [(8, 1), (8, 2), (16, 1), (16, 2)]
    for row in rows:
        numbers = [float(n) for n in re.findall(r"\d+\.?\d*", row)]
        _, _, pytorch, int8, speedup, gemms, flash, masked, ceiling_speedup, share = numbers
        assert speedup == pytest.approx(pytorch / int8, rel=0.05, abs=0.01)
        assert ceiling_speedup == pytest.approx(pytorch / (gemms + min(flash, masked)), rel=0.1, abs=0.01)
