"""Extractive QA metrics: exact match and F1 as the official SQuAD v1.1 evaluation script defines them.

Computed locally (no metric download). Answers are normalized before comparing: lower-cased,
punctuation removed, the articles "a", "an", "the" removed, whitespace collapsed. A prediction scores
the best of its question's gold answers; the totals are percentages, as the official script prints.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Mapping, Sequence

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and articles, collapse whitespace (the official `normalize_answer`)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    """Token-overlap F1 of the normalized answers (0 when either is empty and they differ)."""
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict:
    """`exact_match` and `f1` (percent) over the questions in `references` (id -> gold answer texts).

    A question without a prediction counts as wrong, as in the official script.

    Example:
        >>> squad_metrics({"q1": "the Eiffel Tower", "q2": "1889"}, {"q1": ["Eiffel Tower"], "q2": ["in 1889", "1889"]})
        {'exact_match': 100.0, 'f1': 100.0, 'num_examples': 2}
    """
    if not references:
        raise ValueError("no reference answers to score against")
    total_em = total_f1 = 0.0
    for question_id, truths in references.items():
        if not truths:
            raise ValueError(f"question {question_id!r} has no gold answer")
        prediction = predictions.get(question_id)
        if prediction is None:
            continue
        total_em += max(exact_match(prediction, truth) for truth in truths)
        total_f1 += max(f1(prediction, truth) for truth in truths)
    count = len(references)
    return {"exact_match": 100 * total_em / count, "f1": 100 * total_f1 / count, "num_examples": count}


def squad_score(examples, answers) -> dict:
    """SQuAD exact match and F1 (percent) of `answers` (objects with `.text`) against the examples' gold answers."""
    return squad_metrics({e.id: a.text for e, a in zip(examples, answers)},
                         {e.id: [text for text, _ in e.answers] for e in examples})
