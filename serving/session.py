"""onnxruntime sessions for tuneship's models: CPU, tuned for latency, and checked against the manifest."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TuneshipError


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits where visible)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# onnxruntime 1.32's CPU SkipLayerNormalization kernel is ~6x slower than the Add + LayerNormalization
# it replaces (255 vs 41 microseconds at 128x384 here), so the session must not fuse them back.
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


SPINNING = (True, False, "run")
# What `serve` (and bench's bundle-default, which is served as `serve` serves) opens onnxruntime with: threads spin
# within a run and leave the CPU to the event loop (and to OpenVINO's threads) as soon as it returns.
SERVER_SPINNING = "run"


def create_session(model_file: str | Path | bytes, threads: int | None = None, spinning: bool | str = True):
    """An onnxruntime CPU session tuned for latency: all graph optimizations (but one), `threads` intra-op threads.

    `model_file` is an ONNX file, or a serialized model (`ModelProto.SerializeToString()`).

    `spinning`: True lets idle worker threads busy-wait for the next run (fastest back to back); False stops
    them from ever busy-waiting; "run" lets them spin within a run and stops them as soon as it returns, so
    that they leave the CPU to an HTTP event loop or to another runtime's threads between runs.
    """
    if spinning not in SPINNING:
        raise TuneshipError(f"spinning must be True, False or 'run', not {spinning!r}")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if spinning is False:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    elif spinning == "run":
        options.add_session_config_entry("session.force_spinning_stop", "1")
    try:
        source = model_file if isinstance(model_file, bytes) else str(model_file)
        return ort.InferenceSession(
            source, options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
        )
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
        name = "the serialized model" if isinstance(model_file, bytes) else model_file
        raise TuneshipError(f"{name}: onnxruntime could not load the model: {error}") from None


def check_inputs(session, manifest, path: Path) -> None:
    """The graph must take the inputs the manifest names (tokenization feeds exactly those)."""
    found = sorted(i.name for i in session.get_inputs())
    if found != sorted(manifest.input_names):
        raise TuneshipError(f"{path}: the graph's inputs are {', '.join(found)}, but tuneship.json's field "
                            f"'input_names' says {', '.join(manifest.input_names)}")
