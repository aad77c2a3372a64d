"""One backend in its own process: it loads the model, times what it is asked to, and reports its peak memory.

Each backend runs in a process of its own, as in production, so that no backend's idle threads slow
another's and each process's peak resident memory is that backend's alone.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


from ..errors import TuneshipError

MODES = ("end-to-end", "model")


@dataclass
class TimingRequest:
    """Time `mode` on these inputs for about `block_s` seconds (at least one call) after one untimed call."""

    mode: str
    texts: Sequence[str]
    text_pairs: Sequence[str] | None
    max_length: int
    block_s: float


@dataclass
class LabelRequest:
    """Predicted label ids (classification) or answer spans (QA) for labelled rows, at the bundle's max length."""

    texts: Sequence[str]
    text_pairs: Sequence[str] | None
    max_length: int


def peak_memory_mb() -> float:
    """This process's peak resident memory. Linux keeps `ru_maxrss` across exec, so a spawned child would
    report its parent's peak; the kernel's per-process high-water mark (`VmHWM`) starts afresh."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kilobytes elsewhere


def time_calls(call, seconds: float) -> list[float]:
    """Seconds per call of `call`, called again and again for about `seconds` (at least once)."""
    times, started = [], time.perf_counter()
    while not times or time.perf_counter() - started < seconds:
        tick = time.perf_counter()
        call()
        times.append(time.perf_counter() - tick)
    return times


def _runner(backend, request: TimingRequest):
    """A no-argument callable doing one call of the mode, and the padded width of its inputs."""
    if request.mode == "end-to-end":
        return backend.end_to_end(request.max_length, request.texts, request.text_pairs), None
    feed = backend.prepare(request.texts, request.text_pairs, request.max_length)
    return (lambda: backend.forward(feed)), int(feed["input_ids"].shape[1])


def _serve(connection, backend) -> None:
    runners: dict = {}
    while (request := connection.recv()) is not None:
        if isinstance(request, LabelRequest):
            connection.send(("ok", backend.predictions(request.max_length, request.texts, request.text_pairs)))
            continue
        key = (request.mode, len(request.texts), request.max_length, request.texts[0])
        if key not in runners:
            runners[key] = _runner(backend, request)
        run, width = runners[key]
        # untimed, at the start of every turn: every backend is timed warm, as under steady load (caches refilled after
        # another backend's turn, the first call of a shape allocated, memory a plan gave back while idle taken again)
        run()
        times = time_calls(run, request.block_s)
        connection.send(("ok", times, width))


def run_worker(connection, name: str, checkpoint: str, bundle: str, threads: int, batch_size: int = 32) -> None:
    """Process entry point: load backend `name`, answer requests until `None`, then send peak RSS in MB."""
    warnings.filterwarnings("ignore")  # torch's quantization deprecation notices would fill the progress bar
    from .backends import load_backend

    try:
        backend = load_backend(name, checkpoint, bundle, threads, batch_size)
        connection.send(("ready", backend.size_bytes, backend.details))
        _serve(connection, backend)
        connection.send(("done", peak_memory_mb()))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which names the backend
        connection.send(("error", f"{type(error).__name__}: {error}", traceback.format_exc()))


class BackendProcess:
    """The parent's handle on one worker process."""

    def __init__(self, name: str, checkpoint: str, bundle: str, threads: int, batch_size: int = 32):
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.connection, child = context.Pipe()
        self.process = context.Process(target=run_worker, args=(child, name, checkpoint, bundle, threads, batch_size),
                                       name=f"tuneship-bench-{name}", daemon=True)
        self.process.start()
        child.close()

    def receive(self) -> tuple:
        try:
            message = self.connection.recv()
        except EOFError:
            raise TuneshipError(f"backend {self.name}: its process died (exit code {self.process.exitcode}); "
                                "out of memory?") from None
        if message[0] == "error":
            raise TuneshipError(f"backend {self.name} failed: {message[1]}")
        return message[1:]

    def ask(self, request: TimingRequest | LabelRequest) -> tuple:
        self.connection.send(request)
        return self.receive()

    def finish(self) -> float:
        """Stop the process; its peak resident memory in MB."""
        self.connection.send(None)
        (peak_mb,) = self.receive()
        self.process.join(timeout=30)
        return peak_mb

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)
