"""The speed-up over PyTorch that onnxruntime's CPU kernels allow an int8 BERT, and how close the bundle gets.

For each token length and batch size, in one run, each part in its own process with the same threads,
taking turns in short blocks so that machine noise hits all alike:

- `pytorch`: the checkpoint in eager fp32, the baseline of every speed-up;
- `int8 model`: the bundle's int8 model, whole;
- `int8 GEMMs`: only its matrix products: per layer the QKV, attention-output, FFN-in and FFN-out
  `DynamicQuantizeMatMul` ops (what onnxruntime runs for the quantized MatMuls), with the model's shapes
  and per-channel scales, chained as in the model;
- `attention`: only the attention core (QK^T, softmax, x V) of every layer, with onnxruntime's
  `MultiHeadAttention` on Q, K, V of the model's shapes; `flash` is its mask-free path (MLAS flash
  attention), `masked` its path with a padding mask. The faster one counts.

`ceiling = pytorch / (int8 GEMMs + attention)`. onnxruntime computes the attention core in fp32 in all
of its CPU attention operators (`QAttention`, `Attention`, `MultiHeadAttention`), and GELU, layer norms,
residual adds and quantizing activations only add to that sum, so no int8 graph built from these
kernels is faster than the ceiling. Prints a Markdown table.

    python benchmarks/int8_ceiling.py --model runs/mrpc --bundle runs/mrpc-onnx
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path

import numpy as np

PARTS = ("pytorch", "int8 model", "int8 GEMMs", "attention flash", "attention masked")


def _shapes(bundle: Path) -> dict:
    config = json.loads((bundle / "config.json").read_text())
    return {key: config[key] for key in ("hidden_size", "num_attention_heads", "intermediate_size",
                                         "num_hidden_layers", "vocab_size")}


def _token_inputs(shapes: dict, seq_len: int, batch_size: int) -> dict[str, np.ndarray]:
    """A batch of text pairs, each exactly `seq_len` tokens: random word ids, the second half segment 1."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, shapes["vocab_size"], (batch_size, seq_len), dtype=np.int64)
    types = np.zeros_like(ids)
    types[:, seq_len // 2:] = 1
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types}


def _session(model, threads: int):
    """`model` (a file or an `onnx.ModelProto`) on the session serving uses."""
    from tuneship.serving.session import create_session

    return create_session(model if isinstance(model, Path) else model.SerializeToString(), threads)


def _onnx_model(nodes, inputs, outputs, initializers):
    from onnx import helper

    graph = helper.make_graph(nodes, "part", inputs, outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])


