"""Benchmark inputs: raw strings that tokenize to at least a given length, made from real text."""

from __future__ import annotations

import re
from typing import Sequence


# Used only when neither --data nor the bundle's examples give any words.
FALLBACK_TEXT = (
    "The committee met on Tuesday to review the budget for the coming year and agreed to fund the new library "
    "while delaying repairs to the old bridge until engineers finish their survey of the river banks"
)


def words_of(texts: Sequence[str]) -> list[str]:
    return [word for text in texts for word in re.findall(r"[^\W\d_]+", text)]


def make_inputs(words: Sequence[str], seq_len: int, batch_size: int, is_pair: bool) -> tuple[list[str], list[str] | None]:
    """`batch_size` different inputs (texts, and text pairs when `is_pair`) that each tokenize to more than
    `seq_len` tokens, so that truncation makes every input exactly `seq_len` tokens long.

    Every word is at least one token, so `seq_len` words are always enough for each text.
    """
    words = list(words) or FALLBACK_TEXT.split()
    step = max(1, len(words) // max(batch_size, 1))

    def text(offset: int) -> str:
        return " ".join(words[(offset + i) % len(words)] for i in range(seq_len))

    texts = [text(row * step) for row in range(batch_size)]
    pairs = [text(row * step + len(words) // 2) for row in range(batch_size)] if is_pair else None
    return texts, pairs
