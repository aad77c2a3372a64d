"""Distillation: a classifier with fewer transformer layers, taught by a fine-tuned one.

    tuneship distill --teacher runs/mrpc --output runs/mrpc-3l [--layers 3] [--train FILE] [--unlabeled FILE]
        [--augment 2]

The student is the teacher's own architecture with `layers` of its layers (evenly spaced, the first and the last
kept), its embeddings, pooler and head copied. It learns from the teacher's soft labels (a KL loss at a
`temperature`) and from the hard labels (`alpha` weighs the two), with `hidden_weight`, from the teacher's hidden
states too (the first token's, after each kept layer but the last, normalized: Sun et al. 2019, "Patient Knowledge
Distillation for BERT Model Compression"), on the training rows and on any unlabeled
rows given and on `augment` masked copies of each training row (soft labels only: the masking rule of Tang et
al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural Networks"). The epochs are scored on the selection rows, as in `train`; the student is a
normal checkpoint that `evaluate`, `export`, `serve`, `bench` and the demo take as they take any.
Classification only: an extractive QA model's outputs are start and end logits per token, which this loss does
not cover.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


from .. import tasks
from ..errors import ConfigError, TuneshipError, require
from ..log import get_logger
from ..options import option
from .classification import Run as ClassificationRun
from .classification import task_settings
from .config import TrainConfig
from .training import NEXT_STEPS

logger = get_logger(__name__)


@dataclass
class DistillConfig(TrainConfig):
    """Options of `distill()` and `tuneship distill`: a `TrainConfig` (the student's training) and the teacher's part.

    Example:
        >>> config = DistillConfig(teacher="runs/mrpc", output_dir="runs/mrpc-3l", layers=3)  # doctest: +SKIP
    """

    teacher: str | None = option(None, "the fine-tuned classification checkpoint to distill", "distillation",
                                 metavar="CKPT", required=True)
    layers: int = option(3, "transformer layers of the student (taken from the teacher's, evenly spaced)", "distillation")
    unlabeled_file: str | None = option(None, "more rows without labels, taught by the teacher's soft labels alone",
                                        "distillation", flag="--unlabeled", metavar="FILE")
    augment: int = option(0, "masked copies of each training row (a word in ten masked), taught by the soft labels alone",
                          "distillation", metavar="N")
    temperature: float = option(2.0, "softmax temperature of the teacher's and the student's soft labels", "distillation")
    alpha: float = option(0.5, "weight of the soft-label loss (1 - alpha weighs the hard labels)", "distillation")
    hidden_weight: float = option(0.0, "weight of a loss pulling the first token's hidden state after each student "
                                  "layer but the last toward the teacher layer it came from (patient distillation)",
                                  "distillation", metavar="BETA")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.teacher:
            raise ConfigError("teacher: give the fine-tuned checkpoint to distill")
        if self.layers < 1:
            raise ConfigError(f"layers must be at least 1, got {self.layers}")
        if self.augment < 0:
            raise ConfigError(f"augment must be 0 or more, got {self.augment}")
        if self.temperature <= 0 or not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"temperature must be positive and alpha in [0, 1], got {self.temperature}, {self.alpha}")
        if self.hidden_weight < 0:
            raise ConfigError(f"hidden_weight must be 0 or more, got {self.hidden_weight}")


# Options of `train` a distillation does not use: the student's base model, task and selection recipe are fixed.
NOT_FOR_DISTILLATION = ("model", "task", "search", "search_space", "refit", "average_checkpoints", "doc_stride",
                        "max_answer_length", "max_target_length", "num_beams", "no_repeat_ngram_size", "swap_pairs",
                        "class_weights")


TEACHER_COLUMNS = ("teacher_logits", "teacher_hidden")  # what `Run.features` adds for the loss, not model inputs
MASK_RATE = 0.1  # the share of words `augment` masks in each copy (Tang et al. 2019 use 0.1)


def masked_copies(texts: Sequence[str], copies: int, mask: str, seed: int, rate: float = MASK_RATE) -> list[list[str]]:
    """`copies` versions of each text, each word replaced by `mask` with probability `rate` (at least one word masked
    where a text has two or more), drawn from `seed`: `result[c][i]` is copy c of `texts[i]`."""
    import random

    draw = random.Random(seed)
    result = []
    for _ in range(copies):
        version = []
        for text in texts:
            words = text.split()
            masked = [draw.random() < rate for _ in words]
            if len(words) > 1 and not any(masked):
                masked[draw.randrange(len(words))] = True
            version.append(" ".join(mask if m else w for w, m in zip(words, masked)))
        result.append(version)
    return result


def kept_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Which of the teacher's layers the student starts from: evenly spaced, the first and the last included."""
    if student_layers > teacher_layers:
        raise TuneshipError(f"the teacher has {teacher_layers} layers; a student cannot have {student_layers}")
    if student_layers == 1:
        return [teacher_layers - 1]
    return sorted({int(round(i * (teacher_layers - 1) / (student_layers - 1))) for i in range(student_layers)})


def student_from(teacher_model, layers: int):
    """A copy of `teacher_model` (any `*ForSequenceClassification` with `...layer.N...` weights) with `layers` of its
    transformer layers, and everything else (embeddings, pooler, head) copied."""
    config = copy.deepcopy(teacher_model.config)
    keep = kept_layers(config.num_hidden_layers, layers)
    config.num_hidden_layers = layers
    student = type(teacher_model)._from_config(config)  # the teacher's own class: its head, pooled as it pools
    renamed = {old: new for new, old in enumerate(keep)}
    state = {}
    for name, value in teacher_model.state_dict().items():
        found = re.search(r"\.layer\.(\d+)\.", name)
        if found is None:
            state[name] = value
        elif int(found.group(1)) in renamed:
            state[name.replace(f".layer.{found.group(1)}.", f".layer.{renamed[int(found.group(1))]}.", 1)] = value
    missing, unexpected = student.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TuneshipError(f"the student could not take the teacher's weights (missing {missing[:3]}, unexpected "
                            f"{unexpected[:3]}); distillation supports BERT-style layer stacks")
    return student, keep


def _trainer_class():
    import torch
    import transformers

    class DistillationTrainer(transformers.Trainer):
        """A Trainer whose loss mixes the teacher's soft labels (KL at a temperature) with the hard labels, and with
        `hidden_weight` times the distance of the student's normalized first-token states from the teacher's."""

        def __init__(self, *args, temperature: float, alpha: float, hidden_weight: float = 0.0, **kwargs):
            super().__init__(*args, **kwargs)
            self.temperature, self.alpha, self.hidden_weight = temperature, alpha, hidden_weight

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            teacher, labels, hidden = inputs.get("teacher_logits"), inputs.get("labels"), inputs.get("teacher_hidden")
            outputs = model(**{k: v for k, v in inputs.items() if k != "labels" and k not in TEACHER_COLUMNS},
                            output_hidden_states=hidden is not None)
            logits = outputs.logits
            hard = torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100) \
                if labels is not None and bool((labels != -100).any()) else logits.new_zeros(())
            if teacher is None:
                loss = hard
            else:
                t = self.temperature
                soft = torch.nn.functional.kl_div(torch.log_softmax(logits / t, dim=-1), torch.softmax(teacher / t, dim=-1),
                                                  reduction="batchmean") * t * t
                loss = self.alpha * soft + (1 - self.alpha) * hard
            if hidden is not None:
                student = torch.stack([outputs.hidden_states[i + 1][:, 0] for i in range(hidden.shape[1])], 1)
                normalize = torch.nn.functional.normalize
                loss = loss + self.hidden_weight * (normalize(student, dim=-1) - normalize(hidden, dim=-1)).pow(2).sum(
                    (1, 2)).mean()
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer


