"""Predict with and evaluate a fine-tuned PyTorch checkpoint (the ONNX path lives in `serving`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..columns import ColumnMapping
from ..serving.manifest import CLASSIFICATION
from ..serving.predictor import softmax, to_predictions
from .config import load_checkpoint

DEFAULT_SETTINGS = {
    "task": CLASSIFICATION, "text_column": "text", "text_pair_column": None, "label_column": "label",
    "truncation": "longest_first", "positive_label": None,
}


class TorchClassifier:
    """A checkpoint folder loaded with transformers, predicting with the settings it was trained with.

    Example:
        >>> classifier = TorchClassifier.from_checkpoint("runs/relevance-minilm")  # doctest: +SKIP
        >>> classifier.predict(["Article text"], ["A comment"])[0]["label"]  # doctest: +SKIP
        'relevant'
    """

    def __init__(self, model, tokenizer, settings: dict):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "TorchClassifier":
        model, tokenizer = load_checkpoint(path, "AutoModelForSequenceClassification")
        settings = {**DEFAULT_SETTINGS, "max_length": min(tokenizer.model_max_length, 512)}
        settings.update(getattr(model.config, "tuneship", None) or {})
        return cls(model, tokenizer, settings)

    @property
    def columns(self) -> ColumnMapping:
        s = self.settings
        return ColumnMapping(text=s["text_column"], text_pair=s["text_pair_column"], label=s["label_column"])

    @property
    def positive_label_id(self) -> int | None:
        name = self.settings.get("positive_label")
        return self.label_names.index(name) if name in self.label_names else None

    def encode(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, return_tensors: str = "pt"):
        """Training's tokenization: truncated to the checkpoint's max length, padded to the longest input."""
        return self.tokenizer(list(texts), None if text_pairs is None else list(text_pairs),
                              truncation=self.settings["truncation"], max_length=self.settings["max_length"],
                              padding=True, return_tensors=return_tensors)

    def logits(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32
    ) -> tuple[np.ndarray, list[bool]]:
        """Raw logits (inputs x labels) in input order, and which inputs were truncated."""
        import torch

        self.columns.check_inputs(texts, text_pairs)
        logits, truncated = [], []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            pairs = list(text_pairs[start : start + batch_size]) if text_pairs is not None else None
            encoded = self.encode(batch, pairs)
            with torch.inference_mode():
                logits.append(self.model(**encoded).logits.float().numpy())
            truncated += [bool(encoding.overflowing) for encoding in encoded.encodings]
        width = len(self.label_names)
        return (np.concatenate(logits) if logits else np.zeros((0, width), dtype=np.float32)), truncated

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32) -> list[dict]:
        """Label, score, all class probabilities and whether the input was truncated, per input."""
        logits, truncated = self.logits(texts, text_pairs, batch_size)
        return to_predictions(softmax(logits), self.label_names, truncated)
