"""The checkpoint's `README.md`: card data gathered from the run, rendered from one Jinja template for every task.

The layout lives in `model_card_template.md`; the common part of the data (base model, data sources,
hyperparameters, versions) is gathered here, and each task's training module adds what only it knows
(what the model does, its headline metrics, its extra evaluation tables, how to use it).
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
TEMPLATE = Path(__file__).with_name("model_card_template.md")
HYPERPARAMETERS = (  # TrainConfig options ...
    "learning_rate", "num_train_epochs", "train_batch_size", "eval_batch_size", "weight_decay", "warmup_ratio", "seed",
    "max_length", "keep", "metric_for_best_model", "early_stopping_patience",
)
SELECTION_ONLY = ("metric_for_best_model", "early_stopping_patience")  # ... shown with `keep="best"` only
TRAINING_ARGS_SHOWN = ("gradient_accumulation_steps", "lr_scheduler_type")  # ... and TrainingArguments fields, as run


@dataclass
class CardData:
    """Everything the card says; `render()` turns it into Markdown with YAML metadata (eval results included)."""

    model_name: str
    base_model: str
    pipeline_tag: str
    task_description: str  # "A text-pair classification model", "An extractive question-answering model", ...
    summary: str  # what it predicts, one sentence
    train_source: str
    validation_source: str
    num_train: int
    num_validation: int
    unit: str  # "rows", "questions", "documents"
    headline_metrics: dict[str, float]
    kept: str  # which epoch the checkpoint is: "the last epoch", or "the best validation `f1` over the epochs"
    hyperparameters: dict
    epochs_run: float
    train_runtime: float
    intended_use: str
    usage: str  # Markdown: how to load and call it
    preprocessing: list[str]  # bullets
    limitations: list[str]  # bullets, the task's own (the common ones are in the template)
    max_length: int
    evaluation_extra: str = ""  # Markdown after the headline table (per-class table, baselines, figures)
    sections: dict[str, str] = field(default_factory=dict)  # more sections: title -> Markdown
    tags: list[str] = field(default_factory=list)
    license: str = "apache-2.0"
    versions: dict = field(default_factory=dict)

    @property
    def is_default_model(self) -> bool:
        return self.base_model == "default"

    def render(self) -> str:
        from huggingface_hub import EvalResult, ModelCard, ModelCardData

        base_model = DEFAULT_BASE_MODEL_ID if self.is_default_model else self.base_model
        hub_base = base_model if not Path(base_model).exists() else None
        dataset_name = Path(self.train_source).parent.name or self.train_source
        eval_results = [
            EvalResult(task_type=self.pipeline_tag, dataset_type=dataset_name, dataset_name=dataset_name,
                       dataset_split="validation", metric_type=name, metric_value=round(float(value), 4))
            for name, value in self.headline_metrics.items()
        ]
        card_data = ModelCardData(
            language="en", license=self.license, library_name="transformers", pipeline_tag=self.pipeline_tag,
            tags=["tuneship", self.pipeline_tag, *self.tags], base_model=hub_base, model_name=self.model_name,
            eval_results=eval_results,
        )
        card = ModelCard.from_template(card_data, template_path=str(TEMPLATE), **asdict(self),
                                       base_model_display=base_model, is_default_model=self.is_default_model)
        return str(card)


def library_versions() -> dict[str, str]:
    import datasets
    import tokenizers
    import torch
    import transformers

    return {
        "Python": platform.python_version(),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "datasets": datasets.__version__,
        "tokenizers": tokenizers.__version__,
    }
