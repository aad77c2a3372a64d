"""Metrics in plain Python and numpy, one module per task: classification (with ranking for query/candidate
pairs), question answering (SQuAD exact match and F1) and summarization (ROUGE, with the lead-3 baseline)."""

from .classification import classification_metrics, confusion_matrix, scalar_metrics
from .question_answering import squad_metrics, squad_score

__all__ = ["classification_metrics", "confusion_matrix", "scalar_metrics", "squad_metrics", "squad_score"]
