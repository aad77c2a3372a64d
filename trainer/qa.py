"""Extractive question answering: fine-tune with `transformers.Trainer` on SQuAD-style data, answer, evaluate.

Long contexts are split into overlapping windows and answers mapped to tokens by `serving.spans`,
the same code the ONNX path uses, so training and serving see the same windows. Model selection
uses SQuAD F1 on the validation questions, after the standard span post-processing.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import TuneshipError, require
from ..files import write_directory_atomically, write_json
from ..serving.questions import QAExample, read_qa_examples
from ..serving.spans import Answer, answer_positions, best_answers, encode_windows
from ..squad import squad_metrics
from .config import TrainConfig

TASK = "question-answering"
INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")
VALIDATION_FILE = "validation.jsonl"  # the validation questions, for the export's span-agreement gate


def window_tokenizer(tokenizer):
    """A `tokenizers.Tokenizer` copy of a transformers fast tokenizer (windows change its truncation settings)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())


def windows_of(examples: Sequence[QAExample], tokenizer, max_length: int, doc_stride: int) -> tuple[list, list[int]]:
    """Every window of every example, and the index of the example each window belongs to."""
    windows, owners = [], []
    for index, example in enumerate(examples):
        for window in encode_windows(tokenizer, example.question, example.context, max_length, doc_stride):
            windows.append(window)
            owners.append(index)
    return windows, owners


def features(examples: Sequence[QAExample], windows: Sequence, owners: Sequence[int]) -> dict[str, list]:
    """Model inputs per window, with the first gold answer's token positions ((0, 0) where it is not in the window)."""
    columns: dict[str, list] = {name: [] for name in (*INPUT_NAMES, "start_positions", "end_positions")}
    for window, owner in zip(windows, owners):
        columns["input_ids"].append(window.ids)
        columns["token_type_ids"].append(window.type_ids)
        columns["attention_mask"].append(window.attention_mask)
        text, start = examples[owner].answers[0]
        first, last = answer_positions(window, start, start + len(text))
        columns["start_positions"].append(first)
        columns["end_positions"].append(last)
    return columns


def answers_from_logits(examples: Sequence[QAExample], windows: Sequence, owners: Sequence[int], start_logits,
                        end_logits, n_best: int, max_answer_length: int) -> list[Answer]:
    """The best answer of each example, its windows merged."""
    by_example: dict[int, list[int]] = {}
    for position, owner in enumerate(owners):
        by_example.setdefault(owner, []).append(position)
    answers = []
    for index, example in enumerate(examples):
        rows = by_example[index]
        answers.append(best_answers([windows[r] for r in rows], start_logits[rows], end_logits[rows], example.context,
                                    n_best, max_answer_length)[0])
    return answers


def score(examples: Sequence[QAExample], answers: Sequence[Answer]) -> dict:
    """SQuAD exact match and F1 (percent)."""
    return squad_metrics({e.id: a.text for e, a in zip(examples, answers)},
                         {e.id: [text for text, _ in e.answers] for e in examples})


