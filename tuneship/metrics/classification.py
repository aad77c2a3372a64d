"""Classification metrics in plain numpy, shared by training, evaluation and serving."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    # Zero where the denominator is zero, as scikit-learn's zero_division=0 does.
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=float), where=denominator > 0)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_labels: int) -> np.ndarray:
    """Counts with true labels on rows and predicted labels on columns."""
    matrix = np.zeros((num_labels, num_labels), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return matrix


def classification_metrics(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    label_names: Sequence[str],
    positive_label_id: int | None = None,
) -> dict:
    """Accuracy, precision, recall, F1, per-class scores and the confusion matrix.

    For two classes the headline `precision`, `recall` and `f1` are those of the positive class
    (`positive_label_id`, defaulting to id 1); for more classes they are macro averages, and the
    weighted averages are given as well.

    Example:
        >>> m = classification_metrics([0, 1, 1], [0, 1, 0], ["neg", "pos"])
        >>> round(m["accuracy"], 3), round(m["f1"], 3)
        (0.667, 0.667)
    """
    num_labels = len(label_names)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has {y_true.size} labels but y_pred has {y_pred.size}")
    matrix = confusion_matrix(y_true, y_pred, num_labels)
    true_positive = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    precision = _safe_divide(true_positive, predicted)
    recall = _safe_divide(true_positive, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    weights = _safe_divide(support, np.full_like(support, support.sum()))

    metrics: dict = {"accuracy": float(true_positive.sum() / max(len(y_true), 1))}
    if num_labels == 2:
        positive = 1 if positive_label_id is None else positive_label_id
        metrics.update(
            precision=float(precision[positive]),
            recall=float(recall[positive]),
            f1=float(f1[positive]),
            average="binary",
            positive_label=label_names[positive],
        )
    else:
        metrics.update(precision=float(precision.mean()), recall=float(recall.mean()), f1=float(f1.mean()), average="macro")
    metrics.update(
        precision_macro=float(precision.mean()),
        recall_macro=float(recall.mean()),
        f1_macro=float(f1.mean()),
        precision_weighted=float((precision * weights).sum()),
        recall_weighted=float((recall * weights).sum()),
        f1_weighted=float((f1 * weights).sum()),
        num_examples=int(len(y_true)),
        per_class={
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        },
        confusion_matrix={"labels": list(label_names), "matrix": matrix.tolist()},
    )
    return metrics


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """The numeric top-level entries, for loggers that take only floats."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
