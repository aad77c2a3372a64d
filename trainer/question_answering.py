"""Extractive question answering: fine-tune with `transformers.Trainer` on SQuAD-style data, answer, evaluate.

Long contexts are split into overlapping windows and answers mapped to tokens by `tuneship.spans`,
the same code the ONNX path uses, so training and serving see the same windows. Model selection
uses SQuAD F1 on the validation questions, after the standard span post-processing.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.question_answering import QAExample, read_qa_examples
from ..errors import require
from ..log import get_logger
from ..metrics.question_answering import squad_score
from ..spans import SpanAnswerer, answer_positions, answers_from_logits, windows_of
from ..tasks import QUESTION_ANSWERING
from .arguments import training_arguments
from .config import TrainConfig, load_checkpoint
from .runs import TrainResult, finish_run, load_base_model, prepare_output, readable_progress, trainer_callbacks
from .selection import resolve_epochs, resolve_learning_rate

logger = get_logger(__name__)


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


def _save(folder: Path, trainer, config: TrainConfig, validation: Sequence[QAExample], metrics: dict, sources: dict) -> None:
    from .saving import card_data, save_checkpoint

    rows = [{"id": e.id, "question": e.question, "context": e.context,
             "answers": {"text": [t for t, _ in e.answers], "answer_start": [s for _, s in e.answers]}} for e in validation]
    name = Path(config.output_dir).name
    card = card_data(
        trainer, config, task_description="An extractive question-answering model",
        summary="Given a question and a context, it answers with a span of the context.",
        train_source=sources["train"], validation_source=sources["validation"], num_train=sources["train_questions"],
        num_validation=len(validation), unit="questions",
        headline_metrics={"exact_match": metrics["exact_match"], "f1": metrics["f1"]},
        intended_use="Answering questions whose answer is written in a given context, for text like the training "
                     "data. Export it to ONNX with `tuneship export` to serve it on CPUs.",
        usage="\n".join(["```python", "from transformers import pipeline", "",
                         f'qa = pipeline("question-answering", model="{name}")',
                         'qa(question="...", context="...")', "```", "",
                         f'or, with tuneship: `tuneship predict --model {name} --text "QUESTION" --text-pair "CONTEXT"`.']),
        preprocessing=[f"Windows of {config.max_length} tokens with a stride of {config.doc_stride}: a long context is "
                       "read in overlapping windows, the best span over all windows wins.",
                       f"Answers of at most {config.max_answer_length} tokens, scored with SQuAD v1.1's exact match "
                       "and F1 (answers normalized: lower case, no punctuation or articles)."],
        limitations=["It always answers with some span: it cannot say that the context holds no answer."],
        evaluation_extra="![training curve](training_curve.png)",
    )
    save_checkpoint(folder, trainer, config, metrics, rows, card)


def train(config: TrainConfig, callbacks: Sequence = ()) -> TrainResult:
    """Fine-tune `config.model` for extractive QA on `config.train_file` (SQuAD JSON, CSV or JSONL)."""
    transformers = require("transformers", "train")
    import datasets

    resume = prepare_output(config)
    train_examples = read_qa_examples(config.train_file)
    if config.validation_file:
        validation = read_qa_examples(config.validation_file, split="validation")
        validation_source = config.validation_file
    else:
        train_examples, validation = _split(train_examples, config.validation_split, config.seed)
        validation_source = f"a {config.validation_split:.0%} split of {config.train_file} (whole contexts)"
    logger.info(f"question answering: {len(train_examples)} training and {len(validation)} validation questions")

    model, tokenizer = load_base_model(config, "AutoModelForQuestionAnswering")
    config = resolve_epochs(resolve_learning_rate(config, model))
    settings = {"task": QUESTION_ANSWERING, "max_length": config.max_length, "doc_stride": config.doc_stride,
                "max_answer_length": config.max_answer_length, "n_best": 20}
    model.config.tuneship = settings
    windows_tokenizer = window_tokenizer(tokenizer)
    train_windows, train_owners = windows_of(train_examples, windows_tokenizer, config.max_length, config.doc_stride)
    val_windows, val_owners = windows_of(validation, windows_tokenizer, config.max_length, config.doc_stride)
    logger.info(f"windows: {len(train_windows)} training, {len(val_windows)} validation")
    train_set = datasets.Dataset.from_dict(features(train_examples, train_windows, train_owners))
    validation_set = datasets.Dataset.from_dict(features(validation, val_windows, val_owners))

    def compute_metrics(prediction):
        starts, ends = prediction.predictions
        answers = answers_from_logits(validation, val_windows, val_owners, np.asarray(starts), np.asarray(ends),
                                      settings["n_best"], config.max_answer_length)
        result = squad_score(validation, answers)
        return {"exact_match": result["exact_match"], "f1": result["f1"]}

    trainer = readable_progress(transformers.Trainer(
        model=model, args=training_arguments(config, "f1"), train_dataset=train_set, eval_dataset=validation_set,
        processing_class=tokenizer, data_collator=transformers.DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
        callbacks=trainer_callbacks(config, callbacks),
    ))
    trainer.train(resume_from_checkpoint=resume)
    metrics = {key.removeprefix("eval_"): value for key, value in trainer.evaluate().items()}
    metrics.update(num_examples=len(validation))
    sources = {"train": config.train_file, "validation": validation_source, "train_questions": len(train_examples)}
    return finish_run(trainer, config, metrics, lambda folder: _save(folder, trainer, config, validation, metrics, sources),
                      "  tuneship evaluate --model {output} --data FILE\n  tuneship export --model {output} "
                      "--output {output}-onnx")
