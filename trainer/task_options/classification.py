"""`ClassificationOptions`: the options only text classification reads, which `TrainConfig` inherits (a run of another
task refuses them by name)."""

from __future__ import annotations

from dataclasses import dataclass

from ...options import TaskOptions, option
from ...tasks import CLASSIFICATION

METRIC_CHOICES = ("auto", "accuracy", "f1", "precision", "recall", "f1_macro", "f1_weighted", "loss")
CLASS_WEIGHT_CHOICES = ("auto", "balanced", "sqrt", "none")
POOLING_CHOICES = ("cls", "mean")


@dataclass
class ClassificationOptions(TaskOptions):
    """The options only text classification reads."""

    text_pair_column: str | None = option(None, "column with the second text of a pair (auto-detected)", "data",
                                          task=CLASSIFICATION)
    drop_invalid: bool = option(False, "skip rows with empty or missing text or label instead of failing", "data",
                                task=CLASSIFICATION)
    positive_label: str | None = option(
        None, "the positive class for binary precision/recall/F1 (default: 1, true, yes, positive, relevant, else the second label)",
        "data", task=CLASSIFICATION,
    )
    class_weights: str = option(
        "auto", "loss weights per class: balanced (inverse frequency), sqrt (its square root), none; "
        "auto: sqrt when the rarest class is under 20%% of the training rows, else none",
        "training", choices=CLASS_WEIGHT_CHOICES, task=CLASSIFICATION,
    )
    metric_for_best_model: str = option(
        "auto", "classification: validation metric that picks the checkpoint kept (auto: f1 for two classes, else "
        "accuracy; question answering keeps the best F1, summarization the best ROUGE-L)",
        "model selection", choices=METRIC_CHOICES, task=CLASSIFICATION,
    )
    pooling: str = option(
        "cls", "classification head: cls (transformers' BertForSequenceClassification, the pooled first token) or mean "
        "(the masked mean of the tokens, as sentence-embedding bases were trained; BERT bases; the checkpoint then "
        "loads in transformers with trust_remote_code=True)", "training", choices=POOLING_CHOICES, task=CLASSIFICATION)
    swap_pairs: bool = option(
        False, "classification of pairs whose order does not matter (paraphrase, duplicates): also train on every pair "
        "with its two texts swapped; never for ordered pairs such as article/comment", "training", task=CLASSIFICATION)

    def __post_init__(self) -> None:
        if self.positive_label is not None:
            self.positive_label = str(self.positive_label)
        super().__post_init__()
