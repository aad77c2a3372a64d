"""Write a fine-tuned checkpoint folder, for every task: weights, configs, tokenizer, metrics, the training log and
curve, the validation rows (the export's gates read them), and the model card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from ..checkpoint import VALIDATION_FILE
from ..files import write_json
from .config import TrainConfig
from .model_card import HYPERPARAMETERS, SELECTION_ONLY, TRAINING_ARGS_SHOWN, CardData, library_versions
from .plots import plot_training_curve
from .runs import train_runtime



def write_jsonl(path: Path, rows: Sequence[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def card_data(trainer, config: TrainConfig, **task_parts) -> CardData:
    """The card's data: what every run knows (base model, hyperparameters, epochs, versions) and the task's parts."""
    best_metric = trainer.args.metric_for_best_model
    hyperparameters = {name: getattr(config, name) for name in HYPERPARAMETERS} | {"metric_for_best_model": best_metric}
    if config.keep == "last":  # nothing was selected: the selection options played no part
        hyperparameters = {k: v for k, v in hyperparameters.items() if k not in SELECTION_ONLY}
    kept = "the last epoch" if config.keep == "last" else f"the best validation `{best_metric}` over the epochs"
    hyperparameters |= {name: getattr(getattr(trainer.args, name), "value", getattr(trainer.args, name))
                        for name in TRAINING_ARGS_SHOWN}  # an enum (the scheduler) by its name
    hyperparameters |= config.training_args
    return CardData(
        model_name=Path(config.output_dir).name, base_model=config.model, pipeline_tag=config.task,
        kept=kept, hyperparameters=hyperparameters, epochs_run=round(trainer.state.epoch or 0, 2),
        train_runtime=round(train_runtime(trainer) or 0.0, 1), max_length=config.max_length,
        versions=library_versions(), **task_parts,
    )


def save_checkpoint(folder: Path, trainer, config: TrainConfig, metrics: dict, validation_rows: Sequence[dict],
                    card: CardData, extra: Callable[[Path], None] | None = None) -> None:
    """Save everything a user, `pipeline(...)`, export and serving need into `folder`; `extra(folder)` adds the
    task's own files (classification: calibration rows, confusion matrix)."""
    trainer.save_model(str(folder))  # safetensors weights, config.json, tokenizer files
    (folder / "training_args.json").write_text(trainer.args.to_json_string() + "\n", encoding="utf-8")
    (folder / "train_config.json").write_text(config.to_json_string() + "\n", encoding="utf-8")
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "log_history.json", trainer.state.log_history)
    write_jsonl(folder / VALIDATION_FILE, validation_rows)
    plot_training_curve(trainer.state.log_history, trainer.args.metric_for_best_model, folder / "training_curve.png")
    if extra is not None:
        extra(folder)
    (folder / "README.md").write_text(card.render(), encoding="utf-8")
