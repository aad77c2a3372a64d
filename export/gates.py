"""The export's gates: fp32 ONNX against PyTorch, and int8 against fp32 on labelled data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..metrics import classification_metrics
from ..serving.predictor import Predictor


@dataclass
class LabelledRows:
    """Labelled inputs in a model's columns, with where they came from."""

    texts: list[str]
    text_pairs: list[str] | None
    labels: list[int]
    source: str


def parity_samples(texts: Sequence[str], pairs: Sequence[str] | None, max_length: int) -> list[tuple[list[str], list[str] | None]]:
    """Input groups for the fp32 parity check: short and at max length, batched and one at a time."""
    count = min(4, len(texts))
    short = (list(texts[:count]), None if pairs is None else list(pairs[:count]))
    # Repeated until they overflow max_length, so that truncation (longer text first) is exercised.
    long = (
        [" ".join([t] * (max_length // max(len(t.split()), 1) + 2)) for t in short[0]],
        None if pairs is None else [" ".join([p] * 3) for p in short[1]],
    )
    singles = [([g[0][i]], None if g[1] is None else [g[1][i]]) for g in (short, long) for i in range(min(2, count))]
    return [short, long, *singles]


def fp32_parity(predictor: Predictor, torch_model, tokenizer, samples) -> dict:
    """Max |logit difference| between the ONNX model and PyTorch on the same token ids, and whether
    `tokenizers` (serving) produces the same ids as transformers' tokenizer (training)."""
    import torch

    manifest = predictor.manifest
    worst, tokens_match, inputs = 0.0, True, 0
    for texts, pairs in samples:
        encodings = predictor.encoder.encode(texts, pairs)
        reference = tokenizer(texts, pairs, truncation=manifest.truncation, max_length=manifest.max_length)["input_ids"]
        tokens_match &= all(list(e.ids) == list(r) for e, r in zip(encodings, reference))
        for batch in predictor.encoder.batches(encodings, predictor.input_names, batch_size=len(texts)):
            onnx_logits = predictor.session.run(None, batch.arrays)[0]
            with torch.inference_mode():
                torch_logits = torch_model(**{k: torch.from_numpy(v) for k, v in batch.arrays.items()}).logits.numpy()
            worst = max(worst, float(np.abs(onnx_logits - torch_logits).max()))
        inputs += len(texts)
    return {"max_abs_logit_difference": worst, "inputs": inputs, "tokenization_identical": tokens_match}


def headline_metrics(labels: Sequence[int], predicted: Sequence[int], label_names: Sequence[str], positive_id: int | None) -> dict:
    metrics = classification_metrics(labels, predicted, label_names, positive_id)
    return {"accuracy": metrics["accuracy"], "f1": metrics["f1"]}


def int8_gate(
    fp32_logits: np.ndarray, int8_logits: np.ndarray, rows: LabelledRows, label_names: Sequence[str],
    positive_id: int | None, min_agreement: float, max_drop: float,
) -> dict:
    """Label agreement of int8 with fp32, and the drop in accuracy and F1; `passed` when both hold."""
    fp32_labels, int8_labels = fp32_logits.argmax(-1), int8_logits.argmax(-1)
    fp32 = headline_metrics(rows.labels, fp32_labels, label_names, positive_id)
    int8 = headline_metrics(rows.labels, int8_labels, label_names, positive_id)
    agreement = float(np.mean(fp32_labels == int8_labels))
    drop = max(fp32[k] - int8[k] for k in fp32)
    return {
        "agreement": agreement,
        "metric_drop": drop,
        "fp32": fp32,
        "int8": int8,
        "max_abs_logit_difference": float(np.abs(fp32_logits - int8_logits).max()),
        "passed": agreement >= min_agreement and drop <= max_drop,
    }
