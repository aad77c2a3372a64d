"""Past one machine, measured on this one: batch prediction and HTTP serving with and without Ray.

    python benchmarks/ray_scaling.py --bundle runs/relevance-minilm-onnx [--rows 100000]

Batch prediction of one file of `--rows` (article, comment) pairs, built from the bundled relevance
examples: `tuneship predict` in one process (the cores available as onnxruntime threads) against
`tuneship predict --engine ray` on a local Ray cluster with 1 actor x all cores and with one actor per
core (1 thread each). Rows/s count the whole command, Ray's start-up included (printed apart), and
peak memory is the largest sum of resident memory over the command's process tree (for Ray: the
driver, the GCS, the raylet and the workers).

HTTP: `tuneship serve` against `tuneship serve --engine ray` with 1 and 2 replicas, each under the
same concurrency-64 load as `serving_speed.py` (its load generator, in its own process).

Prints a markdown table per job.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_speed import cpu_name, example_pairs, free_port, run_load  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TUNESHIP = str(Path(sys.executable).with_name("tuneship"))


def write_rows(path: Path, rows: int) -> None:
    """`rows` (Article, Comment) pairs drawn with a fixed seed from every bundled relevance example."""
    pairs = []
    for name in ("train", "validation", "test"):
        with open(ROOT / "examples" / "relevance" / f"{name}.csv", encoding="utf-8") as handle:
            pairs += [(row["Article"], row["Comment"]) for row in csv.DictReader(handle)]
    generator = random.Random(0)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Article", "Comment"])
        for _ in range(rows):
            writer.writerow(generator.choice(pairs))


def tree_rss_mb(pid: int) -> float:
    """Resident memory of `pid` and all its descendants, in MB."""
    import psutil

    try:
        process = psutil.Process(pid)
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def timed(command: list[str]) -> dict:
    """Run `command`; its wall time, the peak RSS of its process tree, and its output."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1", "RAY_DEDUP_LOGS": "0"})
    peak, output = 0.0, []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        peak = max(peak, tree_rss_mb(process.pid))
        time.sleep(0.25)
    reader.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{''.join(output)[-3000:]}")
    return {"seconds": seconds, "peak_mb": peak, "output": "".join(output)}


def ray_start_seconds() -> float:
    """How long `ray.init()` of a local cluster and its shutdown take here (the fixed cost in every Ray run)."""
    code = "import time, ray; t = time.perf_counter(); ray.init(log_to_driver=False); print(time.perf_counter() - t)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def batch_prediction(bundle: str, rows: int, folder: Path, cores: int) -> None:
    data = folder / "pairs.csv"
    write_rows(data, rows)
    runs = [("`tuneship predict` (one process)", [TUNESHIP, "predict", "--bundle", bundle, "--data", str(data),
                                                   "--output", str(folder / "local.csv"), "--overwrite",
                                                   "--threads", str(cores)])]
    for actors, threads in ((1, cores), (cores, 1)):
        runs.append((f"`--engine ray`, {actors} actor(s) x {threads} thread(s)",
                     [TUNESHIP, "predict", "--bundle", bundle, "--data", str(data), "--output",
                      str(folder / f"ray-{actors}"), "--overwrite", "--engine", "ray", "--actors", str(actors),
                      "--threads-per-actor", str(threads)]))
    startup = ray_start_seconds()
    print(f"\n### Batch prediction of {rows:,} pairs ({bundle}, {os.cpu_count()} CPUs, {cpu_name()})\n")
    print("| run | seconds | rows/s | peak memory (MB, process tree) |")
    print("|---|---:|---:|---:|")
    for name, command in runs:
        result = timed(command)
        print(f"| {name} | {result['seconds']:.1f} | {rows / result['seconds']:.0f} | {result['peak_mb']:.0f} |",
              flush=True)
    print(f"\nA local Ray cluster takes {startup:.1f} s to start here; it is counted in the Ray rows.")


def wait_ready(port: int, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"the server did not become ready in {seconds:.0f} s")


def http_serving(bundle: str, seconds: float, cores: int) -> None:
    pairs_file = Path(tempfile.mkstemp(suffix=".json")[1])
    pairs_file.write_text(json.dumps(example_pairs(bundle)))
    runs = [("`tuneship serve`", [])]
    runs += [(f"`--engine ray`, {n} replica(s) x {max(1, cores // n)} thread(s)",
              ["--engine", "ray", "--replicas", str(n), "--threads", str(max(1, cores // n))]) for n in (1, 2)]
    print(f"\n### HTTP at concurrency 64, {seconds:.0f} s each ({bundle}, {os.cpu_count()} CPUs, {cpu_name()})\n")
    print("| server | requests/s | p50 ms | p99 ms | errors | server memory (MB, process tree) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, extra in runs:
        port = free_port()
        server = subprocess.Popen([TUNESHIP, "serve", "--bundle", bundle, "--port", str(port), "--log-level", "warning",
                                   *extra], env={**os.environ, "HF_HUB_OFFLINE": "1", "TUNESHIP_API_KEY": ""},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_ready(port, server)
            run_load(port, pairs_file, 64, 3.0)  # warm-up (Serve routes lazily)
            result = run_load(port, pairs_file, 64, seconds)
            memory = tree_rss_mb(server.pid)
            print(f"| {name} | {result['per_second']:.0f} | {result['p50']:.1f} | {result['p99']:.1f} | "
                  f"{result['errors']} | {memory:.0f} |", flush=True)
        finally:
            os.killpg(server.pid, 2)  # SIGINT: Serve shuts its replicas down
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
            if extra:  # the local cluster Serve started
                subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"], capture_output=True)
    pairs_file.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=str(ROOT / "runs" / "relevance-minilm-onnx"))
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each HTTP load run")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as folder:
        if not args.skip_batch:
            batch_prediction(args.bundle, args.rows, Path(folder), cores)
    if not args.skip_http:
        http_serving(args.bundle, args.seconds, cores)


if __name__ == "__main__":
    main()
