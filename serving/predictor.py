"""`Predictor`: a bundle's ONNX model on onnxruntime, with training's tokenization. No torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..columns import ColumnMapping
from ..errors import TuneshipError
from .encoding import TextEncoder
from .manifest import PRECISIONS, BundleManifest


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits where visible)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# onnxruntime 1.32's CPU SkipLayerNormalization kernel is ~6x slower than the Add + LayerNormalization
# it replaces (255 vs 41 microseconds at 128x384 here), so the session must not fuse them back.
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


def create_session(model_file: str | Path | bytes, threads: int | None = None, spinning: bool = True):
    """An onnxruntime CPU session tuned for latency: all graph optimizations (but one), `threads` intra-op threads.

    `model_file` is an ONNX file, or a serialized model (`ModelProto.SerializeToString()`).

    `spinning=False` stops idle worker threads from busy-waiting, which a server needs so that the
    threads leave the CPU to the HTTP event loop between runs.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        source = model_file if isinstance(model_file, bytes) else str(model_file)
        return ort.InferenceSession(
            source, options, providers=["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
        )
    except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
        name = "the serialized model" if isinstance(model_file, bytes) else model_file
        raise TuneshipError(f"{name}: onnxruntime could not load the model: {error}") from None


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def to_predictions(probabilities: np.ndarray, label_names: Sequence[str], truncated: Sequence[bool]) -> list[dict]:
    """The prediction records every tuneship classifier returns: label, score, probabilities, truncated."""
    results = []
    for row, cut in zip(probabilities, truncated):
        best = int(np.argmax(row))
        results.append({
            "label": label_names[best],
            "score": float(row[best]),
            "probabilities": {name: float(p) for name, p in zip(label_names, row)},
            "truncated": bool(cut),
        })
    return results


class Predictor:
    """Classify texts (or pairs) with a bundle's fp32 or int8 ONNX model.

    Example:
        >>> from tuneship.serving import Predictor
        >>> predictor = Predictor.from_bundle("runs/relevance-onnx")  # doctest: +SKIP
        >>> predictor.predict(["Article text"], ["A comment"])[0]["label"]  # doctest: +SKIP
        'relevant'
    """

    def __init__(self, session, encoder: TextEncoder, manifest: BundleManifest, precision: str):
        self.session = session
        self.encoder = encoder
        self.manifest = manifest
        self.precision = precision
        self.label_names = list(manifest.labels)
        self.input_names = [i.name for i in session.get_inputs()]

    @classmethod
    def from_bundle(
        cls, path: str | Path, precision: str | None = None, threads: int | None = None, spinning: bool = True
    ) -> "Predictor":
        """Load `path` (a folder written by `tuneship export`); `precision` defaults to the bundle's default.

        `threads` defaults to the cores available to the process; see `create_session` for `spinning`.
        """
        path = Path(path)
        if precision is not None and precision not in PRECISIONS:
            raise TuneshipError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        manifest = BundleManifest.load(path)
        precision = precision or manifest.default_precision
        session = create_session(path / manifest.model_file(precision), threads, spinning)
        encoder = TextEncoder.from_file(path, manifest.max_length, manifest.truncation)
        return cls(session, encoder, manifest, precision)

    @property
    def columns(self) -> ColumnMapping:
        return self.manifest.columns

    @property
    def positive_label_id(self) -> int | None:
        name = self.manifest.positive_label
        return self.label_names.index(name) if name in self.label_names else None

    def logits(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32
    ) -> tuple[np.ndarray, list[bool]]:
        """Raw logits (inputs x labels) in input order, and which inputs were truncated."""
        self.columns.check_inputs(texts, text_pairs)
        encodings = self.encoder.encode(texts, text_pairs)
        return self.run(encodings, batch_size), [self.encoder.is_truncated(e) for e in encodings]

    def run(self, encodings: Sequence, batch_size: int = 32, max_tokens: int | None = None) -> np.ndarray:
        """Logits for already tokenized inputs, batched by length (the HTTP server's batcher calls this)."""
        logits = np.zeros((len(encodings), len(self.label_names)), dtype=np.float32)
        for batch in self.encoder.batches(encodings, self.input_names, batch_size, max_tokens):
            logits[batch.indices] = self.session.run(None, batch.arrays)[0]
        return logits

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32) -> list[dict]:
        """Label, score, all class probabilities and whether the input was truncated, per input."""
        logits, truncated = self.logits(texts, text_pairs, batch_size)
        return to_predictions(softmax(logits), self.label_names, truncated)