def gemm_model(shapes: dict):
    """The int8 matrix products of every layer, as onnxruntime runs them: x -> QKV, x -> output projection ->
    FFN in -> FFN out -> the next layer's x. Weights are random int8 with per-channel scales."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    hidden, inner = shapes["hidden_size"], shapes["intermediate_size"]
    nodes, initializers, outputs = [], [], []

    def linear(name: str, source: str, rows: int, columns: int) -> str:
        initializers.extend([
            numpy_helper.from_array(rng.integers(-127, 128, (rows, columns), dtype=np.int8), f"{name}_w"),
            numpy_helper.from_array(rng.uniform(1e-3, 2e-3, columns).astype(np.float32), f"{name}_scale"),
            numpy_helper.from_array(np.zeros(columns, np.int8), f"{name}_zero"),
            numpy_helper.from_array(rng.standard_normal(columns).astype(np.float32), f"{name}_bias"),
        ])
        nodes.append(helper.make_node("DynamicQuantizeMatMul", [source, f"{name}_w", f"{name}_scale", f"{name}_zero",
                                                                f"{name}_bias"], [name], domain="com.microsoft"))
        return name

    x = "x"
    for layer in range(shapes["num_hidden_layers"]):
        outputs.append(linear(f"qkv{layer}", x, hidden, 3 * hidden))
        out = linear(f"attention_output{layer}", x, hidden, hidden)
        x = linear(f"ffn_out{layer}", linear(f"ffn_in{layer}", out, hidden, inner), inner, hidden)
    outputs.append(x)
    return _onnx_model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", hidden])],
                       [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs], initializers)


def attention_model(shapes: dict, masked: bool):
    """The attention core of every layer: Q, K, V (B, S, hidden) each -> MultiHeadAttention -> (B, S, hidden)."""
    from onnx import TensorProto, helper

    hidden = shapes["hidden_size"]
    nodes, outputs = [], []
    for layer in range(shapes["num_hidden_layers"]):
        inputs = ["q", "k", "v", ""] + (["mask"] if masked else [])
        nodes.append(helper.make_node("MultiHeadAttention", inputs, [f"context{layer}"], domain="com.microsoft",
                                      num_heads=shapes["num_attention_heads"]))
        outputs.append(f"context{layer}")
    graph_inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "tokens", hidden]) for name in "qkv"]
    if masked:
        graph_inputs.append(helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", "tokens"]))
    return _onnx_model(nodes, graph_inputs, [helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                                             for name in outputs], [])


def _part_feeds(part: str, shapes: dict, seq_len: int, batch_size: int) -> dict[str, np.ndarray]:
    """What `part` runs on: token ids for the whole models, random activations for the pieces."""
    if part in ("pytorch", "int8 model"):
        return _token_inputs(shapes, seq_len, batch_size)
    rng = np.random.default_rng(0)
    activations = (batch_size, seq_len, shapes["hidden_size"])
    if part == "int8 GEMMs":
        return {"x": rng.standard_normal(activations).astype(np.float32)}
    feed = {name: rng.standard_normal(activations).astype(np.float32) for name in "qkv"}
    if part == "attention masked":
        feed["mask"] = np.ones((batch_size, seq_len), np.int32)
    return feed


def _runner(part: str, checkpoint: str, bundle: Path, threads: int):
    """A function (seq_len, batch_size) -> a no-argument callable doing one call of `part`."""
    shapes = _shapes(bundle)
    if part == "pytorch":
        import torch
        from transformers import AutoModelForSequenceClassification

        torch.set_num_threads(threads)
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()

        def pytorch(seq_len: int, batch_size: int):
            feed = {name: torch.from_numpy(value) for name, value in _part_feeds(part, shapes, seq_len, batch_size).items()}

            def call():
                with torch.inference_mode():
                    model(**feed)
            return call
        return pytorch
    if part == "int8 model":
        from tuneship.bundle import BundleManifest

        session = _session(bundle / BundleManifest.load(bundle).model_file("int8"), threads)
    elif part == "int8 GEMMs":
        session = _session(gemm_model(shapes), threads)
    else:
        session = _session(attention_model(shapes, masked=part == "attention masked"), threads)

    def onnx(seq_len: int, batch_size: int):
        feed = _part_feeds(part, shapes, seq_len, batch_size)
        return lambda: session.run(None, feed)
    return onnx


def _worker(connection, part: str, checkpoint: str, bundle: str, threads: int) -> None:
    from tuneship.bench.worker import time_calls

    build = _runner(part, checkpoint, Path(bundle), threads)
    calls = {}
    while (request := connection.recv()) is not None:
        seq_len, batch_size, block_s = request
        if (seq_len, batch_size) not in calls:
            calls[seq_len, batch_size] = build(seq_len, batch_size)
            calls[seq_len, batch_size]()  # untimed: the first call of a shape allocates
        connection.send(time_calls(calls[seq_len, batch_size], block_s))


def measure(checkpoint: str, bundle: Path, seq_lens, batch_sizes, threads: int, seconds: float) -> dict:
    """Median milliseconds per call, {(seq_len, batch_size): {part: ms}}."""
    from tqdm.auto import tqdm

    context = multiprocessing.get_context("spawn")
    workers = {}
    for part in PARTS:
        parent, child = context.Pipe()
        context.Process(target=_worker, args=(child, part, checkpoint, str(bundle), threads), daemon=True).start()
        workers[part] = parent
    results = {}
    shapes = [(seq_len, batch_size) for seq_len in seq_lens for batch_size in batch_sizes]
    for seq_len, batch_size in tqdm(shapes, desc="shapes", unit="shape"):
        times = {part: [] for part in PARTS}
        while any(sum(t) < seconds or len(t) < 3 for t in times.values()):
            for part, connection in workers.items():
                connection.send((seq_len, batch_size, 0.3))
                times[part] += connection.recv()
        results[seq_len, batch_size] = {part: 1000 * float(np.median(t)) for part, t in times.items()}
    for connection in workers.values():
        connection.send(None)
    return results


def _ms(value: float) -> str:
    """Three significant digits, without an exponent: 0.0512, 12.6, 1690."""
    return f"{value:.{max(0, 2 - int(np.floor(np.log10(value))))}f}"


def table(results: dict) -> str:
    lines = ["| tokens | batch | pytorch ms | int8 model ms (speed-up) | int8 GEMMs ms | attention ms (flash / masked) "
             "| ceiling speed-up | int8 model / ceiling |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (seq_len, batch_size), ms in results.items():
        floor = ms["int8 GEMMs"] + min(ms["attention flash"], ms["attention masked"])
        lines.append(
            f"| {seq_len} | {batch_size} | {_ms(ms['pytorch'])} | {_ms(ms['int8 model'])} "
            f"({ms['pytorch'] / ms['int8 model']:.2f}x) | {_ms(ms['int8 GEMMs'])} | "
            f"{_ms(ms['attention flash'])} / {_ms(ms['attention masked'])} | {ms['pytorch'] / floor:.2f}x | "
            f"{floor / ms['int8 model']:.0%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", dest="checkpoint", required=True, help="the fine-tuned checkpoint folder (PyTorch)")
    parser.add_argument("--bundle", required=True, help="its exported bundle (int8 model)")
    parser.add_argument("--seq-lens", default="32,128,256")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per part and shape (at least 3 calls)")
    args = parser.parse_args()
    results = measure(args.checkpoint, Path(args.bundle), [int(n) for n in args.seq_lens.split(",")],
                      [int(n) for n in args.batch_sizes.split(",")], args.threads, args.seconds)
    print(table(results))


if __name__ == "__main__":
    main()