def distill(config: DistillConfig, callbacks: Sequence = ()):
    """Distill `config.teacher` into a student with `config.layers` layers, trained like `train` trains a classifier
    (the same skeleton, data reading, selection rows, epochs and checkpoint folder), and return its `TrainResult`."""
    require("transformers", "train")
    from ..checkpoint import checkpoint_task

    try:
        tasks.get(checkpoint_task(config.teacher)).check("distill")
    except TuneshipError as error:
        raise TuneshipError(f"{config.teacher}: {error}") from None
    return Run(config, callbacks).run()


class Run(ClassificationRun):
    """A student taught by the teacher's soft labels and the hard labels (the skeleton is `TrainingRun.run`): the
    teacher's data, columns and length unless given; no search, checkpoint averaging or refit."""

    config: DistillConfig
    keep = "best"  # the student recipes of docs/results.md were measured keeping the best epoch

    def __init__(self, config: DistillConfig, callbacks: Sequence = ()):
        from .classification import TorchClassifier

        self.teacher = TorchClassifier.from_checkpoint(config.teacher)
        saved = _teacher_config(config.teacher)
        if not (config.train_file or saved.get("train_file")):
            raise TuneshipError("no training data: pass --train FILE (the teacher's train_config.json names none)")
        columns = self.teacher.columns
        super().__init__(dataclasses.replace(  # a new config: the caller's is left as it is
            config, train_file=config.train_file or saved.get("train_file"), text_column=columns.text,
            text_pair_column=columns.text_pair, label_column=columns.label,
            max_length=self.teacher.settings["max_length"], positive_label=self.teacher.settings.get("positive_label"),
            model=config.teacher, search=0, refit="no", average_checkpoints=1, class_weights="none",
            swap_pairs=False), callbacks)
        self.unlabeled = None  # the unlabeled and the masked rows, taught by the soft labels alone
        self.kept: list[int] = []

    def read_data(self):
        import datasets

        data = super().read_data()
        if data.label_names != self.teacher.label_names:
            raise TuneshipError(f"{self.config.train_file}: labels {data.label_names} differ from the teacher's "
                                f"{self.teacher.label_names}")
        if self.config.unlabeled_file:
            from ..data.classification import load_texts

            texts, pairs = load_texts(self.config.unlabeled_file, self.teacher.columns)
            extra = {"text": texts, **({"text_pair": pairs} if pairs is not None else {}), "label": [-100] * len(texts)}
            self.unlabeled = datasets.Dataset.from_dict(extra).cast(data.train.features)
            logger.info(f"{len(texts)} unlabeled rows from {self.config.unlabeled_file}")
        if self.config.augment:
            masked = self.masked(data)
            self.unlabeled = masked if self.unlabeled is None else datasets.concatenate_datasets([self.unlabeled, masked])
            logger.info(f"{len(masked)} masked copies of the {len(data.train)} training rows")
        return data

    def masked(self, data):
        """`augment` masked copies of every training row (both texts of a pair masked), unlabeled."""
        import datasets

        train, copies, seed = data.train, self.config.augment, self.config.seed
        mask = self.teacher.tokenizer.mask_token or self.teacher.tokenizer.unk_token
        extra = {"text": [t for c in masked_copies(train["text"], copies, mask, seed) for t in c]}
        if data.columns.is_pair:
            extra["text_pair"] = [t for c in masked_copies(train["text_pair"], copies, mask, seed + 1) for t in c]
        extra["label"] = [-100] * len(extra["text"])
        return datasets.Dataset.from_dict(extra).cast(train.features)

    def build_model(self):
        student, self.kept = student_from(self.teacher.model, self.config.layers)
        student.config.tuneship = task_settings(self.config, self.data)
        logger.info(f"student: layers {self.kept} of the teacher's {self.teacher.model.config.num_hidden_layers}")
        return student, self.teacher.tokenizer

    def taught_rows(self):
        import datasets

        train = self.data.train
        return train if self.unlabeled is None else datasets.concatenate_datasets([train, self.unlabeled])

    def epoch_rows(self) -> int:
        return len(self.taught_rows())

    def features(self, model, tokenizer):
        rows, layers = self.taught_rows(), self.hidden_layers()
        logger.info(f"teacher's soft labels{' and hidden states' if layers else ''} for {len(rows)} rows")
        logits, hidden, _ = self.teacher.outputs(rows["text"], rows["text_pair"] if self.data.columns.is_pair else None,
                                                 batch_size=64, hidden_layers=layers)
        for name, values in zip(TEACHER_COLUMNS, (logits, hidden)):
            if values is not None:
                rows = rows.add_column(name, values.tolist())
        return (self.tokenized(rows, tokenizer, "training data"),
                self.tokenized(self.data.validation, tokenizer, "validation data"))

    def hidden_layers(self) -> list[int]:
        """The teacher layers whose hidden states the student learns (`hidden_weight`): those it kept but the last,
        whose output the soft labels already teach."""
        if not self.config.hidden_weight:
            return []
        if len(self.kept) < 2:
            logger.warning("hidden_weight: a 1-layer student has no layer before its last; only the labels teach it")
        return self.kept[:-1]

    def trainer_type(self):
        return _trainer_class()

    def trainer_options(self) -> dict:
        return {"temperature": self.config.temperature, "alpha": self.config.alpha,
                "hidden_weight": self.config.hidden_weight}

    def argument_options(self) -> dict:
        return {"remove_unused_columns": False}  # the teacher's columns reach the loss

    def score(self, trainer, validation_set) -> dict:
        from ..metrics.classification import classification_metrics

        metrics, data, teacher = super().score(trainer, validation_set), self.data, self.teacher
        logits, _ = teacher.logits(data.validation["text"], data.validation["text_pair"] if data.columns.is_pair else None)
        scores = classification_metrics(data.validation["label"], logits.argmax(-1), data.label_names,
                                        data.positive_label_id)
        metrics["distillation"] = {
            "teacher": Path(self.config.teacher).resolve().name, "teacher_layers": teacher.model.config.num_hidden_layers,
            "layers_kept": self.kept, "teacher_accuracy": scores["accuracy"], "teacher_f1": scores["f1"],
            "temperature": self.config.temperature, "alpha": self.config.alpha, "hidden_weight": self.config.hidden_weight}
        return metrics

    def save(self, folder: Path, trainer, metrics: dict) -> None:
        from .classification import save_classifier

        d = metrics["distillation"]
        section = "\n".join([
            f"Distilled from `{d['teacher']}` ({d['teacher_layers']} layers) into {len(d['layers_kept'])} layers (the "
            f"teacher's layers {', '.join(map(str, d['layers_kept']))}), on the teacher's soft labels at temperature "
            f"{d['temperature']:g} (weight {d['alpha']:g}) and the hard labels"
            + (f", and the teacher's hidden states (weight {d['hidden_weight']:g})" if d.get("hidden_weight") else "")
            + ".", "",
            "| model | accuracy | F1 |", "| --- | --- | --- |",
            f"| teacher `{d['teacher']}` | {d['teacher_accuracy']:.4f} | {d['teacher_f1']:.4f} |",
            f"| this student | {metrics['accuracy']:.4f} | {metrics['f1']:.4f} |", "",
            f"Both scored on {self.data.validation_source}."])
        save_classifier(folder, trainer, self.config, self.data, metrics, sections={"Distillation": section})

    def next_steps(self) -> str:
        return NEXT_STEPS


def _teacher_config(teacher: str) -> dict:
    import json

    path = Path(teacher) / "train_config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
