"""onnxruntime's CPU arena after a burst of large batches: resident memory fresh, after the burst, and after small
runs, with the arena as it is, disabled, and shrunk after each run (the run option serving uses for large runs).

    python benchmarks/arena_memory.py --model runs/mrpc-onnx/model_quantized.onnx [--rows 64] [--tokens 256]

Each setting runs in its own process (a fresh arena). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

SETTINGS = ("arena", "no-arena", "shrink")


def rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1)) / 1024


def measure(model: str, setting: str, rows: int, tokens: int) -> str:
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.enable_cpu_mem_arena = setting != "no-arena"
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def feed(batch: int, length: int) -> dict:
        return {n: (np.zeros if n == "token_type_ids" else np.ones)((batch, length), dtype=np.int64) for n in names}

    run_options = None
    if setting == "shrink":
        run_options = ort.RunOptions()
        run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    session.run(None, feed(1, 32))
    fresh = rss_mb()
    for _ in range(3):
        session.run(None, feed(rows, tokens), run_options)
    burst = rss_mb()
    for _ in range(20):
        session.run(None, feed(1, 32), run_options)
    time.sleep(2)
    after = rss_mb()
    started = time.perf_counter()
    for _ in range(20):
        session.run(None, feed(1, 128), run_options)
    ms = (time.perf_counter() - started) / 20 * 1000
    return f"| {setting} | {fresh:.0f} | {burst:.0f} | {after:.0f} | {ms:.1f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an ONNX file of a bundle")
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)  # one process per setting
    args = parser.parse_args()
    if args.setting:
        print(measure(args.model, args.setting, args.rows, args.tokens))
        return
    print(f"| setting | fresh MB | after 3 runs of {args.rows} x {args.tokens} | after 20 small runs | 128 x 1 ms |")
    print("|---|---|---|---|---|")
    for setting in SETTINGS:
        out = subprocess.run([sys.executable, __file__, "--model", args.model, "--rows", str(args.rows), "--tokens",
                              str(args.tokens), "--setting", setting], capture_output=True, text=True, check=True)
        print(out.stdout.strip())


if __name__ == "__main__":
    main()
