"""Text classification (one text or a pair): the training data, its `Run`, and `TorchClassifier` for checkpoints.

Whatever the user's column names, the datasets handed to the Trainer have `text`, an optional `text_pair`,
and `label` (an integer id). Every data problem is reported before training starts, naming the file, the
row (1-based, header not counted) and the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.classification import (
    clean_rows, label_ids, label_names_from, positive_label_id, roles, softmax, stratified_split, texts_of,
    to_predictions, warn_numeric_texts,
)
from ..data.columns import ColumnMapping, detect_columns, label_text
from ..data.records import Record, column_names, read_records
from ..errors import ConfigError, DataError, TuneshipError
from ..log import get_logger
from ..metrics.classification import classification_metrics, query_ranking, scalar_metrics
from ..tasks import CLASSIFICATION
from .config import TrainConfig
from .models import load_base_model, load_checkpoint, own_code, resolve_model
from .training import TrainingRun

logger = get_logger(__name__)
TRUNCATION = "longest_first"  # cuts the longer text of a pair first, token by token
CALIBRATION_ROWS = 256  # training rows saved with the checkpoint for int8 calibration
RARE_CLASS_SHARE = 0.2  # below this share of the training rows, `class_weights="auto"` weights the loss
DEFAULT_SETTINGS = {
    "task": CLASSIFICATION, "text_column": "text", "text_pair_column": None, "label_column": "label",
    "truncation": TRUNCATION, "positive_label": None,
}


# --------------------------------------------------------------------------- data


@dataclass
class ClassificationData:
    """Training and validation sets in canonical columns, with their label mapping."""

    train: "datasets.Dataset"  # noqa: F821 - imported lazily
    validation: "datasets.Dataset"  # noqa: F821
    columns: ColumnMapping
    label_names: list[str]
    positive_label_id: int | None
    train_source: str
    validation_source: str
    validation_rows: list[dict]  # the validation set in the user's columns, saved with the model
    calibration_rows: list[dict]  # a seeded sample of training rows, saved for export's calibration

    @property
    def majority_baseline_accuracy(self) -> float:
        counts = np.bincount(self.validation["label"], minlength=len(self.label_names))
        return float(counts.max() / counts.sum())


def read_table(source: str, split: str = "train") -> list[Record]:
    """The records of a data file or Hub dataset, refusing a file without data rows."""
    records = read_records(source, split)
    if not records:
        raise DataError(f"{source}: the file has a header but no data rows")
    return records


def to_dataset(records: list[Record], columns: ColumnMapping, labels: Sequence[int]):
    """A `datasets.Dataset` in canonical columns: text, optional text_pair, label."""
    import datasets

    texts, pairs = texts_of(records, columns)
    data = {"text": texts, **({"text_pair": pairs} if pairs is not None else {}), "label": list(labels)}
    return datasets.Dataset.from_dict(data)


def _rows(records: list[Record], columns: ColumnMapping) -> list[dict]:
    return [{column: record.values[column] for column in roles(columns)} for record in records]


def load_classification_data(
    train_source: str,
    validation_source: str | None = None,
    *,
    validation_split: float = 0.2,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str | None = None,
    drop_invalid: bool = False,
    positive_label: str | None = None,
    seed: int = 42,
) -> ClassificationData:
    """Read, check and split the data of a classification run. Raises `DataError` on bad input."""
    train_records = read_table(train_source, "train")
    columns = detect_columns(column_names(train_records), str(train_source), text_column, text_pair_column, label_column)
    train_records = clean_rows(train_records, columns, str(train_source), drop_invalid)
    warn_numeric_texts(train_records, columns, str(train_source))
    names = label_names_from([label_text(r.values[columns.label]) for r in train_records])
    if len(names) < 2:
        raise DataError(
            f"{train_source}: column {columns.label!r} has a single class ({names[0]!r}); a classifier needs at least two"
        )
    label2id = {name: i for i, name in enumerate(names)}
    train_labels = label_ids(train_records, columns.label, label2id, str(train_source))

    if validation_source is not None:
        validation_records = read_table(validation_source, "validation")
        detect_columns(column_names(validation_records), str(validation_source), columns.text, columns.text_pair,
                       columns.label)
        validation_records = clean_rows(validation_records, columns, str(validation_source), drop_invalid)
        validation_labels = label_ids(validation_records, columns.label, label2id, str(validation_source))
        if len(set(validation_labels)) < 2:
            raise DataError(f"{validation_source}: every row has label {names[validation_labels[0]]!r}; the validation "
                            "rows pick the epoch kept, so they need at least two classes")
        validation_name = str(validation_source)
    else:
        train_rows, held_out = stratified_split(train_labels, validation_split, seed)
        validation_records = [train_records[i] for i in held_out]
        validation_labels = [train_labels[i] for i in held_out]
        train_records = [train_records[i] for i in train_rows]
        train_labels = [train_labels[i] for i in train_rows]
        validation_name = f"{validation_split:.0%} stratified split of {train_source} (seed {seed})"

    sample = np.random.default_rng(seed).permutation(len(train_records))[:CALIBRATION_ROWS]
    return ClassificationData(
        train=to_dataset(train_records, columns, train_labels),
        validation=to_dataset(validation_records, columns, validation_labels),
        columns=columns,
        label_names=names,
        positive_label_id=positive_label_id(names, positive_label),
        train_source=str(train_source),
        validation_source=validation_name,
        validation_rows=_rows(validation_records, columns),
        calibration_rows=_rows([train_records[i] for i in sorted(sample)], columns),
    )


# --------------------------------------------------------------------------- the loss


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


def weighted_loss(weights: list[float]):
    """A `compute_loss_func` for `transformers.Trainer`: cross-entropy with class weights."""
    import torch

    def loss(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = torch.tensor(weights, dtype=logits.dtype, device=logits.device)
        return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), weight=weight)

    return loss


def best_metric(config: TrainConfig, num_labels: int) -> str:
    if config.metric_for_best_model == "auto":
        return "f1" if num_labels == 2 else "accuracy"
    return config.metric_for_best_model


# --------------------------------------------------------------------------- the checkpoint


class TorchClassifier:
    """A checkpoint folder loaded with transformers, predicting with the settings it was trained with.

    Example:
        >>> classifier = TorchClassifier.from_checkpoint("runs/relevance-minilm")  # doctest: +SKIP
        >>> classifier.predict(["Article text"], ["A comment"])[0]["label"]  # doctest: +SKIP
        'relevant'
    """

    task = CLASSIFICATION

    def __init__(self, model, tokenizer, settings: dict):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "TorchClassifier":
        model, tokenizer = load_checkpoint(path, "AutoModelForSequenceClassification")
        settings = {**DEFAULT_SETTINGS, "max_length": min(tokenizer.model_max_length, 512)}
        settings.update(getattr(model.config, "tuneship", None) or {})
        return cls(model, tokenizer, settings)

    @property
    def columns(self) -> ColumnMapping:
        s = self.settings
        return ColumnMapping(text=s["text_column"], text_pair=s["text_pair_column"], label=s["label_column"])

    @property
    def positive_label_id(self) -> int | None:
        name = self.settings.get("positive_label")
        return self.label_names.index(name) if name in self.label_names else None

    def encode(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, return_tensors: str = "pt"):
        """Training's tokenization: truncated to the checkpoint's max length, padded to the longest input."""
        return self.tokenizer(list(texts), None if text_pairs is None else list(text_pairs),
                              truncation=self.settings["truncation"], max_length=self.settings["max_length"],
                              padding=True, return_tensors=return_tensors)

    def logits(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32
    ) -> tuple[np.ndarray, list[bool]]:
        """Raw logits (inputs x labels) in input order, and which inputs were truncated."""
        logits, _, truncated = self.outputs(texts, text_pairs, batch_size)
        return logits, truncated

    def outputs(
        self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32,
        hidden_layers: Sequence[int] = ()
    ) -> tuple[np.ndarray, np.ndarray | None, list[bool]]:
        """Raw logits (inputs x labels), the first token's hidden state after each of `hidden_layers` (inputs x
        layers x hidden; None without layers) and which inputs were truncated, in input order."""
        import torch

        self.columns.check_inputs(texts, text_pairs)
        logits, hidden, truncated = [], [], []
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            pairs = list(text_pairs[start : start + batch_size]) if text_pairs is not None else None
            encoded = self.encode(batch, pairs)
            with torch.inference_mode():
                found = self.model(**encoded, output_hidden_states=bool(hidden_layers))
            logits.append(found.logits.float().numpy())
            if hidden_layers:  # hidden_states[0] is the embeddings' output, [i + 1] layer i's
                hidden.append(torch.stack([found.hidden_states[i + 1][:, 0] for i in hidden_layers], 1).float().numpy())
            truncated += [bool(encoding.overflowing) for encoding in encoded.encodings]
        width = len(self.label_names)
        return ((np.concatenate(logits) if logits else np.zeros((0, width), dtype=np.float32)),
                np.concatenate(hidden) if hidden else None, truncated)

    def predict(self, texts: Sequence[str], text_pairs: Sequence[str] | None = None, batch_size: int = 32) -> list[dict]:
        """Label, score, all class probabilities and whether the input was truncated, per input."""
        logits, truncated = self.logits(texts, text_pairs, batch_size)
        return to_predictions(softmax(logits), self.label_names, truncated)


from_checkpoint = TorchClassifier.from_checkpoint


def _card(trainer, config: TrainConfig, data: ClassificationData, metrics: dict):
    from .saving import card_data

    columns = data.columns
    pair = columns.is_pair
    headline = {k: metrics[k] for k in ("accuracy", "precision", "recall", "f1", "map", "mrr") if k in metrics}
    if metrics.get("average") == "macro":
        headline["f1_weighted"] = metrics["f1_weighted"]
    per_class = "\n".join(f"| {label} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {row['support']} |"
                          for label, row in metrics["per_class"].items())
    inputs = f"pairs of texts ({columns.text}, {columns.text_pair})" if pair else "texts"
    call = (f'classifier({{"text": "...{columns.text}...", "text_pair": "...{columns.text_pair}..."}})' if pair
            else 'classifier("...")')
    card = card_data(
        trainer, config,
        task_description="A text-pair classification model" if pair else "A text classification model",
        summary=f"It predicts one of {len(data.label_names)} labels: {', '.join(map(repr, data.label_names))}.",
        train_source=data.train_source, validation_source=data.validation_source, num_train=len(data.train),
        num_validation=len(data.validation), unit="rows", headline_metrics=headline,
        evaluation_extra="\n".join([
            f"Majority-class baseline accuracy (always the most frequent label): "
            f"{metrics['majority_baseline_accuracy']:.4f}.", "", "Per class:", "",
            "| label | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |", per_class, "",
            "![confusion matrix](confusion_matrix.png)", "![training curve](training_curve.png)"]),
        intended_use=f"Classifying {inputs} into {', '.join(data.label_names)}, for data like the training data. "
                     "Export it to quantized ONNX with `tuneship export` to serve it on CPUs.",
        usage="\n".join(["```python", "from transformers import pipeline", "",
                         f'classifier = pipeline("text-classification", model="{Path(config.output_dir).name}"'
                         f'{", trust_remote_code=True" if own_code(trainer.model) else ""})', call,
                         "```", "", f"or, with tuneship: `tuneship predict --model {Path(config.output_dir).name} "
                         f'--text "..."{" --text-pair " + chr(34) + "..." + chr(34) if pair else ""}`.']),
        preprocessing=[
            f"Columns: text `{columns.text}`" + (f", text pair `{columns.text_pair}`" if pair else "")
            + f", label `{columns.label}`.",
            f"Tokenization: the base model's tokenizer, at most {config.max_length} tokens, truncation `{TRUNCATION}` "
            "(a pair is cut from its longer text first), dynamic padding per batch. These settings are stored in "
            "`config.json` under `tuneship`, so inference reproduces them.",
        ],
        limitations=["The model only knows the labels above and the kind of text it was trained on; inputs far from "
                     "that data get confident but unreliable predictions."],
        tags=["sentence-pair-classification" if pair else "single-text"],
    )
    card.hyperparameters["class_weights"] = config.class_weights
    return card


def save_classifier(folder: Path, trainer, config: TrainConfig, data: ClassificationData, metrics: dict,
                    search: dict | None = None, sections: dict[str, str] | None = None) -> None:
    """The classifier's checkpoint folder: what every task saves, the calibration rows, the confusion matrix, the
    search's results, and the card (with any extra `sections`)."""
    from ..checkpoint import CALIBRATION_FILE
    from .plots import plot_confusion_matrix
    from .saving import save_checkpoint, write_jsonl
    from .search import write_search

    def extra(folder: Path) -> None:
        write_jsonl(folder / CALIBRATION_FILE, data.calibration_rows)
        plot_confusion_matrix(metrics["confusion_matrix"]["matrix"], data.label_names, folder / "confusion_matrix.png")
        if search:
            write_search(folder, search)

    card = _card(trainer, config, data, metrics)
    card.sections.update(sections or {})
    if search:
        card.sections["Hyperparameter search"] = "\n".join([
            f"{len(search['trials'])} Optuna trials (`tuneship train --search`), each trained on the training rows and "
            f"scored on the selection rows' `{search['metric']}`; trial {search['best_trial']} was best "
            f"({search['best_value']:.4f}) and its settings were used:", "",
            "| option | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in search["best"].items()), "",
            "Every trial is in `search.json`; `search.png` plots them."])
    save_checkpoint(folder, trainer, config, metrics, data.validation_rows, card, extra)


