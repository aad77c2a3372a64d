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


def repeats_first_text(texts: Sequence[str]) -> bool:
    """Whether some first text of a pair comes back (a query with several candidates, as in answer selection)."""
    return len(set(texts)) < len(texts)


def ranking_metrics(queries: Sequence[str], y_true: Sequence[int], scores: Sequence[float], positive_id: int) -> dict:
    """MAP and MRR over the queries (rows grouped by their first text), candidates ranked by `scores` (the
    positive class's probability), as answer selection (WikiQA) is reported. Queries without a positive
    candidate are left out, as the standard WikiQA evaluation does; `ranked_queries` counts the rest.

    Example:
        >>> m = ranking_metrics(["q1", "q1", "q1", "q2", "q2"], [0, 1, 0, 1, 0], [0.9, 0.8, 0.1, 0.7, 0.2], 1)
        >>> round(m["map"], 3), round(m["mrr"], 3), m["ranked_queries"]
        (0.75, 0.75, 2)
    """
    groups: dict[str, list[tuple[float, bool]]] = {}
    for query, truth, score in zip(queries, y_true, scores):
        groups.setdefault(query, []).append((float(score), int(truth) == positive_id))
    average_precisions, reciprocal_ranks = [], []
    for candidates in groups.values():
        ranked = [hit for _, hit in sorted(candidates, key=lambda c: -c[0])]
        if not any(ranked):
            continue
        hits, precisions = 0, []
        for rank, hit in enumerate(ranked, start=1):
            if hit:
                hits += 1
                precisions.append(hits / rank)
        average_precisions.append(float(np.mean(precisions)))
        reciprocal_ranks.append(1.0 / (ranked.index(True) + 1))
    if not average_precisions:
        return {}
    return {"map": float(np.mean(average_precisions)), "mrr": float(np.mean(reciprocal_ranks)),
            "ranked_queries": len(average_precisions), "queries": len(groups)}


def query_ranking(first_texts: Sequence[str] | None, y_true: Sequence[int], probabilities: np.ndarray,
                  positive_id: int | None) -> dict:
    """`ranking_metrics` for a binary pair task whose first text repeats; {} for any other task."""
    if first_texts is None or positive_id is None or not repeats_first_text(first_texts):
        return {}
    return ranking_metrics(first_texts, y_true, np.asarray(probabilities)[:, positive_id], positive_id)
