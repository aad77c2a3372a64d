"""onnxruntime's idle-thread spinning against OpenVINO in one process: which setting a mixed plan should use.

    python benchmarks/spinning.py --bundle runs/relevance-minilm-onnx [--calls 200]

For each of onnxruntime's three spinning settings (`create_session(spinning=True | "run" | False)`), it times
the bundle's onnxruntime int8 model back to back (as a plan that serves only onnxruntime runs it), then the
same model taking turns with OpenVINO's int8 (the NNCF file) call by call (as a mixed plan runs them when
requests of two length buckets arrive together), and reports median milliseconds per call of each. The three
settings take turns in rounds so that machine noise hits them alike. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_speed import cpu_name  # noqa: E402

SHAPES = ((32, 1), (128, 1), (32, 32), (128, 32))
SETTINGS = {"spinning": True, "spinning within a run": "run", "no spinning": False}


def feed(names: list[str], seq_len: int, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(seed).integers(1000, 20000, size=(batch_size, seq_len), dtype=np.int64)
    values = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    return {name: values[name] for name in names}


def timed(session, inputs: dict) -> float:
    started = time.perf_counter()
    session.run(None, inputs)
    return time.perf_counter() - started


def main() -> None:
    from tuneship.serving.engines import open_session
    from tuneship.bundle import NNCF_MODEL, BundleManifest
    from tuneship.serving.session import available_cores, create_session

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--calls", type=int, default=200,
                        help="calls per setting and pattern in each round at batch 1 (fewer at larger batches)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=available_cores())
    args = parser.parse_args()
    folder = Path(args.bundle)
    manifest = BundleManifest.load(folder)
    ort = {label: create_session(folder / manifest.model_file("int8"), args.threads, spinning)
           for label, spinning in SETTINGS.items()}
    openvino = open_session("openvino", folder / manifest.model_file(NNCF_MODEL), args.threads, precision="int8")
    names = [i.name for i in openvino.get_inputs()]
    times: dict[tuple, list[float]] = {}
    for _ in range(args.rounds):
        for seq_len, batch_size in SHAPES:
            inputs = feed(names, seq_len, batch_size)
            calls = max(10, args.calls * 2 // batch_size) if batch_size > 1 else args.calls
            for label, session in ort.items():
                timed(session, inputs), timed(openvino, inputs)  # warm
                alone = [timed(session, inputs) for _ in range(calls)]
                turns = [(timed(session, inputs), timed(openvino, inputs)) for _ in range(calls)]
                times.setdefault((label, seq_len, batch_size, "alone"), []).append(statistics.median(alone))
                times.setdefault((label, seq_len, batch_size, "ort"), []).append(statistics.median(t[0] for t in turns))
                times.setdefault((label, seq_len, batch_size, "ov"), []).append(statistics.median(t[1] for t in turns))
    print(f"{cpu_name()}, {args.threads} threads, {args.rounds} rounds; median ms per call "
          "(the best round's)\n")
    print("| shape | onnxruntime setting | onnxruntime int8 alone | onnxruntime int8 in turns | OpenVINO int8 in turns |")
    print("|---" * 5 + "|")
    for seq_len, batch_size in SHAPES:
        for label in SETTINGS:
            cells = [f"{1000 * min(times[label, seq_len, batch_size, kind]):.2f}" for kind in ("alone", "ort", "ov")]
            print(f"| {seq_len} tok x {batch_size} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
