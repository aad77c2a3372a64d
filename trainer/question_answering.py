"""Extractive question answering: fine-tune with `transformers.Trainer` on SQuAD-style data, answer, evaluate.

Long contexts are split into overlapping windows and answers mapped to tokens by `tuneship.spans`,
the same code the ONNX path uses, so training and serving see the same windows. Model selection
uses SQuAD F1 on the validation questions, after the standard span post-processing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.question_answering import QAExample, read_qa_examples
from ..log import get_logger
from ..metrics.question_answering import squad_score
from ..spans import SpanAnswerer, answer_positions, answers_from_logits, windows_of
from ..tasks import QUESTION_ANSWERING
from .models import load_base_model, load_checkpoint
from .training import TrainingRun

logger = get_logger(__name__)
N_BEST = 20  # span candidates per window in the post-processing, saved as the bundle's `n_best`


def window_tokenizer(tokenizer):
    """A `tokenizers.Tokenizer` copy of a transformers fast tokenizer (windows change its truncation settings)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())


def features(examples: Sequence[QAExample], windows: Sequence, owners: Sequence[int]) -> dict[str, list]:
    """Model inputs per window, with the first gold answer's token positions ((0, 0) where it is not in the window)."""
    columns: dict[str, list] = {name: [] for name in ("input_ids", "token_type_ids", "attention_mask",
                                                     "start_positions", "end_positions")}
    for window, owner in zip(windows, owners):
        columns["input_ids"].append(window.ids)
        columns["token_type_ids"].append(window.type_ids)
        columns["attention_mask"].append(window.attention_mask)
        text, start = examples[owner].answers[0]
        first, last = answer_positions(window, start, start + len(text))
        columns["start_positions"].append(first)
        columns["end_positions"].append(last)
    return columns


