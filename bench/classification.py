"""The benchmark's classification parts: inputs of an exact token length, calls to time, labels to score."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.classification import load_labelled_texts
from ..encoding import TextEncoder
from ..metrics.classification import classification_metrics
from ..serving.classification import Predictor, Settings
from .inputs import make_inputs as make_texts


def serving_model(session, bundle: Path, manifest, precision: str) -> Predictor:
    """The bundle's classifier on `session` (onnxruntime's, or OpenVINO's behind the same `run` call)."""
    settings = manifest.task_settings(Settings)
    return Predictor(session, TextEncoder.from_file(bundle, manifest.max_length, settings.truncation), manifest, precision)


def sized(model, max_length: int):
    """`model` (a Predictor or a TorchClassifier) set to read inputs of `max_length` tokens."""
    if isinstance(model, Predictor):  # its encoder (and the tokenizer's truncation) holds the length: copy both
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_str(model.encoder.tokenizer.to_str())
        encoder = TextEncoder(tokenizer, max_length, model.settings.truncation, model.encoder.pad_id)
        return Predictor(model.session, encoder, model.manifest, model.precision)
    clone = copy.copy(model)
    clone.settings = {**model.settings, "max_length": max_length}
    return clone


def end_to_end(model, texts: Sequence[str], text_pairs: Sequence[str] | None):
    """Raw strings in, logits out."""
    return model.logits(texts, text_pairs, batch_size=len(texts))


def predictions(model, texts: Sequence[str], text_pairs: Sequence[str] | None) -> list:
    """Label ids, for scoring."""
    logits, _ = model.logits(texts, text_pairs)
    return np.argmax(logits, axis=-1).tolist()


def model_inputs(model, texts: Sequence[str], text_pairs: Sequence[str] | None) -> dict[str, np.ndarray]:
    """The padded int64 arrays the model itself reads (tokenized once, for the model-only timings)."""
    if isinstance(model, Predictor):
        return model.encoder.pad(model.encoder.encode(texts, text_pairs), model.input_names)
    return {name: np.asarray(value, dtype=np.int64) for name, value in model.encode(texts, text_pairs, "np").items()}


def make_inputs(words: Sequence[str], seq_len: int, batch_size: int, bundle: Path, manifest):
    """`batch_size` inputs that each tokenize to exactly `seq_len` tokens once truncated."""
    return make_texts(words, seq_len, batch_size, manifest.task_settings(Settings).columns.is_pair)


def read_rows(data: str, manifest, limit: int) -> tuple[list[str], list[str] | None, list]:
    """The first `limit` labelled rows of `data`, read with the bundle's columns and labels."""
    settings = manifest.task_settings(Settings)
    label2id = {name: i for i, name in enumerate(settings.labels)}
    texts, pairs, labels = load_labelled_texts(data, settings.columns, label2id)
    return texts[:limit], None if pairs is None else pairs[:limit], list(labels)[:limit]


def score(outputs: list, rows: tuple, manifest) -> dict:
    """Accuracy and F1 of predicted label ids against the rows' labels."""
    settings = manifest.task_settings(Settings)
    positive = settings.labels.index(settings.positive_label) if settings.positive_label in settings.labels else None
    metrics = classification_metrics(rows[2], outputs, settings.labels, positive)
    return {"accuracy": metrics["accuracy"], "f1": metrics["f1"]}
