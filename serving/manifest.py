"""The bundle manifest `tuneship.json`: what serving needs to reproduce training's inputs exactly."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..columns import ColumnMapping
from ..errors import TuneshipError

MANIFEST_FILE = "tuneship.json"
EXAMPLES_FILE = "examples.jsonl"  # a few validation inputs saved by `tuneship export`, for demos
FORMAT_VERSION = 1
PRECISIONS = ("int8", "fp32")
CLASSIFICATION = "text-classification"
QUESTION_ANSWERING = "question-answering"
SUMMARIZATION = "summarization"
TASKS = (CLASSIFICATION, QUESTION_ANSWERING, SUMMARIZATION)


@dataclass
class BundleManifest:
    """Task, columns, tokenization settings, model files, and the export's gate results.

    `models` maps a precision (`fp32`, `int8`) to `{"file": ..., "size_bytes": ...}` plus how it was
    made; `default_precision` names the one serving loads unless told otherwise.
    """

    task: str
    text_column: str
    text_pair_column: str | None
    label_column: str
    labels: list[str]
    max_length: int
    truncation: str
    input_names: list[str]
    models: dict[str, dict]
    default_precision: str
    positive_label: str | None = None
    opset: int | None = None
    gates: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    task_settings: dict = field(default_factory=dict)  # e.g. question answering: doc_stride, n_best, max_answer_length
    format_version: int = FORMAT_VERSION

    @property
    def columns(self) -> ColumnMapping:
        return ColumnMapping(text=self.text_column, text_pair=self.text_pair_column, label=self.label_column)

    def model_file(self, precision: str | None = None) -> str:
        precision = precision or self.default_precision
        if precision not in self.models:
            raise TuneshipError(
                f"this bundle has no {precision} model; it has {', '.join(sorted(self.models))}"
            )
        return self.models[precision]["file"]

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, folder: str | Path) -> Path:
        from ..files import write_json

        return write_json(Path(folder) / MANIFEST_FILE, self.to_dict())

    def examples(self, folder: str | Path) -> list[list[str]]:
        """The example inputs saved in the bundle `folder`: per row, its texts in column order (text, then pair)."""
        path = Path(folder) / EXAMPLES_FILE
        if not path.is_file():
            return []
        columns = [c for c in (self.text_column, self.text_pair_column) if c]
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [[str(row.get(c, "")) for c in columns] for row in rows]

    @classmethod
    def load(cls, folder: str | Path) -> "BundleManifest":
        path = Path(folder) / MANIFEST_FILE
        if not path.is_file():
            raise TuneshipError(f"{folder}: not a tuneship bundle (no {MANIFEST_FILE}); make one with `tuneship export`")
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise TuneshipError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise TuneshipError(f"{path}: expected a JSON object")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in values.items() if k in known})
        except TypeError as error:
            raise TuneshipError(f"{path}: incomplete manifest ({error})") from None
