"""ROUGE-1, ROUGE-2 and ROUGE-L F-measures with Google's `rouge-score` package (the reference Python port).

Porter stemming on, as the summarization literature reports; each score is the mean over the
examples, as a percentage.
"""

from __future__ import annotations

from typing import Sequence

from ..errors import TuneshipError, require

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE F-measures (0-100) of `predictions` against `references`, one reference each."""
    if len(predictions) != len(references):
        raise TuneshipError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise TuneshipError("no summaries to score")
    scorer = require("rouge_score.rouge_scorer", "summarization").RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references):
        for name, score in scorer.score(reference, prediction).items():
            totals[name] += score.fmeasure
    return {name: 100 * total / len(references) for name, total in totals.items()}


def lead3_scores(examples) -> dict[str, float]:
    """ROUGE of the lead-3 baseline (each document's first three sentences) against the examples' summaries, as
    `lead3_rouge1`, `lead3_rouge2`, `lead3_rougeL`: the yardstick printed next to every summarizer's scores."""
    from ..data.summarization import lead

    scores = rouge([lead(e.document) for e in examples], [e.summary for e in examples])
    return {f"lead3_{name}": value for name, value in scores.items()}
