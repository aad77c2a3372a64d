"""A distilled student against its teacher: both bundles as served (their plans), timed in one interleaved run.

    python benchmarks/student_speed.py --teacher runs/mrpc-onnx --student runs/mrpc-3l-onnx \\
        [--data ../shared/data/mrpc/validation.csv] [--seq-lens 32,128,256] [--batch-sizes 1,32]

Both bundles run as `tuneship serve` would run them here (`bundle-default`: each bundle's plan, see
docs/serving.md; `--backend onnx-int8` for onnxruntime's int8 alone) in this one process with the same thread
count, taking turns in short blocks at every shape so that a slow spell of the machine hits both alike. Inputs
are real words (from `--data`) cut to exactly the shape's token count. Model-only median latency per call
(tokenization excluded, as `tuneship bench`'s model-only columns) and the speed-up of the student; with
`--data`, both bundles' accuracy and F1 on it. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from tuneship.bench.backends import load_backend
from tuneship.bench.classification import make_inputs, read_rows, score
from tuneship.bench.inputs import words_of
from tuneship.bundle import BundleManifest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_speed import cpu_name  # noqa: E402


def timed_turns(forwards: dict, seconds: float, block: int = 5) -> dict[str, float]:
    """Median seconds per call of each forward; they take turns `block` calls at a time for `seconds` each."""
    times: dict[str, list[float]] = {name: [] for name in forwards}
    for forward in forwards.values():  # warm-up
        forward()
    while min(sum(values) for values in times.values()) < seconds:
        for name, forward in forwards.items():
            for _ in range(block):
                started = time.perf_counter()
                forward()
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="the teacher's bundle")
    parser.add_argument("--student", required=True, help="the student's bundle")
    parser.add_argument("--data", help="labelled file to score both on")
    parser.add_argument("--seq-lens", default="32,128,256")
    parser.add_argument("--batch-sizes", default="1,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per model and shape")
    parser.add_argument("--backend", default="bundle-default", help="the bench backend both bundles run on")
    args = parser.parse_args()

    bundles = {"teacher": args.teacher, "student": args.student}
    batch = max(int(value) for value in args.batch_sizes.split(","))
    backends = {name: load_backend(args.backend, "", bundle, args.threads, batch) for name, bundle in bundles.items()}
    manifest = BundleManifest.load(args.teacher)
    rows = read_rows(args.data, manifest, 100_000) if args.data else None
    words = words_of(rows[0][:200] + (rows[1] or [])[:200]) if rows else []

    print(f"\n### Student ({args.student}) against teacher ({args.teacher}), {args.backend}, model only, "
          f"{args.threads} threads ({os.cpu_count()} CPUs, {cpu_name()})\n")
    for name, backend in backends.items():
        if "ranges" in backend.details:
            print(f"- {name}'s plan: " + ", ".join(f"{r}: {c}" for r, c in backend.details["ranges"]))
    print()
    print("| tokens x batch | teacher ms | student ms | student speed-up |")
    print("|---|---:|---:|---:|")
    for seq_len in (int(value) for value in args.seq_lens.split(",")):
        for batch_size in (int(value) for value in args.batch_sizes.split(",")):
            texts, pairs = make_inputs(words, seq_len, batch_size, Path(args.teacher), manifest)
            forwards = {}
            for name, backend in backends.items():
                feed = backend.prepare(texts, pairs, seq_len)
                forwards[name] = lambda backend=backend, feed=feed: backend.forward(feed)
            medians = timed_turns(forwards, args.seconds)
            print(f"| {seq_len} x {batch_size} | {medians['teacher'] * 1e3:.2f} | {medians['student'] * 1e3:.2f} | "
                  f"{medians['teacher'] / medians['student']:.2f}x |", flush=True)
    if rows:
        print(f"\n| bundle ({args.backend}) | accuracy on {args.data} ({len(rows[2])} rows) | F1 |")
        print("|---|---:|---:|")
        for name, backend in backends.items():
            metrics = score(backend.predictions(backend.model.manifest.max_length, rows[0], rows[1]),
                            rows, manifest)
            print(f"| {name} | {metrics['accuracy']:.4f} | {metrics.get('f1', float('nan')):.4f} |")


if __name__ == "__main__":
    main()
