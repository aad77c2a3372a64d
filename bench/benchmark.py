"""`benchmark()`: every backend on every shape, interleaved, each in its own process; rows for the report."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import tasks
from ..bundle import NNCF_MODEL, BundleManifest
from ..checkpoint import checkpoint_weights
from ..errors import MissingDependencyError, TuneshipError
from ..log import get_logger
from ..serving.engines import openvino_has_bf16, openvino_missing
from .backends import OPENVINO_BACKENDS
from .config import BACKENDS, BASELINE, BenchConfig
from .inputs import words_of
from .worker import MODES, BackendProcess, LabelRequest, TimingRequest

logger = get_logger(__name__)
QUALITY_KEYS = ("accuracy", "exact_match", "f1", "agreement_with_torch")
BLOCK_S = 0.25  # each backend times this long in its turn, so machine noise hits all backends alike


@dataclass
class BenchResult:
    """What `benchmark()` measured: one row per backend and shape, per-backend facts, the machine, the files."""

    rows: list[dict]
    backends: dict[str, dict]
    machine: dict
    skipped: dict[str, str]
    config: BenchConfig
    output: Path | None = None

    def to_dict(self) -> dict:
        return {"config": self.config.to_dict(), "machine": self.machine, "backends": self.backends,
                "skipped": self.skipped, "rows": self.rows}


def select_backends(config: BenchConfig, manifest: BundleManifest) -> tuple[list[str], dict[str, str]]:
    """The backends that can run here, and why each of the others was left out.

    A backend named by the user that cannot run is an error; with the default list it is only skipped.
    """
    chosen, skipped = [], {}
    asked_for_all = config.backends == BACKENDS
    for name in config.backends:
        reason = None
        if name.startswith("onnx-") and name.split("-")[1] not in manifest.models:
            reason = f"the bundle has no {name.split('-')[1]} model"
        elif name in OPENVINO_BACKENDS and openvino_missing():
            reason = openvino_missing()
        elif name == "openvino-bf16" and not openvino_has_bf16():
            reason = "this CPU has no native bf16"
        elif name == "openvino-int8" and NNCF_MODEL not in manifest.models:
            why = manifest.gates.get(NNCF_MODEL, {}).get("reason", "exported without it (--no-nncf, or an older tuneship)")
            reason = f"the bundle has no NNCF int8 model: {why}"
        if reason and not asked_for_all:
            raise TuneshipError(f"backend {name} cannot run: {reason}")
        if reason:
            skipped[name] = reason
        else:
            chosen.append(name)
    return chosen, skipped


def _check_inputs(config: BenchConfig) -> BundleManifest:
    checkpoint = Path(config.checkpoint)
    checkpoint_weights(checkpoint)
    manifest = BundleManifest.load(config.bundle)
    tasks.get(manifest.task).check("bench")
    longest = json.loads((checkpoint / "config.json").read_text()).get("max_position_embeddings", 512)
    if max(config.seq_lens) > longest:
        raise TuneshipError(f"seq_lens: the model takes at most {longest} tokens, not {max(config.seq_lens)}")
    if config.data is not None and not Path(config.data).is_file():
        raise TuneshipError(f"--data {config.data}: no such file")
    return manifest


def _examples(bundle: str, manifest: BundleManifest) -> list[list[str]]:
    settings = manifest.task_settings(tasks.get(manifest.task).stage("serving").Settings)
    return manifest.examples(bundle, settings.input_columns)


def _source_matches(config: BenchConfig, manifest: BundleManifest) -> bool:
    from ..export.bundle import checkpoint_digest

    expected = manifest.source.get("sha256")
    return expected is None or expected == checkpoint_digest(Path(config.checkpoint))


def _interleave(workers: dict[str, BackendProcess], request: TimingRequest, duration: float, min_calls: int,
                expected_width: int) -> dict[str, list[float]]:
    """Seconds per call for each backend; backends take turns in short blocks until each has `duration`
    seconds and `min_calls` calls."""
    times: dict[str, list[float]] = {name: [] for name in workers}

    def wants_more(name: str) -> bool:
        return sum(times[name]) < duration or len(times[name]) < min_calls

    while any(wants_more(name) for name in workers):
        for name, worker in workers.items():
            if wants_more(name):
                calls, width = worker.ask(request)
                if width is not None and width != expected_width:
                    raise TuneshipError(f"backend {name}: inputs came out {width} tokens long, not {expected_width}")
                times[name] += calls
    return times


def _stats(seconds: list[float], batch_size: int, prefix: str = "") -> dict:
    ms = 1000 * np.asarray(seconds)
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {f"{prefix}latency_p50_ms": float(p50), f"{prefix}latency_p95_ms": float(p95),
            f"{prefix}latency_p99_ms": float(p99), f"{prefix}throughput": batch_size * len(ms) / float(ms.sum() / 1000),
            f"{prefix}calls": len(ms)}


def _rows(timings: dict, facts: dict[str, dict], config: BenchConfig) -> list[dict]:
    rows = []
    for name in facts:
        for seq_len in config.seq_lens:
            for batch_size in config.batch_sizes:
                row = {"backend": name, "runtime": facts[name]["runtime"], "precision": facts[name]["precision"],
                       "seq_len": seq_len, "batch_size": batch_size}
                for mode, prefix in zip(MODES, ("", "model_")):
                    row.update(_stats(timings[seq_len, batch_size, mode][name], batch_size, prefix))
                    base = np.median(timings[seq_len, batch_size, mode][BASELINE])
                    row[f"{prefix}speedup_vs_torch"] = float(base / np.median(timings[seq_len, batch_size, mode][name]))
                row.update({key: facts[name][key] for key in ("size_bytes", "peak_rss_mb")})
                row.update({key: facts[name][key] for key in QUALITY_KEYS if key in facts[name]})
                rows.append(row)
    return rows


def _score(workers: dict[str, BackendProcess], rows: tuple, manifest: BundleManifest, facts: dict) -> None:
    """Quality on the labelled rows, into each backend's facts: the task's metrics (accuracy and F1; exact match and
    F1) and the share of outputs (labels, answer spans) that agree with PyTorch fp32."""
    task = tasks.get(manifest.task).stage("bench")
    texts, pairs, labels = rows
    predicted = {name: worker.ask(LabelRequest(texts, pairs, manifest.max_length))[0] for name, worker in workers.items()}
    for name, output in predicted.items():
        agreement = float(np.mean([_hashable(a) == _hashable(b) for a, b in zip(output, predicted[BASELINE])]))
        facts[name].update(task.score(output, rows, manifest), scored_rows=len(labels), agreement_with_torch=agreement)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def benchmark(config: BenchConfig) -> BenchResult:
    """Time every backend on every shape, score them on `config.data`, and write bench.json, bench.md, bench.png.

    Example:
        >>> result = benchmark(BenchConfig(checkpoint="runs/mrpc", bundle="runs/mrpc-onnx"))  # doctest: +SKIP
        >>> next(r for r in result.rows if r["backend"] == "onnx-int8")["speedup_vs_torch"]  # doctest: +SKIP
        4.1
    """
    from tqdm.auto import tqdm

    from .report import machine_info, write_report

    if importlib.util.find_spec("torch") is None:  # checked, not imported: the parent stays light
        raise MissingDependencyError("`torch` is not installed; install it with: pip install 'tuneship[bench]'")
    manifest = _check_inputs(config)
    names, skipped = select_backends(config, manifest)
    if not _source_matches(config, manifest):
        logger.warning(f"{config.bundle} was not exported from {config.checkpoint} (checkpoint digest differs); "
                       "the speed comparison still holds, agreement with PyTorch will not")
    task = tasks.get(manifest.task).stage("bench")
    labelled = task.read_rows(config.data, manifest, config.max_rows) if config.data else None
    words = words_of(labelled[0][:200] + (labelled[1] or [])[:200]) if labelled else []
    words = words or words_of([text for row in _examples(config.bundle, manifest) for text in row])

    workers, facts = {}, {}
    try:
        # bundle-default plans (times its candidates) as it loads: alone, before the others load and compete for cores
        first = [name for name in names if name == "bundle-default"]
        for group in (first, [name for name in names if name not in first]):
            for name in group:
                workers[name] = BackendProcess(name, config.checkpoint, config.bundle, config.threads,
                                               max(config.batch_sizes))
            for name in tqdm(group, desc="loading backends", leave=False):
                size_bytes, details = workers[name].receive()
                facts[name] = {**details, "size_bytes": size_bytes}
        workers = {name: workers[name] for name in names}
        timings = {}
        shapes = [(s, b, mode) for s in config.seq_lens for b in config.batch_sizes for mode in MODES]
        progress = tqdm(shapes, desc="benchmarking", unit="shape")
        for seq_len, batch_size, mode in progress:
            progress.set_postfix_str(f"{seq_len} tokens x {batch_size}, {mode}")
            texts, pairs = task.make_inputs(words, seq_len, batch_size, Path(config.bundle), manifest)
            request = TimingRequest(mode, texts, pairs, seq_len, min(BLOCK_S, config.duration / 4))
            timings[seq_len, batch_size, mode] = _interleave(workers, request, config.duration / 2, config.min_calls,
                                                             seq_len)
        if labelled:
            _score(workers, labelled, manifest, facts)
        for name, worker in workers.items():
            facts[name]["peak_rss_mb"] = worker.finish()
    finally:
        for worker in workers.values():
            worker.kill()
    result = BenchResult(_rows(timings, facts, config), facts, machine_info(config.threads), skipped, config)
    result.output = write_report(result, Path(config.output))
    return result
