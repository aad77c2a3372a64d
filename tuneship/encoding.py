"""Tokenization exactly as in training, with the `tokenizers` library alone (no transformers): serving, the export's
checks, the benchmark and QA windows all encode with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .errors import TuneshipError

TOKENIZER_FILE = "tokenizer.json"
# Texts are cut to `CHARS_PER_TOKEN * max_length` characters before tokenizing, so a megabyte of text costs what a
# page costs: far more characters than `max_length` tokens ever span in ordinary text (cut texts are flagged).
CHARS_PER_TOKEN = 64


@dataclass
class EncodedBatch:
    """Padded model inputs for some of the inputs (`indices` into the caller's list)."""

    indices: np.ndarray
    arrays: dict[str, np.ndarray]


class TextEncoder:
    """`tokenizer.json` with the training's max length and pair truncation (longest text cut first).

    Lower-casing and accent stripping come from the tokenizer's own normalizer, as in training.
    """

    def __init__(self, tokenizer, max_length: int, truncation: str = "longest_first", pad_id: int = 0):
        if truncation not in ("longest_first", "only_first", "only_second"):
            raise TuneshipError(f"unknown truncation strategy {truncation!r}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_id = pad_id
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length, strategy=truncation)

    @classmethod
    def from_file(cls, path: str | Path, max_length: int, truncation: str = "longest_first") -> "TextEncoder":
        from tokenizers import Tokenizer

        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        if not path.is_file():
            raise TuneshipError(f"{path} is missing: the bundle needs the fast tokenizer file")
        tokenizer = Tokenizer.from_file(str(path))
        pad_id = tokenizer.token_to_id("[PAD]")
        return cls(tokenizer, max_length, truncation, 0 if pad_id is None else pad_id)

    @property
    def max_chars(self) -> int:
        return CHARS_PER_TOKEN * self.max_length

    def encode_inputs(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> tuple[list, list[bool]]:
        """One `tokenizers.Encoding` per input, truncated to `max_length`, and whether each input was cut (to
        `max_length` tokens, or first to `max_chars` characters)."""
        limit = self.max_chars
        cut = [len(t) > limit or (text_pairs is not None and len(text_pairs[i]) > limit) for i, t in enumerate(texts)]
        if any(cut):
            texts = [t[:limit] for t in texts]
            text_pairs = None if text_pairs is None else [t[:limit] for t in text_pairs]
        if len(texts) == 1:  # encode_batch's thread-pool hand-off costs more than encoding one input
            encodings = [self.tokenizer.encode(texts[0], None if text_pairs is None else text_pairs[0])]
        else:
            encodings = self.tokenizer.encode_batch(list(texts) if text_pairs is None else list(zip(texts, text_pairs)))
        return encodings, [c or self.is_truncated(e) for c, e in zip(cut, encodings)]

    def encode(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None) -> list:
        """One `tokenizers.Encoding` per input, truncated to `max_length` (see `encode_inputs`)."""
        return self.encode_inputs(texts, text_pairs)[0]

    def is_truncated(self, encoding) -> bool:
        return len(encoding.ids) >= self.max_length and bool(encoding.overflowing)

    def batches(
        self, encodings: Sequence, input_names: Sequence[str], batch_size: int = 32, max_tokens: int | None = None,
        buckets: Sequence[int] | None = None,
    ) -> Iterator[EncodedBatch]:
        """Group inputs of similar length (longest first) into padded batches.

        A batch holds at most `batch_size` inputs and, when given, at most `max_tokens` padded tokens; with
        `buckets` (ascending length bounds), never inputs of two buckets.
        """
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        bucket = np.searchsorted(np.asarray(buckets), lengths) if buckets else np.zeros(len(lengths), dtype=int)
        start = 0
        while start < len(order):
            longest = max(int(lengths[order[start]]), 1)
            size = batch_size if max_tokens is None else max(1, min(batch_size, max_tokens // longest))
            indices = order[start : start + size]
            indices = indices[bucket[indices] == bucket[indices[0]]]
            yield EncodedBatch(indices, self.pad([encodings[i] for i in indices], input_names, longest))
            start += len(indices)

    def pad(self, encodings: Sequence, input_names: Sequence[str], width: int | None = None) -> dict[str, np.ndarray]:
        """The model's input arrays for `encodings`, padded to `width` (default: the longest)."""
        return pad_encodings(encodings, input_names, self.pad_id, width)


def pad_encodings(encodings: Sequence, input_names: Sequence[str], pad_id: int = 0,
                  width: int | None = None) -> dict[str, np.ndarray]:
    """int64 input arrays (`input_ids`, `attention_mask`, `token_type_ids`, as named) for `tokenizers` encodings,
    padded with `pad_id` to `width` (default: the longest encoding)."""
    width = max((len(e.ids) for e in encodings), default=1) if width is None else width
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros((len(encodings), width), dtype=np.int64)
    for row, encoding in enumerate(encodings):
        n = len(encoding.ids)
        ids[row, :n] = encoding.ids
        mask[row, :n] = 1
        types[row, :n] = encoding.type_ids
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {name: arrays[name] for name in input_names}
