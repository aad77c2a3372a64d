"""Export speed: PyTorch eager fp32 against a bundle's ONNX fp32 and int8 models, model-only.

Raw onnxruntime sessions and PyTorch, all with the same thread count, on token pairs of 32, 128 and
256 tokens at batch 1 and batch 32. Each backend runs in its own process (as in production, and so
that no backend's idle threads slow another's) and they take turns in short blocks, so that machine
noise hits all alike; each figure is the median over all timed runs. Prints a Markdown table with speed-ups
against PyTorch, and the sizes on disk.

    python benchmarks/export_speed.py --checkpoint runs/mrpc --bundle runs/mrpc-onnx
    python benchmarks/export_speed.py --checkpoint runs/mrpc --bundle runs/mrpc-onnx --extra other.onnx --threads 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np

from tuneship.serving import BundleManifest, create_session

SHAPES = ((32, 1), (128, 1), (256, 1), (32, 32), (128, 32), (256, 32))


def pair_inputs(seq_len: int, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random token pairs of exactly `seq_len` tokens: [CLS] a [SEP] b [SEP], no padding."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(batch_size, seq_len))
    middle = seq_len // 2
    ids[:, 0], ids[:, middle], ids[:, -1] = 101, 102, 102
    types = np.zeros((batch_size, seq_len), dtype=np.int64)
    types[:, middle + 1 :] = 1
    return {"input_ids": ids.astype(np.int64), "attention_mask": np.ones_like(types), "token_type_ids": types}


def _worker(connection, kind: str, path: str, threads: int) -> None:
    """One backend in its own process: waits for (seq_len, batch_size, block_s), answers run times."""
    if kind == "torch":
        import torch
        from transformers import AutoModelForSequenceClassification

        torch.set_num_threads(threads)
        model = AutoModelForSequenceClassification.from_pretrained(path).eval()

        def make_runner(feed):
            tensors = {k: torch.from_numpy(v) for k, v in feed.items()}

            def run():
                with torch.inference_mode():
                    model(**tensors)
            return run
    else:
        session = create_session(path, threads)
        names = {i.name for i in session.get_inputs()}

        def make_runner(feed):
            inputs = {k: v for k, v in feed.items() if k in names}
            return lambda: session.run(None, inputs)

    connection.send("ready")
    while (message := connection.recv()) is not None:
        seq_len, batch_size, block_s = message
        run = make_runner(pair_inputs(seq_len, batch_size))
        run()  # untimed: first run of this shape
        times, started = [], time.perf_counter()
        while len(times) < 3 or time.perf_counter() - started < block_s:
            t = time.perf_counter()
            run()
            times.append(time.perf_counter() - t)
        connection.send(times)


def interleaved_medians(workers: dict, seq_len: int, batch_size: int, budget_s: float, block_s: float = 0.4) -> dict[str, float]:
    """Median ms per backend. Each backend runs in its own process; they take turns in blocks of
    about `block_s` until `budget_s` has passed, so that machine noise hits all alike while no
    backend's threads compete with another's."""
    times: dict[str, list[float]] = {name: [] for name in workers}
    started = time.perf_counter()
    while time.perf_counter() - started < budget_s or min(len(v) for v in times.values()) < 6:
        for name, connection in workers.items():
            connection.send((seq_len, batch_size, block_s))
            times[name] += connection.recv()
    return {name: 1000 * float(np.median(values)) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="the PyTorch checkpoint folder")
    parser.add_argument("--bundle", required=True, help="the bundle `tuneship export` wrote from it")
    parser.add_argument("--extra", nargs="*", default=[], help="more ONNX files to time (experiments)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget", type=float, default=6.0, help="seconds of timing per shape, all backends together")
    args = parser.parse_args()

    bundle = Path(args.bundle)
    manifest = BundleManifest.load(bundle)
    files = {f"onnx {p}": bundle / info["file"] for p, info in manifest.models.items()}
    files.update({f"extra {Path(f).parent.name}/{Path(f).name}": Path(f) for f in args.extra})
    backends = {"pytorch fp32": ("torch", args.checkpoint), **{name: ("onnx", str(path)) for name, path in files.items()}}

    context = multiprocessing.get_context("spawn")
    workers, processes = {}, []
    for name, (kind, path) in backends.items():
        parent, child = context.Pipe()
        process = context.Process(target=_worker, args=(child, kind, path, args.threads), daemon=True)
        process.start()
        processes.append(process)
        workers[name] = parent
    for connection in workers.values():
        connection.recv()  # "ready"

    results = {}
    for seq_len, batch_size in SHAPES:
        results[(seq_len, batch_size)] = interleaved_medians(workers, seq_len, batch_size, args.budget)
        print(f"  {seq_len} tokens x {batch_size}: done", flush=True)
    for connection in workers.values():
        connection.send(None)
    for process in processes:
        process.join()

    weights = next(p for p in (Path(args.checkpoint) / "model.safetensors", Path(args.checkpoint) / "pytorch_model.bin") if p.is_file())
    sizes = {"pytorch fp32": weights.stat().st_size, **{name: path.stat().st_size for name, path in files.items()}}
    header = "| backend | size (MB) | " + " | ".join(f"{s} tok x {b}" for s, b in SHAPES) + " |"
    print(f"\nModel-only latency, median ms (speed-up vs PyTorch), {args.threads} threads\n")
    print(header)
    print("|" + "---|" * (len(SHAPES) + 2))
    for name in results[SHAPES[0]]:
        cells = []
        for shape in SHAPES:
            ms, base = results[shape][name], results[shape]["pytorch fp32"]
            cells.append(f"{ms:.1f}" if name == "pytorch fp32" else f"{ms:.1f} ({base / ms:.2f}x)")
        print(f"| {name} | {sizes[name] / 1e6:.1f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
