"""The server's resident memory through bursts of large requests: fresh, right after each burst, 1 s idle after it,
and after a quiet spell of small requests, for three rounds, with each runtime the bundle can serve.

    python benchmarks/server_memory.py --bundle runs/mrpc-onnx [--runtimes auto,onnxruntime,openvino] [--quiet-s 30]

Each runtime gets its own `tuneship serve` process (`--runtime`, the plan on load as serve makes it). A burst is
`--clients` concurrent requests of `--rows` pairs of about 256 tokens; the quiet spell is one small request a second.
Memory is read from /proc (VmRSS, and VmHWM for the peak). Prints a markdown table. Timing does not matter here, so
it may run beside other work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_speed import free_port, rss_mb, start_server  # noqa: E402

IDLE_S = 1.0  # twice serving.plan.RELEASE_IDLE_S
WORDS = ("the company said on tuesday that its quarterly profit rose because of strong demand for its new products "
         "while analysts had expected a smaller gain and shares closed higher in new york trading").split()


def long_text(words: int, shift: int) -> str:
    return " ".join(WORDS[(i + shift) % len(WORDS)] for i in range(words))


def classify(port: int, inputs: list[dict]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/classify", json.dumps({"inputs": inputs}).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
        return response.status


def measure(bundle: str, runtime: str, rounds: int, clients: int, rows: int, quiet_s: float) -> list[str]:
    port = free_port()
    server = start_server(bundle, "auto", port, ["--runtime", runtime], ready_s=600)
    try:
        small = [{"text": "profit rose", "text_pair": "the profit went up"}]
        classify(port, small)
        lines = [f"| {runtime} | fresh | {rss_mb(server.pid)[0]:.0f} | {rss_mb(server.pid)[1]:.0f} |"]
        for round_ in range(1, rounds + 1):
            burst = [[{"text": long_text(120, c + r), "text_pair": long_text(120, c + r + 7)} for r in range(rows)]
                     for c in range(clients)]
            with ThreadPoolExecutor(clients) as pool:
                statuses = list(pool.map(lambda inputs: classify(port, inputs), burst))
            if set(statuses) != {200}:
                raise SystemExit(f"{runtime}: a burst request failed: {statuses}")
            current, peak = rss_mb(server.pid)
            lines.append(f"| {runtime} | round {round_}: right after the burst | {current:.0f} | {peak:.0f} |")
            time.sleep(IDLE_S)  # the sessions give a large run's memory back once idle (`serving.plan.IdleRelease`)
            current, peak = rss_mb(server.pid)
            lines.append(f"| {runtime} | round {round_}: {IDLE_S:g} s idle after it | {current:.0f} | {peak:.0f} |")
            started = time.monotonic()
            while time.monotonic() - started < quiet_s:
                classify(port, small)
                time.sleep(1.0)
            current, peak = rss_mb(server.pid)
            lines.append(f"| {runtime} | round {round_}: {quiet_s:g} s of small requests later | {current:.0f} | {peak:.0f} |")
            print(*lines[-3:], sep="\n", file=sys.stderr)
        return lines
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--runtimes", default="auto,onnxruntime,openvino", help="serve --runtime values, in turn")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="concurrent requests in a burst")
    parser.add_argument("--rows", type=int, default=32, help="pairs per burst request (about 256 tokens each)")
    parser.add_argument("--quiet-s", type=float, default=30.0, help="seconds of small requests after each burst")
    args = parser.parse_args()
    print("| runtime | when | RSS MB | peak MB |\n| --- | --- | --- | --- |")
    for runtime in args.runtimes.split(","):
        for line in measure(args.bundle, runtime, args.rounds, args.clients, args.rows, args.quiet_s):
            print(line)


if __name__ == "__main__":
    main()
