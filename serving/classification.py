"""Text classification on onnxruntime: the manifest's `Settings`, `Predictor`, and file evaluation. No torch.

The file functions (`predict_rows`, `evaluate`) take any classifier with `columns`, `label_names`,
`positive_label_id` and `predict(texts, text_pairs, batch_size)`: a serving `Predictor` (ONNX bundle) or the
trainer's `TorchClassifier` (checkpoint), so a bundle is scored exactly as its checkpoint is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np

from ..bundle import BundleManifest, ManifestError, TaskSettings
from ..data.classification import softmax, to_predictions
from ..data.columns import ColumnMapping, label_text
from ..data.records import Record, field_value
from ..encoding import TextEncoder
from ..errors import DataError
from ..tasks import CLASSIFICATION
from .plan import Plan, make_plan


TRUNCATIONS = ("longest_first", "only_first", "only_second")


@dataclass
class Settings(TaskSettings):
    """The classification part of a manifest: the training data's columns, the labels, and pair truncation."""

    task: ClassVar[str] = CLASSIFICATION

    text_column: str
    text_pair_column: str | None
    label_column: str
    labels: list[str]
    positive_label: str | None = None
    truncation: str = "longest_first"

    @property
    def columns(self) -> ColumnMapping:
        return ColumnMapping(text=self.text_column, text_pair=self.text_pair_column, label=self.label_column)

    @property
    def input_columns(self) -> list[str]:
        return [c for c in (self.text_column, self.text_pair_column) if c]

    def check(self, where: str) -> None:
        labels = self.labels
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(label, str) for label in labels):
            raise ManifestError(f"{where}: field 'settings.labels' must be a list of at least two label names, "
                                f"not {labels!r}")
        if len(set(labels)) != len(labels):
            raise ManifestError(f"{where}: field 'settings.labels' names a label twice: {labels!r}")
        for name in ("text_column", "label_column"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ManifestError(f"{where}: field 'settings.{name}' must be a column name")
        if self.truncation not in TRUNCATIONS:
            raise ManifestError(f"{where}: field 'settings.truncation' must be one of {', '.join(TRUNCATIONS)}")
        if self.positive_label is not None and self.positive_label not in labels:
            raise ManifestError(f"{where}: field 'settings.positive_label' {self.positive_label!r} is not a label")


class Predictor:
    """Classify texts (or pairs) with a bundle's ONNX models, on onnxruntime or OpenVINO as its plan says.

    Example:
        >>> from tuneship.serving import Predictor
        >>> predictor = Predictor.from_bundle("runs/relevance-onnx")  # doctest: +SKIP
        >>> predictor.predict(["Article text"], ["A comment"])[0]["label"]  # doctest: +SKIP
        'relevant'
    """

    task = CLASSIFICATION
    plan: Plan | None = None  # set by `from_bundle`: which runtime and model serve which lengths, and why

    def __init__(self, session, encoder: TextEncoder, manifest: BundleManifest, precision: str):
        self.session = session
        self.encoder = encoder
        self.manifest = manifest
        self.settings = manifest.task_settings(Settings)
        self.precision = precision
        self.label_names = list(self.settings.labels)
        self.input_names = [i.name for i in session.get_inputs()]
        width = session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != len(self.label_names):
            raise ManifestError(f"{manifest.location}: field 'settings.labels' names {len(self.label_names)} labels, but the "
                                f"model has {width} outputs")

    @classmethod
    def from_bundle(
        cls, path: str | Path, precision: str | None = "auto", threads: int | None = None, spinning: bool | str = True,
        runtime: str | None = "auto", batch_size: int = 32, plan_cache: bool = True,
        manifest: BundleManifest | None = None,
    ) -> "Predictor":
        """Load `path` (a folder written by `tuneship export`) served by its plan on this CPU (see `serving.plan`):
        per input length, the fastest of onnxruntime fp32/int8 and OpenVINO int8/bf16/fp32 that passes its check.
        `precision` (fp32, int8, bf16) and `runtime` (onnxruntime, openvino) narrow the choice; both force one.
        `batch_size` is the batch the caller forms (the plan times a full batch too).

        `threads` defaults to the cores available to the process; see `create_session` for `spinning`. `manifest`:
        the bundle's, where the caller has read it already.
        """
        path = Path(path)
        manifest = BundleManifest.load(path, CLASSIFICATION, loaded=manifest)
        settings = manifest.task_settings(Settings)
        encoder = TextEncoder.from_file(path, manifest.max_length, settings.truncation)
        return make_plan(path, manifest, precision, runtime, threads, spinning,
                         lambda session, name: cls(session, encoder, manifest, name), golden_outputs, golden_agreement,
                         batch_sizes=[batch_size], cache=plan_cache)

    @property
    def columns(self) -> ColumnMapping:
        return self.settings.columns

    @property
    def positive_label_id(self) -> int | None:
        name = self.settings.positive_label
        return self.label_names.index(name) if name in self.label_names else None

    def logits(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32
    ) -> tuple[np.ndarray, list[bool]]:
        """Raw logits (inputs x labels) in input order, and which inputs were truncated."""
        self.columns.check_inputs(texts, text_pairs)
        encodings, truncated = self.encoder.encode_inputs(texts, text_pairs)
        return self.run(encodings, batch_size), truncated

    def run(self, encodings: Sequence, batch_size: int = 32, max_tokens: int | None = None) -> np.ndarray:
        """Logits for already tokenized inputs, batched by length (the HTTP server's batcher calls this)."""
        logits = np.zeros((len(encodings), len(self.label_names)), dtype=np.float32)
        buckets = getattr(self.session, "buckets", None)  # a plan's: no batch spans two of them
        for batch in self.encoder.batches(encodings, self.input_names, batch_size, max_tokens, buckets):
            logits[batch.indices] = self.session.run(None, batch.arrays)[0]
        return logits

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32) -> list[dict]:
        """Label, score, all class probabilities and whether the input was truncated, per input."""
        logits, truncated = self.logits(texts, text_pairs, batch_size)
        return to_predictions(softmax(logits), self.label_names, truncated)