class TorchQuestionAnswerer:
    """A QA checkpoint in PyTorch, answering with the settings it was trained with.

    Example:
        >>> qa = TorchQuestionAnswerer.from_checkpoint("runs/squad")  # doctest: +SKIP
        >>> qa.answer(["When was it built?"], ["The bridge was built in 1932."])[0].text  # doctest: +SKIP
        '1932'
    """

    def __init__(self, model, tokenizer, settings: dict):
        self.model = model.eval()
        self.tokenizer = window_tokenizer(tokenizer)
        self.pad_id = tokenizer.pad_token_id or 0
        self.settings = settings

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> "TorchQuestionAnswerer":
        path = Path(path)
        if not (path / "config.json").is_file():
            raise TuneshipError(f"{path}: not a model checkpoint (no config.json); give the folder `tuneship train` wrote")
        transformers = require("transformers", "train")
        tokenizer = transformers.AutoTokenizer.from_pretrained(path)
        model = transformers.AutoModelForQuestionAnswering.from_pretrained(path)
        settings = getattr(model.config, "tuneship", None) or {}
        if settings.get("task") != TASK:
            raise TuneshipError(f"{path}: not a question-answering checkpoint (task {settings.get('task')!r})")
        return cls(model, tokenizer, settings)

    def logits(self, windows: Sequence, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits per window, padded to the longest window (padding never wins: it is no context)."""
        import torch

        width = max(len(w.ids) for w in windows)
        starts = np.full((len(windows), width), -1e4, dtype=np.float32)
        ends = starts.copy()
        for begin in range(0, len(windows), batch_size):
            batch = windows[begin : begin + batch_size]
            longest = max(len(w.ids) for w in batch)
            arrays = {name: torch.full((len(batch), longest), self.pad_id if name == "input_ids" else 0)
                      for name in INPUT_NAMES}
            for row, window in enumerate(batch):
                for name, values in zip(INPUT_NAMES, (window.ids, window.type_ids, window.attention_mask)):
                    arrays[name][row, : len(values)] = torch.tensor(values)
            with torch.inference_mode():
                output = self.model(**arrays)
            starts[begin : begin + len(batch), :longest] = output.start_logits.float().numpy()
            ends[begin : begin + len(batch), :longest] = output.end_logits.float().numpy()
        return starts, ends

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[Answer]:
        examples = [QAExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
        return self.answer_examples(examples)

    def answer_examples(self, examples: Sequence[QAExample]) -> list[Answer]:
        s = self.settings
        windows, owners = windows_of(examples, self.tokenizer, s["max_length"], s["doc_stride"])
        starts, ends = self.logits(windows)
        return answers_from_logits(examples, windows, owners, starts, ends, s["n_best"], s["max_answer_length"])


def evaluate_qa(answerer, data_file: str | Path) -> dict:
    """Exact match and F1 of `answerer` (anything with `answer_examples`) on a labelled QA file."""
    examples = read_qa_examples(data_file)
    return score(examples, answerer.answer_examples(examples))


def _split(examples: list[QAExample], fraction: float, seed: int) -> tuple[list[QAExample], list[QAExample]]:
    """Hold out whole contexts (questions on one paragraph stay together), seeded."""
    contexts = sorted({e.context for e in examples})
    random.Random(seed).shuffle(contexts)
    held = set(contexts[: max(1, round(fraction * len(contexts)))])
    return [e for e in examples if e.context not in held], [e for e in examples if e.context in held]


def _save(folder: Path, trainer, config: TrainConfig, validation: Sequence[QAExample], metrics: dict, sources: dict) -> None:
    trainer.save_model(str(folder))
    (folder / "train_config.json").write_text(config.to_json_string() + "\n", encoding="utf-8")
    write_json(folder / "metrics.json", metrics)
    write_json(folder / "log_history.json", trainer.state.log_history)
    rows = [{"id": e.id, "question": e.question, "context": e.context,
             "answers": {"text": [t for t, _ in e.answers], "answer_start": [s for _, s in e.answers]}} for e in validation]
    (folder / VALIDATION_FILE).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    card = [
        "---", "library_name: transformers", "license: apache-2.0", "pipeline_tag: question-answering",
        "tags:", "- tuneship", "- question-answering", "---", "",
        f"# {Path(config.output_dir).name}", "",
        f"`{config.model}` fine-tuned for extractive question answering with tuneship on `{sources['train']}` "
        f"({sources['train_questions']} questions), selected on `{sources['validation']}` "
        f"({len(validation)} questions).", "",
        "| exact match | F1 |", "|---|---|", f"| {metrics['exact_match']:.2f} | {metrics['f1']:.2f} |", "",
        f"Windows of {config.max_length} tokens with a stride of {config.doc_stride}; answers of at most "
        f"{config.max_answer_length} tokens. Load it with `transformers.pipeline('question-answering', model=PATH)`.", "",
    ]
    (folder / "README.md").write_text("\n".join(card), encoding="utf-8")


def train_qa(config: TrainConfig, callbacks: Sequence = ()):
    """Fine-tune `config.model` for extractive QA on `config.train_file` (SQuAD JSON, CSV or JSONL)."""
    from .training import TrainResult, _prepare_output, _training_arguments, resolve_model

    transformers = require("transformers", "train")
    import datasets

    resume = _prepare_output(config)
    train_examples = read_qa_examples(config.train_file)
    if config.validation_file:
        validation = read_qa_examples(config.validation_file)
        validation_source = config.validation_file
    else:
        train_examples, validation = _split(train_examples, config.validation_split, config.seed)
        validation_source = f"a {config.validation_split:.0%} split of {config.train_file} (whole contexts)"
    print(f"question answering: {len(train_examples)} training and {len(validation)} validation questions")

    model_path = resolve_model(config.model)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
        model = transformers.AutoModelForQuestionAnswering.from_pretrained(model_path)
    except (OSError, ValueError) as error:
        raise TuneshipError(f"could not load the base model {config.model!r}: {error}") from None
    settings = {"task": TASK, "max_length": config.max_length, "doc_stride": config.doc_stride,
                "max_answer_length": config.max_answer_length, "n_best": 20}
    model.config.tuneship = settings
    windows_tokenizer = window_tokenizer(tokenizer)
    train_windows, train_owners = windows_of(train_examples, windows_tokenizer, config.max_length, config.doc_stride)
    val_windows, val_owners = windows_of(validation, windows_tokenizer, config.max_length, config.doc_stride)
    print(f"windows: {len(train_windows)} training, {len(val_windows)} validation")
    train_set = datasets.Dataset.from_dict(features(train_examples, train_windows, train_owners))
    validation_set = datasets.Dataset.from_dict(features(validation, val_windows, val_owners))

    def compute_metrics(prediction):
        starts, ends = prediction.predictions
        answers = answers_from_logits(validation, val_windows, val_owners, np.asarray(starts), np.asarray(ends),
                                      settings["n_best"], config.max_answer_length)
        result = score(validation, answers)
        return {"exact_match": result["exact_match"], "f1": result["f1"]}

    args = _training_arguments(config, "f1")
    if config.overwrite and not resume:
        shutil.rmtree(config.checkpoints_dir, ignore_errors=True)
    stopping = [transformers.EarlyStoppingCallback(config.early_stopping_patience)] if config.early_stopping_patience else []
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=validation_set, processing_class=tokenizer,
        data_collator=transformers.DataCollatorWithPadding(tokenizer), compute_metrics=compute_metrics,
        callbacks=[*stopping, *callbacks],
    )
    trainer.train(resume_from_checkpoint=True if resume else None)
    metrics = {key.removeprefix("eval_"): value for key, value in trainer.evaluate().items()}
    metrics.update(num_examples=len(validation), train_runtime=next(
        (e["train_runtime"] for e in trainer.state.log_history if "train_runtime" in e), None))
    output = Path(config.output_dir)
    if trainer.is_world_process_zero():
        sources = {"train": config.train_file, "validation": validation_source, "train_questions": len(train_examples)}
        write_directory_atomically(output, lambda folder: _save(folder, trainer, config, validation, metrics, sources))
        if not config.keep_checkpoints:
            shutil.rmtree(config.checkpoints_dir, ignore_errors=True)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
        print(f"\nModel saved to {output}\nNext:\n  tuneship evaluate --model {output} --data FILE")
    return TrainResult(output_dir=output, metrics=metrics)
