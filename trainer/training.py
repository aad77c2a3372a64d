"""`train()`: fine-tune a model for any task with `transformers.Trainer` into a checkpoint folder.

The task's own module (`trainer/<task>.py`, found through `tuneship.tasks`) reads its data, builds the model
and the Trainer; this driver checks what every run needs first.
"""

from __future__ import annotations

from typing import Sequence

from .. import tasks
from ..errors import TuneshipError
from .arguments import check_training_args
from .config import TrainConfig
from .runs import TrainResult


def train(config: TrainConfig, callbacks: Sequence = ()) -> TrainResult:
    """Fine-tune `config.model` on `config.train_file` for `config.task` and write a self-contained checkpoint.

    Args:
        config (`TrainConfig`): the run's options.
        callbacks (sequence of `transformers.TrainerCallback`, *optional*): extra Trainer callbacks.

    Returns:
        `TrainResult` with the output folder and the validation metrics of the model kept.

    Example:
        >>> from tuneship.trainer import TrainConfig, train
        >>> result = train(TrainConfig(train_file="examples/tickets/train.csv", output_dir="runs/tickets"))
        >>> result.metrics["accuracy"]  # doctest: +SKIP
    """
    if config.train_file is None:
        raise TuneshipError("no training data: pass --train FILE (or train_file=...)")
    task = tasks.get(config.task)
    task.check("train")
    if config.search:
        task.check("search")
    check_training_args(config.training_args)  # a wrong key fails now, not after the data is read
    return task.stage("trainer").train(config, callbacks)
