"""`TrainConfig`: every option of a fine-tuning run, defined once for the CLI, files and Python."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TuneshipError
from ..options import check_choices, check_task_options, key_values, option
from ..tasks import CLASSIFICATION, TASK_NAMES
from .task_options.classification import ClassificationOptions
from .task_options.question_answering import QuestionAnsweringOptions
from .task_options.summarization import SummarizationOptions

PRECISION_CHOICES = ("auto", "no", "bf16", "fp16")
REFIT_CHOICES = ("auto", "yes", "no")
KEEP_CHOICES = ("auto", "last", "best")


@dataclass
class TrainConfig(SummarizationOptions, QuestionAnsweringOptions, ClassificationOptions):  # fields: the last first
    """Options of `train()` and `tuneship train`; see `tuneship train --help` for each one. The options only one task
    reads are declared in its module (`ClassificationOptions` in `trainer/task_options/classification.py`, ...); a
    run of another task refuses them by name.

    Example:
        >>> config = TrainConfig(train_file="examples/tickets/train.csv", output_dir="runs/tickets")
        >>> config.max_length
        256
    """

    task: str = option(
        CLASSIFICATION, "text-classification (one text or a pair, with labels), question-answering "
        "(extractive, SQuAD-style: SQuAD JSON, or CSV/JSONL with context, question and answers) or summarization "
        "(CSV/JSONL with document and summary columns)",
        "data", choices=TASK_NAMES,
    )
    # Data
    train_file: str | None = option(
        None, "training data: a CSV, TSV, JSON, JSONL or Parquet file, or a Hub dataset name",
        "data", flag="--train", metavar="FILE",
    )
    validation_file: str | None = option(
        None, "validation data; without it a stratified, seeded split of the training data is used",
        "data", flag="--validation", metavar="FILE",
    )
    validation_split: float = option(0.2, "fraction of the training data held out when no validation file is given", "data")
    text_column: str | None = option(None, "column with the text (auto-detected when not given)", "data")
    label_column: str | None = option(None, "column with the label (auto-detected)", "data")
    max_length: int = option(256, "longest input in tokens; pairs are cut from the longer text first", "data")

    # Model and output
    model: str = option("default", "the model to fine-tune: 'default' (MiniLM-L6, shipped offline), a local folder or a "
                        "Hub id (a model card's `base_model`)", "model", flag="--base-model", metavar="MODEL")
    output_dir: str = option("tuneship-model", "folder for the fine-tuned checkpoint", "model", flag="--output", metavar="DIR")
    overwrite: bool = option(False, "replace an existing output folder", "model")
    resume: bool = option(False, "resume from the last checkpoint of an interrupted run with the same output", "model")
    keep_checkpoints: bool = option(False, "keep the per-epoch checkpoints (OUTPUT.checkpoints/) after training", "model")

    # Optimisation
    learning_rate: float | str = option(
        "auto", "peak learning rate; auto: by the base model's size (1e-4 under 50M parameters, 3e-5 under 200M, "
        "2e-5 above; see docs/training.md)", "training", type=str, training_arg="learning_rate")
    num_train_epochs: float | str = option(
        "auto", "number of epochs (with --keep best, early stopping may end sooner); auto: for classification 3 "
        "(2 above 16,000 training rows) when the last epoch is kept, and with --keep best 40,000 / rows between 2 and "
        "6; 6 for question answering and summarization", "training", flag="--epochs", type=str,
        training_arg="num_train_epochs")
    train_batch_size: int = option(16, "training batch size per device", "training", flag="--batch-size",
                                   training_arg="per_device_train_batch_size")
    eval_batch_size: int = option(64, "evaluation batch size per device", "training",
                                  training_arg="per_device_eval_batch_size")
    weight_decay: float = option(0.01, "AdamW weight decay", "training", training_arg="weight_decay")
    warmup_ratio: float | str = option(
        "auto", "fraction of steps with a linear learning-rate warm-up; auto: 0 when the last epoch is kept (the "
        "plain recipe, measured best), 0.1 with --keep best", "training", type=str, training_arg="warmup_ratio")
    seed: int = option(42, "random seed for the split, the head's initialisation and the data order", "training",
                       training_arg="seed")
    logging_steps: int = option(10, "log the training loss every N steps", "training", training_arg="logging_steps")

    # Model selection
    keep: str = option(
        "auto", "the epoch the checkpoint keeps: last (as the plain Trainer script: the validation rows only score "
        "each epoch), or best (the best-scored epoch on the selection rows, with early stopping and "
        "--average-checkpoints); auto: last for classification (measured better, docs/results.md), best for question "
        "answering and summarization", "model selection", choices=KEEP_CHOICES)
    early_stopping_patience: int = option(2, "with --keep best: stop after N evaluations without improvement (0: "
                                          "never)", "model selection")
    average_checkpoints: int = option(
        1, "with --keep best: average the weights of the N best epochs (on the selection rows), kept only when the "
        "average scores at least as well as the best epoch there (1: the best epoch alone)", "model selection")
    refit: str = option(
        "auto", "classification: after the run on the split held out of --train (which scores it and, with --keep "
        "best, chooses the epoch count), train again on every training row for that many epochs; auto: when the selection rows were split from --train and it has "
        "at most 20000 rows; yes; no", "model selection", choices=REFIT_CHOICES)
    save_total_limit: int = option(2, "epoch checkpoints kept on disk (the best is always kept)", "model selection",
                                   training_arg="save_total_limit")

    # Hardware
    mixed_precision: str = option(
        "auto", "bf16/fp16 training on a GPU (auto: bf16 if supported, else fp16; 'no' on CPUs)",
        "hardware", choices=PRECISION_CHOICES,
    )

    # Hyperparameter search
    search: int = option(0, "try N settings with Optuna (trials scored on the selection rows, pruned early), then "
                         "train with the best; a config file's `search:` mapping sets `trials` and the `space` "
                         "(see docs/training.md)", "search", metavar="N", merge_key="trials")
    search_space: dict = option(None, "the search space (config file: `search: {space: ...}`); merged over the default",
                                "search", metavar="-", skip_flag=True)

    # Anything else transformers.TrainingArguments has (tuneship re-declares above only the fields whose defaults it
    # changes, and `seed`, which also seeds the split and the head)
    training_args: dict = option(
        None, "any other transformers.TrainingArguments field, as KEY=VALUE (repeatable; e.g. gradient_checkpointing=true, "
        "report_to=tensorboard); in a config file, a `training_args:` mapping. Checked by transformers before training",
        "transformers", flag="--training-arg", metavar="KEY=VALUE", action="append",
    )

    def __post_init__(self) -> None:
        check_choices(self)  # task, class_weights, metric_for_best_model, refit, mixed_precision
        check_task_options(self, self.task)  # another task's option set here would be ignored
        self.training_args = key_values(self.training_args, "--training-arg")
        if isinstance(self.search, dict):  # `search: {trials: N, space: {...}}` in a config file
            unknown = set(self.search) - {"trials", "space"}
            if unknown:
                raise TuneshipError(f"search: unknown key(s) {', '.join(sorted(unknown))}; use trials and space")
            self.search_space = {**(self.search_space or {}), **(self.search.get("space") or {})}
            self.search = self.search.get("trials", 10)
        if not isinstance(self.search, int) or isinstance(self.search, bool) or self.search < 0:
            raise TuneshipError(f"search: the number of trials must be 0 or more, not {self.search!r}")
        self.search_space = self.search_space or {}
        check_space(self.search_space)
        if not 0.0 < self.validation_split < 1.0:
            raise ConfigError(f"validation_split must be between 0 and 1, got {self.validation_split}")
        if self.max_length < 8:
            raise ConfigError(f"max_length must be at least 8 tokens, got {self.max_length}")
        for name in ("learning_rate", "num_train_epochs", "warmup_ratio"):
            if getattr(self, name) != "auto":
                try:
                    setattr(self, name, float(getattr(self, name)))
                except (TypeError, ValueError):
                    raise ConfigError(f"{name} must be a number or 'auto', got {getattr(self, name)!r}") from None
        if self.average_checkpoints < 1:
            raise ConfigError(f"average_checkpoints must be 1 or more, got {self.average_checkpoints}")
        for name in ("train_batch_size", "eval_batch_size",
                     *(name for name in ("learning_rate", "num_train_epochs") if getattr(self, name) != "auto")):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.warmup_ratio != "auto" and not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.early_stopping_patience < 0:
            raise ConfigError(f"early_stopping_patience must be 0 or more, got {self.early_stopping_patience}")
        super().__post_init__()  # each task's options check their own values

    @property
    def checkpoints_dir(self) -> Path:
        """Where the Trainer keeps per-epoch checkpoints, beside the output folder."""
        output = Path(self.output_dir)
        return output.with_name(output.name + ".checkpoints")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        return cls(**values)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


DEFAULT_SPACE = {
    "learning_rate": {"low": 1e-5, "high": 2e-4, "log": True},
    "num_train_epochs": {"low": 2, "high": 6, "step": 1},
    "train_batch_size": {"choices": [8, 16, 32]},
    "warmup_ratio": {"low": 0.0, "high": 0.2},
    "weight_decay": {"low": 0.0, "high": 0.1},
}


# TrainingArguments fields a search may vary beside tuneship's own options (they keep transformers' defaults unless
# `training_args` sets them); the best trial's value goes into `training_args`.
SEARCHABLE_TRAINING_ARGS = {"max_steps": int, "gradient_accumulation_steps": int, "lr_scheduler_type": str}


def searchable() -> dict[str, type]:
    """The options a search may vary, by their type: the `TrainConfig` options that are TrainingArguments fields,
    and `SEARCHABLE_TRAINING_ARGS`."""
    hints = typing.get_type_hints(TrainConfig)
    kinds = dict(SEARCHABLE_TRAINING_ARGS)
    for field in dataclasses.fields(TrainConfig):
        if "training_arg" in field.metadata and field.name not in ("seed", "logging_steps", "save_total_limit"):
            kind = hints[field.name]
            if typing.get_origin(kind) in (typing.Union, types.UnionType):
                kind = typing.get_args(kind)[0]
            kinds[field.name] = kind
    return kinds


def check_space(space: dict) -> dict:
    """`space` merged over the default space, checked: known options, valid ranges; errors name the key."""
    kinds = searchable()
    merged = dict(DEFAULT_SPACE)
    for name, spec in (space or {}).items():
        where = f"search.space.{name}"
        if name not in kinds:
            raise TuneshipError(f"{where}: not an option a search can vary; use one of {', '.join(sorted(kinds))}")
        if not isinstance(spec, dict) or not ({"choices"} <= set(spec) or {"low", "high"} <= set(spec)):
            raise TuneshipError(f"{where}: give {{low: ..., high: ...}} (and log: true) or {{choices: [...]}}")
        unknown = set(spec) - {"low", "high", "log", "step", "choices"}
        if unknown:
            raise TuneshipError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; use low, high, log, step or choices")
        if "choices" in spec:
            if not isinstance(spec["choices"], list) or not spec["choices"]:
                raise TuneshipError(f"{where}.choices: give a non-empty list")
        else:
            try:
                low, high = float(spec["low"]), float(spec["high"])
            except (TypeError, ValueError):
                raise TuneshipError(f"{where}: low and high must be numbers, not {spec['low']!r} and {spec['high']!r}") from None
            if not low < high:
                raise TuneshipError(f"{where}: low ({spec['low']}) must be below high ({spec['high']})")
            if spec.get("log") and low <= 0:
                raise TuneshipError(f"{where}: a log scale needs low above 0, not {spec['low']}")
        merged[name] = spec
    return merged
