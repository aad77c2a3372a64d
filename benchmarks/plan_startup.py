"""Load to ready with the serving plan: `tuneship serve` from launch to its first 200 on /readyz, without and
with a valid plan cache, and `Predictor.from_bundle` in-process the same two ways.

    python benchmarks/plan_startup.py --bundle runs/relevance-minilm-onnx [--rounds 3]

Each round deletes the bundle's plan cache, starts the server (it plans: golden checks, timings, the cache
written), stops it, then starts it again (the cache is read; its candidates are still golden-checked). The
in-process figures time `from_bundle` alone (Python, onnxruntime and OpenVINO already imported). Prints a
markdown table with the median of the rounds and the plan the server made.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_speed import cpu_name, start_server  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def served(bundle: str) -> tuple[float, dict]:
    """Seconds from launching `tuneship serve` to /readyz answering 200, and the plan of /v1/model."""
    port = free_port()
    started = time.perf_counter()
    server = start_server(bundle, "auto", port, [])
    seconds = time.perf_counter() - started
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/model", timeout=10) as response:
            plan = json.loads(response.read())["plan"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return seconds, plan


def in_process(bundle: str) -> float:
    from tuneship.serving import Predictor

    started = time.perf_counter()
    Predictor.from_bundle(bundle)
    return time.perf_counter() - started


def main() -> None:
    from tuneship.serving.plan import PLAN_FILE

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cache = Path(args.bundle) / PLAN_FILE
    figures: dict[str, list[float]] = {"serve, no cache": [], "serve, cache": [], "from_bundle, no cache": [],
                                       "from_bundle, cache": []}
    plan = {}
    in_process(args.bundle)  # imports and first-load costs out of the way
    for _ in range(args.rounds):
        cache.unlink(missing_ok=True)
        seconds, plan = served(args.bundle)
        figures["serve, no cache"].append(seconds)
        assert not plan["cached"] and cache.is_file()
        seconds, again = served(args.bundle)
        figures["serve, cache"].append(seconds)
        assert again["cached"], "the second start read the cache"
        cache.unlink()
        figures["from_bundle, no cache"].append(in_process(args.bundle))
        figures["from_bundle, cache"].append(in_process(args.bundle))
    print(f"\n### Load to ready, {args.bundle} ({cpu_name()}), median of {args.rounds} rounds\n")
    print("| what | seconds | rounds |")
    print("|---|---:|---|")
    for name, values in figures.items():
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    ranges = ", ".join(f"{r['lengths']}: {r['candidate']}" for r in plan["ranges"])
    print(f"\nplan: {ranges} (made in {plan['seconds']:.1f} s)")
    for name, verdict in plan["candidates"].items():
        print(f"- {name}: {verdict['reason']}" + (f"; ms {verdict['ms']}" if "ms" in verdict else ""))


if __name__ == "__main__":
    main()
