"""Classification rows and predictions: texts (and second texts) with labels, checked and mapped, and the
prediction records every classifier returns; no torch, no pandas.

Training builds its datasets on these functions, and evaluation, the export's gates and calibration
read labelled or unlabelled rows with them, so every stage reports a bad row the same way: the file,
the row (1-based, header not counted) and the column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..log import get_logger
from .columns import ColumnMapping, label_text, require_column
from .records import Record, check_text, column_names, is_missing, read_records

logger = get_logger(__name__)

POSITIVE_NAMES = ("1", "true", "yes", "positive", "pos", "relevant")
# Label values that mean "no label" (spreadsheet and pandas spellings): treated as missing, never as a class.
MISSING_LABELS = ("nan", "na", "n/a", "null", "none")
_SHOWN_ROWS = 5


@dataclass
class LabelledRows:
    """Labelled inputs in a model's columns, with where they came from."""

    texts: list[str]
    text_pairs: list[str] | None
    labels: list[int]
    source: str


def row_list(rows: Sequence[int]) -> str:
    """0-based row indices as the 1-based row numbers errors show, the first few only."""
    shown = ", ".join(str(row + 1) for row in rows[:_SHOWN_ROWS])
    return shown + (", ..." if len(rows) > _SHOWN_ROWS else "")


def roles(columns: ColumnMapping, with_label: bool = True) -> list[str]:
    """The columns a row needs: text, the pair's second text, and the label."""
    return [columns.text] + ([columns.text_pair] if columns.is_pair else []) + ([columns.label] if with_label else [])


def clean_rows(records: list[Record], columns: ColumnMapping, source: str, drop_invalid: bool,
               with_label: bool = True) -> list[Record]:
    """Reject (or, with `drop_invalid`, drop) rows whose text, pair or label is empty, missing or not valid text."""
    bad: dict[str, list[int]] = {}
    for column in roles(columns, with_label):
        rows = []
        for i, record in enumerate(records):
            value = record.values.get(column)
            no_label = column == columns.label and isinstance(value, str) and value.strip().lower() in MISSING_LABELS
            if is_missing(value) or isinstance(value, (dict, list)) or no_label:
                rows.append(i)
            elif isinstance(value, str):
                check_text(value, f"{source}: row {record.row}, column {column!r}")
        if rows:
            bad[column] = rows
    if not bad:
        return records
    invalid = sorted(set().union(*bad.values()))
    details = "; ".join(f"column {column!r}: {len(rows)} empty or missing (rows {row_list(rows)})" for column, rows in bad.items())
    note = f"Labels {', '.join(MISSING_LABELS)} count as missing. " if columns.label in bad else ""
    if not drop_invalid:
        raise DataError(
            f"{source}: {len(invalid)} row(s) with empty or missing values ({details}). {note}"
            "Fix them, or pass --drop-invalid to skip them."
        )
    logger.info(f"{source}: dropped {len(invalid)} invalid row(s) of {len(records)} ({details})")
    drop = set(invalid)
    return [record for i, record in enumerate(records) if i not in drop]


def warn_numeric_texts(records: list[Record], columns: ColumnMapping, source: str) -> None:
    """A text column that holds only numbers is most likely the wrong column: say so (training goes on)."""
    for column in roles(columns, with_label=False):
        values = [str(r.values[column]).strip() for r in records]
        if values and all(re.fullmatch(r"[-+]?\d+([.,]\d+)?", v) for v in values):
            logger.warning(f"{source}: column {column!r} holds only numbers; if it is not the text, name the text "
                           "column with --text-column")


def label_names_from(values: Sequence[str]) -> list[str]:
    """Deterministic label order: integers numerically, anything else alphabetically."""
    unique = set(values)
    if all(re.fullmatch(r"-?\d+", value) for value in unique):
        return [str(v) for v in sorted(int(value) for value in unique)]
    return sorted(unique)


def label_ids(records: list[Record], column: str, label2id: dict[str, int], source: str) -> list[int]:
    """Map label values to ids, naming the first rows whose label the model does not know."""
    texts = [label_text(record.values[column]) for record in records]
    unknown = [i for i, value in enumerate(texts) if value not in label2id]
    if unknown:
        values = sorted({texts[i] for i in unknown})
        raise DataError(
            f"{source}: column {column!r} has label(s) {', '.join(map(repr, values))} never seen in training "
            f"(rows {row_list(unknown)}); the known labels are {', '.join(map(repr, label2id))}"
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


def texts_of(records: list[Record], columns: ColumnMapping) -> tuple[list[str], list[str] | None]:
    """The texts (and second texts) of checked records, as strings."""
    texts = [str(record.values[columns.text]) for record in records]
    pairs = [str(record.values[columns.text_pair]) for record in records] if columns.is_pair else None
    return texts, pairs


def read_labelled(source: str, columns: ColumnMapping, label2id: dict[str, int], split: str = "validation") -> LabelledRows:
    """An evaluation file read with a model's columns and labels; every row must have all of them."""
    records = read_records(source, split)
    if not records:
        raise DataError(f"{source}: the file has a header but no data rows")
    names = column_names(records)
    for column, role in zip(roles(columns), ("text", "text-pair", "label") if columns.is_pair else ("text", "label")):
        require_column(names, column, role, str(source))
    records = clean_rows(records, columns, str(source), drop_invalid=False)
    texts, pairs = texts_of(records, columns)
    return LabelledRows(texts, pairs, label_ids(records, columns.label, label2id, str(source)), str(source))


def load_labelled_texts(source: str, columns: ColumnMapping, label2id: dict[str, int]):
    """Read an evaluation file with a model's columns: (texts, text_pairs or None, label ids)."""
    rows = read_labelled(source, columns, label2id)
    return rows.texts, rows.text_pairs, rows.labels


def load_texts(source: str, columns: ColumnMapping) -> tuple[list[str], list[str] | None]:
    """Read unlabelled inputs in a model's columns (e.g. calibration rows): (texts, text_pairs or None).

    Rows with an empty or missing text are skipped; a missing column is an error naming the file.
    """
    records = read_records(source, "train")
    names = column_names(records)
    text = require_column(names, columns.text, "text", str(source))
    pair = require_column(names, columns.text_pair, "text-pair", str(source)) if columns.is_pair else None
    records = [r for r in records if not any(is_missing(r.values.get(c)) for c in (text, pair) if c)]
    return texts_of(records, ColumnMapping(text=text, text_pair=pair, label=columns.label))


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
