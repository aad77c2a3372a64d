"""Read classification data from files or the Hub, check it, and map it to canonical columns.

Whatever the user's column names, the datasets handed to the Trainer have `text`, an optional
`text_pair`, and `label` (an integer id). Every problem is reported before training starts, naming
the file, the row (1-based, header not counted) and the column.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..columns import ColumnMapping, label_text
from ..errors import DataError

FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
# Pairs are tried first, in this order, then single texts; names are matched case-insensitively.
PAIR_COLUMNS = (
    ("sentence1", "sentence2"),
    ("question", "sentence"),
    ("article", "comment"),
    ("premise", "hypothesis"),
    ("text", "text_pair"),
)
TEXT_COLUMNS = ("text", "sentence", "content", "review", "document")
LABEL_COLUMNS = ("label", "labels")
POSITIVE_NAMES = ("1", "true", "yes", "positive", "pos", "relevant")
_HUB_NAME = re.compile(r"^[\w.-]+(/[\w.-]+)?(:[\w.-]+)?$")
_SHOWN_ROWS = 5
CALIBRATION_ROWS = 256  # training rows saved with the checkpoint for int8 calibration


@dataclass
class ClassificationData:
    """Training and validation sets in canonical columns, with their label mapping."""

    train: "datasets.Dataset"  # noqa: F821 - imported lazily
    validation: "datasets.Dataset"  # noqa: F821
    columns: ColumnMapping
    label_names: list[str]
    positive_label_id: int | None
    train_source: str
    validation_source: str
    validation_rows: pd.DataFrame  # the validation set in the user's columns, saved with the model
    calibration_rows: pd.DataFrame  # a seeded sample of training rows, saved for export's calibration

    @property
    def majority_baseline_accuracy(self) -> float:
        counts = np.bincount(self.validation["label"], minlength=len(self.label_names))
        return float(counts.max() / counts.sum())


# --------------------------------------------------------------------------- reading


def _check_utf8(path: Path) -> None:
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(
            f"{path}: line {line}, character {column} is not valid UTF-8 (byte 0x{raw[error.start]:02x}); "
            "save the file as UTF-8 and try again"
        ) from None


def _read_json(path: Path) -> pd.DataFrame:
    text = path.read_text(encoding="utf-8-sig")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        payload = payload["data"]
    if isinstance(payload, list) and all(isinstance(row, dict) for row in payload):
        return pd.DataFrame.from_records(payload)
    if isinstance(payload, dict) and all(isinstance(v, list) for v in payload.values()):
        return pd.DataFrame(payload)
    raise DataError(f"{path}: expected a list of records or a mapping of columns to lists")


def _read_jsonl(path: Path) -> pd.DataFrame:
    from ..serving.records import RecordReader

    return pd.DataFrame.from_records([record.values for record in RecordReader(path)])


def _read_file(path: Path) -> pd.DataFrame:
    fmt = FILE_FORMATS[path.suffix.lower()]
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    if fmt != "parquet":
        _check_utf8(path)
    try:
        if fmt in ("csv", "tsv"):
            return pd.read_csv(
                path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False,
                encoding="utf-8-sig", skip_blank_lines=True,
            )
        if fmt == "json":
            return _read_json(path)
        if fmt == "jsonl":
            return _read_jsonl(path)
        return pd.read_parquet(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no header and no rows") from None
    except Exception as error:  # noqa: BLE001 - parser errors name the line; pass them on
        raise DataError(f"{path}: could not be read as {fmt.upper()}: {error}") from None


def _read_hub(name: str, split: str) -> pd.DataFrame:
    import datasets

    repo, _, subset = name.partition(":")
    try:
        dataset = datasets.load_dataset(repo, subset or None, split=split)
    except Exception as error:  # noqa: BLE001 - network, auth and naming errors all end here
        raise DataError(
            f"{name!r} is not a file here, and the Hub dataset {repo!r} (split {split!r}) could not be loaded: "
            f"{type(error).__name__}: {error}. Check the path or the dataset name and your connection; "
            "with HF_HUB_OFFLINE=1 only datasets already in the cache load."
        ) from None
    return dataset.to_pandas()


def read_table(source: str | Path, split: str = "train") -> pd.DataFrame:
    """Read a CSV, TSV, JSON, JSONL or Parquet file, or the `split` of a Hub dataset.

    A Hub dataset is named `owner/name` or `owner/name:config`.
    """
    path = Path(source)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a data file ({', '.join(FILE_FORMATS)})")
    if path.is_file():
        if path.suffix.lower() not in FILE_FORMATS:
            raise DataError(f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(FILE_FORMATS)}")
        table = _read_file(path)
    elif path.suffix.lower() in FILE_FORMATS or not _HUB_NAME.match(str(source)):
        raise DataError(f"{path}: no such file")
    else:
        table = _read_hub(str(source), split)
    if len(table) == 0:
        raise DataError(f"{source}: the file has a header but no data rows")
    table.columns = [str(column) for column in table.columns]
    return table


# --------------------------------------------------------------------------- columns


def _find(columns: Sequence[str], wanted: str) -> str | None:
    lowered = {column.lower(): column for column in columns}
    return lowered.get(wanted.lower())


def _require(columns: Sequence[str], name: str, role: str, source: str) -> str:
    found = name if name in columns else _find(columns, name)
    if found is None:
        raise DataError(f"{source}: no {role} column {name!r}; the columns are {', '.join(map(repr, columns))}")
    return found


def detect_columns(
    table: pd.DataFrame,
    source: str,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
) -> ColumnMapping:
    """Use the given column names, or find the usual ones (`sentence1`+`sentence2`, `text`, `label`...)."""
    columns = list(table.columns)
    if text is not None:
        text = _require(columns, text, "text", source)
        text_pair = _require(columns, text_pair, "text-pair", source) if text_pair else None
    elif text_pair is not None:
        raise DataError("--text-pair-column needs --text-column too")
    else:
        for first, second in PAIR_COLUMNS:
            if _find(columns, first) and _find(columns, second):
                text, text_pair = _find(columns, first), _find(columns, second)
                break
        else:
            text = next((_find(columns, c) for c in TEXT_COLUMNS if _find(columns, c)), None)
        if text is None:
            raise DataError(
                f"{source}: no text column found among {', '.join(map(repr, columns))}; "
                "name it with --text-column (and --text-pair-column for pairs)"
            )
    if label is not None:
        label = _require(columns, label, "label", source)
    else:
        label = next((_find(columns, c) for c in LABEL_COLUMNS if _find(columns, c)), None)
        if label is None:
            raise DataError(f"{source}: no label column found among {', '.join(map(repr, columns))}; name it with --label-column")
    return ColumnMapping(text=text, text_pair=text_pair, label=label)


# --------------------------------------------------------------------------- values


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _row_list(rows: Sequence[int]) -> str:
    shown = ", ".join(str(row + 1) for row in rows[:_SHOWN_ROWS])
    return shown + (", ..." if len(rows) > _SHOWN_ROWS else "")


def clean_rows(table: pd.DataFrame, columns: ColumnMapping, source: str, drop_invalid: bool) -> pd.DataFrame:
    """Reject (or, with `drop_invalid`, drop) rows whose text, pair or label is empty or missing."""
    roles = [columns.text] + ([columns.text_pair] if columns.is_pair else []) + [columns.label]
    bad = {column: [i for i, value in enumerate(table[column].tolist()) if _is_missing(value)] for column in roles}
    bad = {column: rows for column, rows in bad.items() if rows}
    if not bad:
        return table
    invalid = sorted(set().union(*bad.values()))
    details = "; ".join(f"column {column!r}: {len(rows)} empty or missing (rows {_row_list(rows)})" for column, rows in bad.items())
    if not drop_invalid:
        raise DataError(
            f"{source}: {len(invalid)} row(s) with empty or missing values ({details}). "
            "Fix them, or pass --drop-invalid to skip them."
        )
    print(f"{source}: dropped {len(invalid)} invalid row(s) of {len(table)} ({details})")
    return table.drop(index=table.index[invalid]).reset_index(drop=True)


def label_names_from(values: Sequence[str]) -> list[str]:
    """Deterministic label order: integers numerically, anything else alphabetically."""
    unique = set(values)
    if all(re.fullmatch(r"-?\d+", value) for value in unique):
        return [str(v) for v in sorted(int(value) for value in unique)]
    return sorted(unique)


def label_ids(table: pd.DataFrame, column: str, label2id: dict[str, int], source: str) -> list[int]:
    """Map label values to ids, naming the first rows whose label the model does not know."""
    texts = [label_text(value) for value in table[column].tolist()]
    unknown = [i for i, value in enumerate(texts) if value not in label2id]
    if unknown:
        values = sorted({texts[i] for i in unknown})
        raise DataError(
            f"{source}: column {column!r} has label(s) {', '.join(map(repr, values))} never seen in training "
            f"(rows {_row_list(unknown)}); the known labels are {', '.join(map(repr, label2id))}"
        )
    return [label2id[value] for value in texts]


def positive_label_id(label_names: Sequence[str], requested: str | None) -> int | None:
    """Pick the positive class of a binary task (None for more classes)."""
    if len(label_names) != 2:
        return None
    if requested is not None:
        if requested not in label_names:
            raise DataError(f"--positive-label {requested!r} is not one of the labels {', '.join(map(repr, label_names))}")
        return label_names.index(requested)
    for i, name in enumerate(label_names):
        if name.lower() in POSITIVE_NAMES:
            return i
    return 1


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split holding out `fraction` of each class (at least one row of classes with 2+ rows)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    train, held_out = [], []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        rng.shuffle(rows)
        take = int(round(fraction * len(rows))) if len(rows) > 1 else 0
        take = max(take, 1) if len(rows) > 1 else 0
        held_out.extend(rows[:take])
        train.extend(rows[take:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(held_out, dtype=np.int64))


def to_dataset(table: pd.DataFrame, columns: ColumnMapping, labels: Sequence[int]):
    """A `datasets.Dataset` in canonical columns: text, optional text_pair, label."""
    import datasets

    data = {"text": [str(v) for v in table[columns.text].tolist()]}
    if columns.is_pair:
        data["text_pair"] = [str(v) for v in table[columns.text_pair].tolist()]
    data["label"] = list(labels)
    return datasets.Dataset.from_dict(data)


def load_classification_data(
    train_source: str,
    validation_source: str | None = None,
    *,
    validation_split: float = 0.2,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    drop_invalid: bool = False,
    positive_label: str | None = None,
    seed: int = 42,
) -> ClassificationData:
    """Read, check and split the data of a classification run. Raises `DataError` on bad input."""
    train_table = read_table(train_source, split="train")
    columns = detect_columns(train_table, str(train_source), text_column, text_pair_column, label_column)
    train_table = clean_rows(train_table, columns, str(train_source), drop_invalid)
    names = label_names_from([label_text(v) for v in train_table[columns.label].tolist()])
    if len(names) < 2:
        raise DataError(
            f"{train_source}: column {columns.label!r} has a single class ({names[0]!r}); a classifier needs at least two"
        )
    label2id = {name: i for i, name in enumerate(names)}
    train_labels = label_ids(train_table, columns.label, label2id, str(train_source))

    if validation_source is not None:
        validation_table = read_table(validation_source, split="validation")
        detect_columns(validation_table, str(validation_source), columns.text, columns.text_pair, columns.label)
        validation_table = clean_rows(validation_table, columns, str(validation_source), drop_invalid)
        validation_labels = label_ids(validation_table, columns.label, label2id, str(validation_source))
        validation_name = str(validation_source)
    else:
        train_rows, held_out = stratified_split(train_labels, validation_split, seed)
        validation_table = train_table.iloc[held_out].reset_index(drop=True)
        validation_labels = [train_labels[i] for i in held_out]
        train_table = train_table.iloc[train_rows].reset_index(drop=True)
        train_labels = [train_labels[i] for i in train_rows]
        validation_name = f"{validation_split:.0%} stratified split of {train_source} (seed {seed})"

    keep = [columns.text] + ([columns.text_pair] if columns.is_pair else []) + [columns.label]
    return ClassificationData(
        train=to_dataset(train_table, columns, train_labels),
        validation=to_dataset(validation_table, columns, validation_labels),
        columns=columns,
        label_names=names,
        positive_label_id=positive_label_id(names, positive_label),
        train_source=str(train_source),
        validation_source=validation_name,
        validation_rows=validation_table[keep].copy(),
        calibration_rows=train_table[keep].sample(n=min(CALIBRATION_ROWS, len(train_table)), random_state=seed),
    )


def load_labelled_texts(source: str, columns: ColumnMapping, label2id: dict[str, int]):
    """Read an evaluation file with a model's columns: (texts, text_pairs or None, label ids)."""
    table = read_table(source, split="validation")
    detect_columns(table, str(source), columns.text, columns.text_pair, columns.label)
    table = clean_rows(table, columns, str(source), drop_invalid=False)
    labels = label_ids(table, columns.label, label2id, str(source))
    texts = [str(v) for v in table[columns.text].tolist()]
    pairs = [str(v) for v in table[columns.text_pair].tolist()] if columns.is_pair else None
    return texts, pairs, labels


def load_texts(source: str, columns: ColumnMapping) -> tuple[list[str], list[str] | None]:
    """Read unlabelled inputs in a model's columns (e.g. calibration rows): (texts, text_pairs or None).

    Rows with an empty or missing text are skipped; a missing column is an error naming the file.
    """
    table = read_table(source, split="train")
    names = list(table.columns)
    text = _require(names, columns.text, "text", str(source))
    pair = _require(names, columns.text_pair, "text-pair", str(source)) if columns.is_pair else None
    keep = [i for i, row in enumerate(zip(table[text].tolist(), table[pair].tolist() if pair else table[text].tolist()))
            if not any(_is_missing(v) for v in row)]
    texts = [str(table[text].iloc[i]) for i in keep]
    pairs = [str(table[pair].iloc[i]) for i in keep] if pair else None
    return texts, pairs
