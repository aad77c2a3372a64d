"""The checkpoint's `README.md`: card data gathered from the run, rendered from a Jinja template."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
TEMPLATE = Path(__file__).with_name("model_card_template.md")
HYPERPARAMETERS = (
    "learning_rate", "num_train_epochs", "train_batch_size", "eval_batch_size", "gradient_accumulation_steps",
    "weight_decay", "warmup_ratio", "lr_scheduler_type", "seed", "max_length", "metric_for_best_model",
    "early_stopping_patience", "class_weights",
)


@dataclass
class ClassifierCardData:
    """Everything the card says; `render()` turns it into Markdown with YAML metadata."""

    model_name: str
    base_model: str
    train_source: str
    validation_source: str
    label_names: list[str]
    text_column: str
    text_pair_column: str | None
    label_column: str
    max_length: int
    truncation: str
    metrics: dict
    hyperparameters: dict
    best_metric: str
    num_train: int
    num_validation: int
    epochs_run: float
    train_runtime: float
    license: str = "apache-2.0"
    versions: dict = field(default_factory=dict)

    @property
    def is_pair(self) -> bool:
        return self.text_pair_column is not None

    def render(self) -> str:
        from huggingface_hub import EvalResult, ModelCard, ModelCardData

        is_default = self.base_model == "default"
        base_model = DEFAULT_BASE_MODEL_ID if is_default else self.base_model
        hub_base = base_model if not Path(base_model).exists() else None
        headline = {k: self.metrics[k] for k in ("accuracy", "precision", "recall", "f1") if k in self.metrics}
        if self.metrics.get("average") == "macro":
            headline.update({k: self.metrics[k] for k in ("f1_weighted",)})
        dataset_name = Path(self.train_source).parent.name or self.train_source
        eval_results = [
            EvalResult(
                task_type="text-classification",
                dataset_type=dataset_name,
                dataset_name=dataset_name,
                dataset_split="validation",
                metric_type=name,
                metric_value=round(float(value), 4),
            )
            for name, value in headline.items()
        ]
        card_data = ModelCardData(
            language="en",
            license=self.license,
            library_name="transformers",
            pipeline_tag="text-classification",
            tags=["tuneship", "text-classification", "sentence-pair-classification" if self.is_pair else "single-text"],
            base_model=hub_base,
            model_name=self.model_name,
            eval_results=eval_results,
        )
        task = "text-pair classification" if self.is_pair else "text classification"
        intended = (
            f"Classifying {'pairs of texts (' + self.text_column + ', ' + self.text_pair_column + ')' if self.is_pair else 'texts'} "
            f"into {', '.join(self.label_names)}, for data like the training data. "
            "Export it to quantized ONNX with `tuneship export` to serve it on CPUs."
        )
        values = asdict(self)
        card = ModelCard.from_template(
            card_data,
            template_path=str(TEMPLATE),
            **values,
            task_description=task,
            is_pair=self.is_pair,
            is_default_model=is_default,
            base_model_display=base_model,
            model_id=self.model_name,
            headline_metrics=headline,
            per_class=self.metrics["per_class"],
            baseline=self.metrics.get("majority_baseline_accuracy", float("nan")),
            intended_use=intended,
        )
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
