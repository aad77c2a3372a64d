"""Which of the user's columns hold the text, the optional second text and the label.

Shared by training (which detects them) and serving (which reads them from the bundle), so it
lives in the light root package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import TuneshipError


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