from_bundle = Predictor.from_bundle


def golden_outputs(classifier, rows: list[list[str]]) -> np.ndarray:
    """Class probabilities for golden rows (each `[text]` or `[text, text_pair]`), one row of output per input."""
    texts = [row[0] for row in rows]
    pairs = [row[1] for row in rows] if classifier.columns.is_pair else None
    logits, _ = classifier.logits(texts, pairs, batch_size=len(rows))
    return softmax(logits)


def golden_agreement(expected: np.ndarray, found: np.ndarray) -> tuple[float, float]:
    """The share of golden inputs with the same label, and the largest probability difference."""
    return float(np.mean(expected.argmax(-1) == found.argmax(-1))), float(np.abs(expected - found).max())


def prediction_columns(prediction: dict) -> dict:
    """A prediction as flat output columns (the same in CSV and JSON Lines)."""
    columns = {"predicted_label": prediction["label"], "score": prediction["score"], "truncated": prediction["truncated"]}
    columns.update({f"probability_{name}": p for name, p in prediction["probabilities"].items()})
    return columns


def inputs_of(classifier, records: list[Record], source: Path, allow_empty: bool) -> tuple[list[str], list[str] | None]:
    """The texts (and second texts) of `records` in the classifier's columns; errors name file, row and column."""
    columns = classifier.columns
    texts = [str(field_value(r, columns.text, source, allow_empty)) for r in records]
    pairs = [str(field_value(r, columns.text_pair, source, allow_empty)) for r in records] if columns.is_pair else None
    return texts, pairs


def input_columns(classifier) -> list[str]:
    """The columns a file to predict must have: the text (and the pair's second text)."""
    return [c for c in (classifier.columns.text, classifier.columns.text_pair) if c]


def predict_rows(classifier, records: list[Record], source: Path, batch_size: int = 32) -> list[dict]:
    """The output columns of each record: `predicted_label`, `score`, `truncated`, one `probability_<label>` each."""
    texts, pairs = inputs_of(classifier, records, source, allow_empty=False)  # an empty text has nothing to classify
    return [prediction_columns(p) for p in classifier.predict(texts, pairs, batch_size=batch_size)]


def predict_text(classifier, text: str, text_pair: str | None = None) -> dict:
    """One prediction: label, score, probabilities, truncated."""
    return classifier.predict([text], None if text_pair is None else [text_pair])[0]


def evaluate(classifier, data_file: str | Path, batch_size: int = 32) -> dict:
    """Score `classifier` on a labelled file: accuracy, macro F1, per-class figures (see `tuneship.metrics`)."""
    from ..data.records import RecordReader
    from ..metrics.classification import classification_metrics, query_ranking
    from .offline import chunks_of

    reader = RecordReader(data_file, split="validation")
    label2id = {name: i for i, name in enumerate(classifier.label_names)}
    label_column = classifier.columns.label
    labels, probabilities, first_texts = [], [], []
    for chunk in chunks_of(reader, "evaluating"):
        texts, pairs = inputs_of(classifier, chunk, reader.path, allow_empty=False)
        for record in chunk:
            value = label_text(field_value(record, label_column, reader.path, allow_empty=False))
            if value not in label2id:
                raise DataError(f"{reader.path}: row {record.row}, column {label_column!r} has label {value!r} "
                                f"never seen in training; the known labels are {', '.join(map(repr, label2id))}")
            labels.append(label2id[value])
        probabilities += [[p["probabilities"][name] for name in classifier.label_names]
                          for p in classifier.predict(texts, pairs, batch_size=batch_size)]
        first_texts += texts
    if not labels:
        raise DataError(f"{data_file}: no rows to evaluate (0 rows)")
    if len(set(labels)) < 2:
        raise DataError(f"{data_file}: every row has label {classifier.label_names[labels[0]]!r}; a file to score a "
                        "classifier on needs at least two classes")
    probabilities = np.asarray(probabilities)
    metrics = classification_metrics(labels, probabilities.argmax(axis=-1), classifier.label_names,
                                     classifier.positive_label_id)
    queries = first_texts if classifier.columns.is_pair else None
    return {**metrics, **query_ranking(queries, labels, probabilities, classifier.positive_label_id)}