# --------------------------------------------------------------------------- training


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


def head_class(config: TrainConfig) -> str | type:
    """The model class of `config.pooling`: transformers' own (cls), or the mean-pooling BERT classifier (mean), whose
    `save_pretrained` copies its file into the checkpoint."""
    if config.pooling == "cls":
        return "AutoModelForSequenceClassification"
    import transformers

    from .mean_pooling import BertMeanPoolingForSequenceClassification

    try:
        model_type = transformers.AutoConfig.from_pretrained(resolve_model(config.model)).model_type
    except (OSError, ValueError) as error:
        raise TuneshipError(f"could not load the base model {config.model!r}: {error}") from None
    if model_type != "bert":
        raise ConfigError(f"pooling mean (--pooling) needs a BERT base model; {config.model!r} is {model_type!r}: "
                          "use --pooling cls")
    return BertMeanPoolingForSequenceClassification


def swapped(dataset):
    """`dataset` and every pair in it with its two texts swapped (`swap_pairs`: for pairs whose order does not matter)."""
    import datasets

    flipped = dataset.rename_columns({"text": "text_pair", "text_pair": "text"}).select_columns(dataset.column_names)
    return datasets.concatenate_datasets([dataset, flipped])


class Run(TrainingRun):
    """Classify `config.train_file`'s texts (or pairs) into its labels (the skeleton is `TrainingRun.run`).

    The epochs are scored on the selection rows (`--validation`, else a split of `--train`); the last epoch is
    kept (`keep="last"`, the default: the plain recipe measured better, docs/results.md), or with `keep="best"` the
    best one, or the average of the best `average_checkpoints` when that scores as well; with `refit`, a fresh model
    is then trained on every training row for the epoch count trained (or chosen).
    """

    keep = "last"

    data: ClassificationData

    def read_data(self) -> ClassificationData:
        config = self.config
        data = load_classification_data(
            config.train_file, config.validation_file, validation_split=config.validation_split,
            text_column=config.text_column, text_pair_column=config.text_pair_column, label_column=config.label_column,
            drop_invalid=config.drop_invalid, positive_label=config.positive_label, seed=config.seed,
        )
        log_data(data)
        if config.swap_pairs and not data.columns.is_pair:
            raise DataError("--swap-pairs needs pairs of texts; this data has one text per row")
        weights = self.class_weights(data)
        if weights is not None:
            logger.info("class weights: " + ", ".join(f"{name} {w:.2f}" for name, w in zip(data.label_names, weights)))
        return data

    def build_model(self):
        """The base model with a fresh classification head (seeded) for the data's labels, and its tokenizer."""
        names = self.data.label_names
        model, tokenizer = load_base_model(
            self.config, head_class(self.config), num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={name: i for i, name in enumerate(names)}, problem_type="single_label_classification",
        )
        model.config.tuneship = task_settings(self.config, self.data)
        tokenizer.model_max_length = self.config.max_length
        return model, tokenizer

    def epoch_rows(self) -> int:
        return len(self.data.train)

    def rows(self) -> int:
        return len(self.data.train) + len(self.data.validation)

    def tokenized(self, dataset, tokenizer, description: str):
        """`dataset`'s texts tokenized as inference will tokenize them (`TRUNCATION`, `max_length`)."""
        def tokenize(batch):
            return tokenizer(batch["text"], batch.get("text_pair"), truncation=TRUNCATION,
                             max_length=self.config.max_length)

        remove = [c for c in ("text", "text_pair") if c in dataset.column_names]
        return dataset.map(tokenize, batched=True, remove_columns=remove, desc=f"tokenizing {description}")

    def features(self, model, tokenizer):
        rows = swapped(self.data.train) if self.config.swap_pairs else self.data.train
        return (self.tokenized(rows, tokenizer, "training data"),
                self.tokenized(self.data.validation, tokenizer, "validation data"))

    def best_metric(self) -> str:
        return best_metric(self.config, len(self.data.label_names))

    def compute_metrics(self, tokenizer):
        data = self.data

        def compute_metrics(prediction):
            predicted = np.argmax(prediction.predictions, axis=-1)
            return scalar_metrics(classification_metrics(prediction.label_ids, predicted, data.label_names,
                                                         data.positive_label_id))

        return compute_metrics

    def class_weights(self, data: ClassificationData) -> list[float] | None:
        return class_weights(data.train["label"], len(data.label_names), self.config.class_weights)

    def trainer_options(self) -> dict:
        weights = self.class_weights(self.data)
        return {"compute_loss_func": None if weights is None else weighted_loss(weights)}

    def score(self, trainer, validation_set) -> dict:
        data = self.data
        logits = trainer.predict(validation_set).predictions
        metrics = classification_metrics(data.validation["label"], np.argmax(logits, axis=-1), data.label_names,
                                         data.positive_label_id)
        queries = data.validation["text"] if data.columns.is_pair else None
        metrics.update(query_ranking(queries, data.validation["label"], softmax(logits), data.positive_label_id))
        metrics["majority_baseline_accuracy"] = data.majority_baseline_accuracy
        return metrics

    def refit_set(self, tokenizer, train_set, validation_set):
        import datasets

        rows = swapped(self.data.validation) if self.config.swap_pairs else self.data.validation
        return datasets.concatenate_datasets([train_set, self.tokenized(rows, tokenizer, "validation data (refit)")])

    def save(self, folder: Path, trainer, metrics: dict) -> None:
        save_classifier(folder, trainer, self.config, self.data, metrics, self.search)

    def next_steps(self) -> str:
        pair = ' --text-pair "..."' if self.data.columns.is_pair else ""
        return f'  tuneship evaluate --model {{output}} --data FILE\n  tuneship predict --model {{output}} --text "..."{pair}'


def log_data(data: ClassificationData) -> None:
    logger.info(f"columns: {data.columns.describe()}")
    logger.info(f"labels: {', '.join(data.label_names)}; {len(data.train)} training and {len(data.validation)} "
                "validation rows")
    logger.info(f"validation: {data.validation_source}; majority-class accuracy {data.majority_baseline_accuracy:.3f}")
