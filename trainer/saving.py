"""Write the fine-tuned checkpoint folder: weights, config, tokenizer, metrics, plots and card."""

from __future__ import annotations

from pathlib import Path

from ..files import write_json
from .config import TrainConfig
from .data import ClassificationData
from .model_card import HYPERPARAMETERS, ClassifierCardData, library_versions
from .plots import plot_confusion_matrix, plot_training_curve

VALIDATION_FILE = "validation.jsonl"
CALIBRATION_FILE = "calibration.jsonl"


def train_runtime(trainer) -> float | None:
    """Seconds the Trainer spent training, from its log (None before it has trained)."""
    return next((e["train_runtime"] for e in trainer.state.log_history if "train_runtime" in e), None)


def save_checkpoint(folder: Path, trainer, config: TrainConfig, data: ClassificationData, metrics: dict) -> None:
    """Save everything a user, `pipeline(...)`, export and serving need into `folder`."""
    trainer.save_model(str(folder))  # safetensors weights, config.json, tokenizer files
    (folder / "training_args.json").write_text(trainer.args.to_json_string() + "\n", encoding="utf-8")
    (folder / "train_config.json").write_text(config.to_json_string() + "\n", encoding="utf-8")
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "log_history.json", trainer.state.log_history)
    data.validation_rows.to_json(folder / VALIDATION_FILE, orient="records", lines=True, force_ascii=False)
    data.calibration_rows.to_json(folder / CALIBRATION_FILE, orient="records", lines=True, force_ascii=False)

    best_metric = trainer.args.metric_for_best_model
    plot_training_curve(trainer.state.log_history, best_metric, folder / "training_curve.png")
    plot_confusion_matrix(metrics["confusion_matrix"]["matrix"], data.label_names, folder / "confusion_matrix.png")

    settings = trainer.model.config.tuneship
    card = ClassifierCardData(
        model_name=Path(config.output_dir).name,
        base_model=config.model,
        train_source=data.train_source,
        validation_source=data.validation_source,
        label_names=data.label_names,
        text_column=settings["text_column"],
        text_pair_column=settings["text_pair_column"],
        label_column=settings["label_column"],
        max_length=settings["max_length"],
        truncation=settings["truncation"],
        metrics=metrics,
        hyperparameters={name: getattr(config, name) for name in HYPERPARAMETERS} | {"metric_for_best_model": best_metric},
        best_metric=best_metric,
        num_train=len(data.train),
        num_validation=len(data.validation),
        epochs_run=round(trainer.state.epoch or 0, 2),
        train_runtime=round(train_runtime(trainer) or 0.0, 1),
        versions=library_versions(),
    )
    (folder / "README.md").write_text(card.render(), encoding="utf-8")


def save_task_checkpoint(folder: Path, trainer, config: TrainConfig, metrics: dict, validation_rows: list[dict],
                         pipeline_tag: str, card_body: list[str]) -> None:
    """What a QA or summarization checkpoint holds: the model, its configs, metrics, the training log, the
    validation rows (`VALIDATION_FILE`, for the export's gates) and a card under a Hub YAML header."""
    import json

    trainer.save_model(str(folder))
    (folder / "train_config.json").write_text(config.to_json_string() + "\n", encoding="utf-8")
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "log_history.json", trainer.state.log_history)
    (folder / VALIDATION_FILE).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in validation_rows),
                                          encoding="utf-8")
    header = ["---", "library_name: transformers", "license: apache-2.0", f"pipeline_tag: {pipeline_tag}",
              "tags:", "- tuneship", f"- {pipeline_tag}", "---", "", f"# {Path(config.output_dir).name}", ""]
    (folder / "README.md").write_text("\n".join(header + card_body), encoding="utf-8")
