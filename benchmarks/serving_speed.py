"""Serving speed: the HTTP API under load against the model's own speed in-process, in one run.

    python benchmarks/serving_speed.py --bundle runs/relevance-minilm-onnx

Prints a markdown table and the two ratios that matter: HTTP throughput at concurrency 64 against
the in-process `Predictor` at batch 32 (the model's ceiling: what the server could reach if HTTP,
JSON and tokenization cost nothing), and HTTP p50 at concurrency 1 against an in-process call of one
pair. The inputs are pairs of about 30 tokens made from the bundled examples (an article's first
sentence and a comment). The HTTP server is `tuneship serve` in its own process; the load comes
from another process (`--load`, a small asyncio HTTP/1.1 client with keep-alive connections, cheap
enough not to steal much of the server's CPU); a third thread probes `/healthz` and `/readyz` during
the load, as an orchestrator would; the server's resident memory is read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "relevance" / "validation.csv"


def example_pairs(bundle: str, low: int = 24, high: int = 36) -> list[tuple[str, str]]:
    """(first sentence of an article, comment) pairs of `low` to `high` tokens with the bundle's tokenizer."""
    from tuneship.serving import BundleManifest
    from tuneship.encoding import TextEncoder

    manifest = BundleManifest.load(bundle)
    encoder = TextEncoder.from_file(bundle, manifest.max_length, manifest.settings["truncation"])
    with open(EXAMPLES, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pairs = [(re.split(r"(?<=\.) ", row["Article"])[0], row["Comment"]) for row in rows]
    lengths = [len(e.ids) for e in encoder.encode([a for a, _ in pairs], [b for _, b in pairs])]
    chosen = [pair for pair, n in zip(pairs, lengths) if low <= n <= high]
    print(f"{len(chosen)} example pairs of {low}-{high} tokens "
          f"(mean {np.mean([n for n in lengths if low <= n <= high]):.1f})", file=sys.stderr)
    return chosen


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p90": float(np.percentile(ms, 90)), "p99": float(np.percentile(ms, 99))}


# --------------------------------------------------------------------------- in-process


def in_process(bundle: str, precision: str, pairs, threads: int, seconds: float, batch_size: int = 1) -> dict:
    """`Predictor.predict` on `batch_size` pairs at a time (raw strings in, tokenization included)."""
    from tuneship.serving import Predictor

    predictor = Predictor.from_bundle(bundle, precision, threads)
    batches = [pairs[i : i + batch_size] for i in range(0, len(pairs) - batch_size + 1, batch_size)]
    for batch in batches[:5]:
        predictor.predict([a for a, _ in batch], [b for _, b in batch])
    times, i, start = [], 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = batches[i % len(batches)]
        t = time.perf_counter()
        predictor.predict([a for a, _ in batch], [b for _, b in batch])
        times.append(time.perf_counter() - t)
        i += 1
    return {"requests": len(times), "seconds": float(sum(times)), "per_second": batch_size * len(times) / sum(times),
            **percentiles(times)}


# --------------------------------------------------------------------------- the load generator (its own process)


def _request(host: str, port: int, a: str, b: str) -> bytes:
    body = json.dumps({"inputs": [{"text": a, "text_pair": b}]}).encode()
    head = (f"POST /v1/classify HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


async def _client(host, port, requests, deadline, latencies, failures):
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        writer.write(requests[i % len(requests)])
        i += 1
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        if b" 200 " not in status_line or b'"label"' not in body:
            failures.append(status_line.decode(errors="replace").strip())
        latencies.append(time.perf_counter() - started)
    writer.close()


async def _load(host, port, pairs, concurrency, seconds):
    requests = [_request(host, port, a, b) for a, b in pairs]
    latencies, failures = [], []
    # Warm-up, not counted.
    await asyncio.gather(*(_client(host, port, requests, time.perf_counter() + 1.0, [], []) for _ in range(concurrency)))
    started = time.perf_counter()
    await asyncio.gather(*(_client(host, port, requests[k % len(requests):] + requests[:k % len(requests)],
                                   started + seconds, latencies, failures) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"concurrency": concurrency, "requests": len(latencies), "seconds": elapsed,
            "per_second": len(latencies) / elapsed, "errors": len(failures), **percentiles(latencies)}


def load_main(args) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    pairs = json.loads(Path(args.pairs).read_text())
    print(json.dumps(asyncio.run(_load(args.host, args.port, pairs, args.concurrency, args.seconds))))


# --------------------------------------------------------------------------- the server (its own process)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of `pid` in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {k: int(v.split()[0]) / 1024 for k, v in re.findall(r"(VmRSS|VmHWM):\s+(.+)", status)}
    return values["VmRSS"], values["VmHWM"]


def start_server(bundle: str, precision: str, port: int, extra: list[str], ready_s: float = 30.0) -> subprocess.Popen:
    command = [sys.executable, "-m", "tuneship.cli", "serve", "--bundle", bundle, "--precision", precision,
               "--port", str(port), "--log-level", "warning", *extra]
    server = subprocess.Popen(command, env={**os.environ, "TUNESHIP_API_KEY": ""})
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"the server did not become ready in {ready_s:g} s")


def run_load(port: int, pairs_file: Path, concurrency: int, seconds: float) -> dict:
    command = [sys.executable, __file__, "--load", "--port", str(port), "--pairs", str(pairs_file),
               "--concurrency", str(concurrency), "--seconds", str(seconds)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def probe(port: int, stop: threading.Event, latencies: dict[str, list[float]], statuses: dict[str, list[int]]) -> None:
    """Call /healthz and /readyz every 100 ms until `stop`, as a load balancer or Kubernetes would."""
    while not stop.is_set():
        for path in ("/healthz", "/readyz"):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                    statuses[path].append(response.status)
            except urllib.error.HTTPError as error:
                statuses[path].append(error.code)
            except OSError:
                statuses[path].append(0)
            latencies[path].append(time.perf_counter() - started)
        stop.wait(0.1)


def batch_counts(port: int) -> tuple[float, float]:
    """(inputs, onnxruntime runs) so far, from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        text = response.read().decode()
    total = float(re.search(r"^tuneship_batch_size_sum (\S+)", text, re.M).group(1))
    count = float(re.search(r"^tuneship_batch_size_count (\S+)", text, re.M).group(1))
    return total, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=str(ROOT / "runs" / "relevance-minilm-onnx"))
    parser.add_argument("--precision", default="auto", help="auto: the bundle's plan, as serve runs it")
    parser.add_argument("--threads", type=int, default=2, help="in-process onnxruntime threads")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the concurrency-64 run")
    parser.add_argument("--in-process-seconds", type=float, default=10.0, help="length of each in-process run")
    parser.add_argument("--server-args", default="", help="extra `tuneship serve` flags, e.g. '--max-wait-ms 2'")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pairs", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return load_main(args)

    pairs = example_pairs(args.bundle)
    pairs_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"tuneship-bench-pairs-{os.getpid()}.json"
    pairs_file.write_text(json.dumps(pairs))
    port = free_port()
    server = start_server(args.bundle, args.precision, port, args.server_args.split())
    probes, statuses, stop = {"/healthz": [], "/readyz": []}, {"/healthz": [], "/readyz": []}, threading.Event()
    try:
        idle_rss, _ = rss_mb(server.pid)
        # The server idles (no spinning threads) while the in-process runs time the model alone.
        local = in_process(args.bundle, args.precision, pairs, args.threads, args.in_process_seconds)
        ceiling = in_process(args.bundle, args.precision, pairs, args.threads, args.in_process_seconds, batch_size=32)
        single = run_load(port, pairs_file, 1, 10.0)
        before = batch_counts(port)
        prober = threading.Thread(target=probe, args=(port, stop, probes, statuses), daemon=True)
        prober.start()
        loaded = run_load(port, pairs_file, 64, args.seconds)
        stop.set()
        prober.join()
        after = batch_counts(port)
        mean_batch = (after[0] - before[0]) / max(after[1] - before[1], 1)
        rss, peak = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)
        pairs_file.unlink(missing_ok=True)

    print(f"\nbundle {args.bundle}, {args.precision}, {os.cpu_count()} CPUs ({cpu_name()}); pairs of ~30 tokens\n")
    print("| measurement | calls | pairs/s | p50 ms | p90 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in ((f"in-process `Predictor.predict`, 1 pair, {args.threads} threads", local),
                    (f"in-process `Predictor.predict`, 32 pairs, {args.threads} threads", ceiling)):
        print(f"| {name} | {r['requests']} | {r['per_second']:.0f} | {r['p50']:.2f} | {r['p90']:.2f} | "
              f"{r['p99']:.2f} | 0 |")
    for name, r in (("HTTP, concurrency 1", single), ("HTTP, concurrency 64", loaded)):
        print(f"| {name}, {r['seconds']:.0f} s | {r['requests']} | {r['per_second']:.0f} | {r['p50']:.2f} | "
              f"{r['p90']:.2f} | {r['p99']:.2f} | {r['errors']} |")
    for path, seconds in probes.items():
        r = percentiles(seconds)
        not_ok = sum(status != 200 for status in statuses[path])
        print(f"| `GET {path}` during the concurrency-64 load | {len(seconds)} | - | {r['p50']:.2f} | {r['p90']:.2f} | "
              f"{r['p99']:.2f} | {not_ok} not 200 |")
    print(f"\nHTTP at concurrency 64 / in-process batch 32: **{loaded['per_second'] / ceiling['per_second']:.0%}** "
          f"({loaded['per_second']:.0f} / {ceiling['per_second']:.0f} pairs/s); "
          f"HTTP p50 at concurrency 1 - in-process p50: **{single['p50'] - local['p50']:+.2f} ms**")
    print(f"server resident memory: {idle_rss:.0f} MB idle, {rss:.0f} MB after the load, peak {peak:.0f} MB; "
          f"mean onnxruntime batch at concurrency 64: {mean_batch:.1f} inputs")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
