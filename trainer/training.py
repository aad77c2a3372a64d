"""`train()`: fine-tune a model for any task with `transformers.Trainer` into a checkpoint folder.

Every task runs the one skeleton of `TrainingRun.run`, in this order: resolve the epoch kept (the task's `keep`),
check the output folder, read and split the data, build the model, resolve the learning rate and epochs, make the
features, search (where the task has it), train, average the best epochs (`average_checkpoints`), score the model
kept, refit on every row (where the task has it), save the checkpoint with its card. A task's module
(`trainer/<task>.py`, found through `tuneship.tasks`) subclasses `TrainingRun` as `Run` and supplies the hooks (its
data, model, features, metrics and checkpoint files) and nothing else. Options are resolved into new configs
(`dataclasses.replace`): the caller's is never changed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import tasks
from ..errors import TuneshipError, require
from ..log import get_logger
from .arguments import check_training_args, training_arguments
from .config import TrainConfig
from .runs import TrainResult, finish_run, prepare_output, readable_progress, trainer_callbacks

logger = get_logger(__name__)
NEXT_STEPS = "  tuneship evaluate --model {output} --data FILE\n  tuneship export --model {output} --output {output}-onnx"


class TrainingRun(ABC):
    """One fine-tuning run of a task: the skeleton (`run`) and the hooks a task's `Run` subclass fills in.

    `self.config` is the run's config as resolved so far (a copy: the caller's is never changed) and `self.data`
    what `read_data` returned. The abstract hooks are every task's own; the others are what most tasks want
    (`rows` is needed where the task has a refit: `tasks.Task.supports("refit")`).
    """

    keep = "best"  # the epoch kept by `keep="auto"`: "best" (selected, early stopping) or "last" (the plain recipe)
    trainer_class = "Trainer"  # the transformers class of the run's Trainer ...
    arguments_class = "TrainingArguments"  # ... and of its arguments
    collator_class = "DataCollatorWithPadding"  # built as collator_class(tokenizer), or see `collator`

    def __init__(self, config: TrainConfig, callbacks: Sequence = ()):
        self.config = config
        self.callbacks = list(callbacks)
        self.data: Any = None
        self.search: dict | None = None  # the search's results (every trial), where one ran

    # ------------------------------------------------------------------ the hooks

    @abstractmethod
    def read_data(self) -> Any:
        """Read, check and split the training and selection data (logging what was found)."""
        raise NotImplementedError

    @abstractmethod
    def build_model(self) -> tuple[Any, Any]:
        """A fresh model (seeded) with the settings inference needs in `model.config.tuneship`, and its tokenizer."""
        raise NotImplementedError

    def epoch_rows(self) -> int | None:
        """The training rows `num_train_epochs="auto"` counts (None: the fixed default, see `resolve_epochs`)."""
        return None

    def rows(self) -> int:
        """The training and selection rows as read, which the refit's rule counts (where the task has a refit)."""
        raise NotImplementedError

    @abstractmethod
    def features(self, model, tokenizer) -> tuple[Any, Any]:
        """The training and selection sets as the Trainer reads them."""
        raise NotImplementedError

    @abstractmethod
    def best_metric(self) -> str:
        """The selection metric (without `eval_`) that picks the epoch kept."""
        raise NotImplementedError

    @abstractmethod
    def compute_metrics(self, tokenizer) -> Callable:
        """The Trainer's `compute_metrics` on the selection set."""
        raise NotImplementedError

    def trainer_type(self) -> type:
        """The run's Trainer class (`transformers.<trainer_class>`, or a subclass of it)."""
        import transformers

        return getattr(transformers, self.trainer_class)

    def collator(self, model, tokenizer):
        import transformers

        return getattr(transformers, self.collator_class)(tokenizer)

    def trainer_options(self) -> dict:
        """More keyword arguments of the Trainer (a custom loss, a subclass's own options)."""
        return {}

    def argument_options(self) -> dict:
        """More values of the training arguments, under the user's `training_args`."""
        return {}

    def score(self, trainer, validation_set) -> dict:
        """The full metrics of the model kept, on the selection set."""
        return {key.removeprefix("eval_"): value for key, value in trainer.evaluate().items()}

    def refit_set(self, tokenizer, train_set, validation_set):
        """Every training row as the Trainer reads it, for the refit (where the task has one)."""
        import datasets

        return datasets.concatenate_datasets([train_set, validation_set])

    @abstractmethod
    def save(self, folder: Path, trainer, metrics: dict) -> None:
        """Write the checkpoint folder (weights, tokenizer, card, the selection rows, the task's files)."""
        raise NotImplementedError

    def next_steps(self) -> str:
        """What to run next, printed at the end (`{output}` is the checkpoint folder)."""
        return NEXT_STEPS

    # ------------------------------------------------------------------ the skeleton

    def make_trainer(self, model, tokenizer, train_set, eval_set, callbacks: Sequence, model_init=None, **arguments):
        """The run's Trainer (with `model_init` instead of `model` for a search); `arguments` override the training
        arguments (the refit's)."""
        metric = self.best_metric()
        args = training_arguments(self.config, metric, self.arguments_class, **{**self.argument_options(), **arguments})
        return readable_progress(self.trainer_type()(
            model=model, model_init=model_init, args=args, train_dataset=train_set, eval_dataset=eval_set,
            processing_class=tokenizer, data_collator=self.collator(model, tokenizer),
            compute_metrics=self.compute_metrics(tokenizer), callbacks=list(callbacks), **self.trainer_options(),
        ))

    def run(self) -> TrainResult:
        """Fine-tune, select, save; see the module's docstring for the order."""
        from .selection import (average, best_weights, kept_epoch, last_weights, refit_wanted, resolve_epochs,
                                resolve_keep, resolve_learning_rate, try_average)

        require("transformers", "train")
        task = tasks.get(self.config.task)
        self.config = resolve_keep(self.config, self.keep)
        resume = prepare_output(self.config)
        self.data = self.read_data()
        model, tokenizer = self.build_model()
        self.config = resolve_epochs(resolve_learning_rate(self.config, model), self.epoch_rows())
        train_set, validation_set = self.features(model, tokenizer)
        metric = self.best_metric()
        greater = metric != "loss"
        search = None
        if self.config.search:
            from .search import apply_best, run_search

            searcher = self.make_trainer(None, tokenizer, train_set, validation_set,
                                         trainer_callbacks(self.config, self.callbacks),
                                         model_init=lambda trial=None: self.build_model()[0])
            self.search = search = run_search(self.config, searcher, metric, greater)
            self.config = apply_best(self.config, search)
        count = self.config.average_checkpoints
        keeper = best_weights(count, metric, greater) if count > 1 else None
        trainer = self.make_trainer(model, tokenizer, train_set, validation_set,
                                    [*trainer_callbacks(self.config, self.callbacks), *([keeper] if keeper else [])])
        trainer.train(resume_from_checkpoint=resume)
        averaged = try_average(trainer, keeper, metric, greater) if keeper else None

        metrics = self.score(trainer, validation_set)  # the model kept (best epoch or average), scored once more
        if averaged:
            metrics["averaged_epochs"] = averaged
        if search:
            metrics["search"] = {k: search[k] for k in ("metric", "best_trial", "best_value", "best")}
        if task.supports("refit") and refit_wanted(self.config, self.config.validation_file is None, rows := self.rows()):
            kept_average = bool(averaged and averaged["kept"])
            epochs = round(max(averaged["epochs"])) if kept_average else kept_epoch(trainer)
            last = len(averaged["epochs"]) if kept_average else 1
            logger.info(f"refitting on all {rows} training rows for {epochs} epoch(s)"
                        + (f", averaging the last {last}" if last > 1 else ""))
            selection = trainer
            model, tokenizer = self.build_model()
            keeper = last_weights(last) if last > 1 else None
            trainer = self.make_trainer(
                model, tokenizer, self.refit_set(tokenizer, train_set, validation_set), None, [keeper] if keeper else [],
                num_train_epochs=epochs, eval_strategy="no", save_strategy="no", load_best_model_at_end=False,
                output_dir=str(self.config.checkpoints_dir / "refit"))
            trainer.train()
            if keeper:
                trainer.model.load_state_dict(average([k.state for k in keeper.kept]))
            trainer.state.log_history = [*selection.state.log_history,
                                         *({**entry, "refit": True} for entry in trainer.state.log_history)]
            metrics["refit"] = {"epochs": epochs, "rows": rows,
                                "note": "the metrics above are the selection run's on the selection rows"}
        return finish_run(trainer, self.config, metrics, lambda folder: self.save(folder, trainer, metrics),
                          self.next_steps())


def train(config: TrainConfig, callbacks: Sequence = ()) -> TrainResult:
    """Fine-tune `config.model` on `config.train_file` for `config.task` and write a self-contained checkpoint.

    Args:
        config (`TrainConfig`): the run's options.
        callbacks (sequence of `transformers.TrainerCallback`, *optional*): extra Trainer callbacks.

    Returns:
        `TrainResult` with the output folder, the validation metrics of the model kept and the options as used.

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
    if config.refit == "yes":
        task.check("refit")
    check_training_args(config.training_args)  # a wrong key fails now, not after the data is read
    return task.stage("trainer").Run(config, callbacks).run()