class TorchQuestionAnswerer(SpanAnswerer):
    """A QA checkpoint in PyTorch, answering with the settings it was trained with.

    Example:
        >>> qa = TorchQuestionAnswerer.from_checkpoint("runs/squad")  # doctest: +SKIP
        >>> qa.answer(["When was it built?"], ["The bridge was built in 1932."])[0].text  # doctest: +SKIP
        '1932'
    """

    task = QUESTION_ANSWERING

    def __init__(self, model, tokenizer, settings: dict):
        self.model = model.eval()
        self.tokenizer = window_tokenizer(tokenizer)
        self.pad_id = tokenizer.pad_token_id or 0
        self.settings = settings

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "TorchQuestionAnswerer":
        model, tokenizer = load_checkpoint(path, "AutoModelForQuestionAnswering", QUESTION_ANSWERING)
        return cls(model, tokenizer, model.config.tuneship)

    def window_logits(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            output = self.model(**{name: torch.from_numpy(value) for name, value in arrays.items()})
        return output.start_logits.float().numpy(), output.end_logits.float().numpy()


def _split(examples: list[QAExample], fraction: float, seed: int) -> tuple[list[QAExample], list[QAExample]]:
    """Hold out whole contexts (questions on one paragraph stay together), seeded."""
    contexts = sorted({e.context for e in examples})
    random.Random(seed).shuffle(contexts)
    held = set(contexts[: max(1, round(fraction * len(contexts)))])
    return [e for e in examples if e.context not in held], [e for e in examples if e.context in held]


from_checkpoint = TorchQuestionAnswerer.from_checkpoint


@dataclass
class QAData:
    """The training and selection questions, their windows, and where they came from."""

    train: list[QAExample]
    validation: list[QAExample]
    validation_source: str
    train_windows: list = field(default_factory=list)
    train_owners: list[int] = field(default_factory=list)
    validation_windows: list = field(default_factory=list)
    validation_owners: list[int] = field(default_factory=list)


class Run(TrainingRun):
    """Extractive QA on `config.train_file` (SQuAD JSON, CSV or JSONL), selected on SQuAD F1 (the skeleton is
    `TrainingRun.run`)."""

    data: QAData

    def read_data(self) -> QAData:
        config = self.config
        train = read_qa_examples(config.train_file)
        if config.validation_file:
            validation = read_qa_examples(config.validation_file, split="validation")
            source = config.validation_file
        else:
            train, validation = _split(train, config.validation_split, config.seed)
            source = f"a {config.validation_split:.0%} split of {config.train_file} (whole contexts)"
        logger.info(f"question answering: {len(train)} training and {len(validation)} validation questions")
        return QAData(train, validation, source)

    def settings(self) -> dict:
        c = self.config
        return {"task": QUESTION_ANSWERING, "max_length": c.max_length, "doc_stride": c.doc_stride,
                "max_answer_length": c.max_answer_length, "n_best": N_BEST}

    def build_model(self):
        model, tokenizer = load_base_model(self.config, "AutoModelForQuestionAnswering")
        model.config.tuneship = self.settings()
        return model, tokenizer

    def features(self, model, tokenizer):
        import datasets

        data, c = self.data, self.config
        windows = window_tokenizer(tokenizer)
        data.train_windows, data.train_owners = windows_of(data.train, windows, c.max_length, c.doc_stride)
        data.validation_windows, data.validation_owners = windows_of(data.validation, windows, c.max_length, c.doc_stride)
        logger.info(f"windows: {len(data.train_windows)} training, {len(data.validation_windows)} validation")
        return (datasets.Dataset.from_dict(features(data.train, data.train_windows, data.train_owners)),
                datasets.Dataset.from_dict(features(data.validation, data.validation_windows, data.validation_owners)))

    def best_metric(self) -> str:
        return "f1"

    def compute_metrics(self, tokenizer):
        data, c = self.data, self.config

        def compute_metrics(prediction):
            starts, ends = prediction.predictions
            answers = answers_from_logits(data.validation, data.validation_windows, data.validation_owners,
                                          np.asarray(starts), np.asarray(ends), N_BEST, c.max_answer_length)
            result = squad_score(data.validation, answers)
            return {"exact_match": result["exact_match"], "f1": result["f1"]}

        return compute_metrics

    def score(self, trainer, validation_set) -> dict:
        return {**super().score(trainer, validation_set), "num_examples": len(self.data.validation)}

    def save(self, folder: Path, trainer, metrics: dict) -> None:
        from .saving import card_data, save_checkpoint

        config, data = self.config, self.data
        rows = [{"id": e.id, "question": e.question, "context": e.context,
                 "answers": {"text": [t for t, _ in e.answers], "answer_start": [s for _, s in e.answers]}}
                for e in data.validation]
        name = Path(config.output_dir).name
        card = card_data(
            trainer, config, task_description="An extractive question-answering model",
            summary="Given a question and a context, it answers with a span of the context.",
            train_source=config.train_file, validation_source=data.validation_source, num_train=len(data.train),
            num_validation=len(data.validation), unit="questions",
            headline_metrics={"exact_match": metrics["exact_match"], "f1": metrics["f1"]},
            intended_use="Answering questions whose answer is written in a given context, for text like the training "
                         "data. Export it to ONNX with `tuneship export` to serve it on CPUs.",
            usage="\n".join(["```python", "from transformers import pipeline", "",
                             f'qa = pipeline("question-answering", model="{name}")',
                             'qa(question="...", context="...")', "```", "",
                             f'or, with tuneship: `tuneship predict --model {name} --text "QUESTION" --text-pair '
                             '"CONTEXT"`.']),
            preprocessing=[f"Windows of {config.max_length} tokens with a stride of {config.doc_stride}: a long "
                           "context is read in overlapping windows, the best span over all windows wins.",
                           f"Answers of at most {config.max_answer_length} tokens, scored with SQuAD v1.1's exact "
                           "match and F1 (answers normalized: lower case, no punctuation or articles)."],
            limitations=["It always answers with some span: it cannot say that the context holds no answer."],
            evaluation_extra="![training curve](training_curve.png)",
        )
        save_checkpoint(folder, trainer, config, metrics, rows, card)
