"""Which of the user's columns hold the text, the optional second text and the label, found by name or given.

Shared by training (which detects them) and serving (which reads them from the bundle), so it
lives in the light root package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import DataError, TuneshipError


def label_text(value) -> str:
    """A label value as training saw it: `True`->"true", 1.0->"1", " pos "->"pos"."""
    if isinstance(value, (bool, np.bool_)):
        return str(value).lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True)
class ColumnMapping:
    """Which user columns hold the text, the optional second text, and the label."""

    text: str
    text_pair: str | None
    label: str

    @property
    def is_pair(self) -> bool:
        return self.text_pair is not None

    def describe(self) -> str:
        texts = f"text={self.text!r}" + (f", text_pair={self.text_pair!r}" if self.is_pair else "")
        return f"{texts}, label={self.label!r}"

    def check_inputs(self, texts: Sequence[str], text_pairs: Sequence[str] | None) -> None:
        """Raise `TuneshipError` unless the inputs fit this model: second texts for pairs only, one per text."""
        if self.is_pair and text_pairs is None:
            raise TuneshipError(f"this model classifies pairs ({self.text}, {self.text_pair}): give the second text too")
        if not self.is_pair and text_pairs is not None:
            raise TuneshipError(f"this model classifies single texts ({self.text}): give no second text")
        if text_pairs is not None and len(text_pairs) != len(texts):
            raise TuneshipError(f"{len(texts)} texts but {len(text_pairs)} second texts")


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


def find_column(columns: Sequence[str], wanted: str) -> str | None:
    """The column named `wanted`, matched case-insensitively, or None."""
    lowered = {column.lower(): column for column in columns}
    return lowered.get(wanted.lower())


def require_column(columns: Sequence[str], name: str, role: str, source: str) -> str:
    """The column `name` (exact, else case-insensitive), or an error naming the file and the columns it has."""
    found = name if name in columns else find_column(columns, name)
    if found is None:
        raise DataError(f"{source}: no {role} column {name!r}; the columns are {', '.join(map(repr, columns))}")
    return found


def detect_columns(
    columns: Sequence[str],
    source: str,
    text: str | None = None,
    text_pair: str | None = None,
    label: str | None = None,
) -> ColumnMapping:
    """Use the given column names, or find the usual ones (`sentence1`+`sentence2`, `text`, `label`...) among
    `columns` (any iterable of names, such as a table's header)."""
    columns = [str(column) for column in columns]
    if text is not None:
        text = require_column(columns, text, "text", source)
        text_pair = require_column(columns, text_pair, "text-pair", source) if text_pair else None
    elif text_pair is not None:
        raise DataError("--text-pair-column needs --text-column too")
    else:
        for first, second in PAIR_COLUMNS:
            if find_column(columns, first) and find_column(columns, second):
                text, text_pair = find_column(columns, first), find_column(columns, second)
                break
        else:
            text = next((find_column(columns, c) for c in TEXT_COLUMNS if find_column(columns, c)), None)
        if text is None:
            raise DataError(
                f"{source}: no text column found among {', '.join(map(repr, columns))}; "
                "name it with --text-column (and --text-pair-column for pairs)"
            )
    if label is not None:
        label = require_column(columns, label, "label", source)
    else:
        label = next((find_column(columns, c) for c in LABEL_COLUMNS if find_column(columns, c)), None)
        if label is None:
            raise DataError(f"{source}: no label column found among {', '.join(map(repr, columns))}; "
                            "name it with --label-column")
    return ColumnMapping(text=text, text_pair=text_pair, label=label)
