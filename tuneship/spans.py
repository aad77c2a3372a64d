"""Extractive QA spans with `tokenizers` alone: a long context split into overlapping windows, answers
mapped from characters to tokens (training) and from start/end logits back to text (inference).

Training and serving use these same functions, so a window seen in training is the window served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .encoding import pad_encodings
from .errors import TuneshipError

CONTEXT = 1  # `Encoding.sequence_ids` value of the context's tokens (the question is 0)


@dataclass
class Answer:
    """An answer span: its text, its character offsets in the context, and its probability among the n-best."""

    text: str
    start: int
    end: int
    score: float

    def to_dict(self) -> dict:
        return {"answer": self.text, "start": self.start, "end": self.end, "score": self.score}


def encode_windows(tokenizer, question: str, context: str, max_length: int = 384, doc_stride: int = 128) -> list:
    """`[CLS] question [SEP] context-window [SEP]` encodings covering the whole context.

    Consecutive windows share `doc_stride` context tokens, so an answer cut by one window's edge is
    whole in the next. A question longer than half of `max_length` is cut to that many tokens. The
    tokenizer's truncation is set for the call and cleared after it.
    """
    if not context.strip():
        raise TuneshipError("the context is empty")
    if not question.strip():
        raise TuneshipError("the question is empty")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    question_tokens = tokenizer.encode(question, add_special_tokens=False)
    if len(question_tokens.ids) > max_length // 2:
        question = question[: question_tokens.offsets[max_length // 2 - 1][1]]
        question_tokens = tokenizer.encode(question, add_special_tokens=False)
    room = max_length - len(question_tokens.ids) - 3  # [CLS], [SEP], [SEP]
    if doc_stride >= room:
        raise TuneshipError(f"doc_stride ({doc_stride}) must be smaller than the context room of a window ({room} "
                            f"tokens at max_length {max_length}); lower --doc-stride or raise --max-length")
    tokenizer.enable_truncation(max_length, strategy="only_second", stride=doc_stride)
    try:
        first = tokenizer.encode(question, context)
    finally:
        tokenizer.no_truncation()
    return [first, *first.overflowing]


def context_range(encoding) -> tuple[int, int]:
    """First and last token index of the context in a window."""
    indices = [i for i, sequence in enumerate(encoding.sequence_ids) if sequence == CONTEXT]
    return indices[0], indices[-1]


def answer_positions(encoding, answer_start: int, answer_end: int) -> tuple[int, int]:
    """Token indices of the answer's first and last token in this window, or (0, 0) (the [CLS] token) when
    the answer is not wholly inside the window. `answer_end` is the character just after the answer."""
    first, last = context_range(encoding)
    offsets = encoding.offsets
    if offsets[first][0] > answer_start or offsets[last][1] < answer_end:
        return 0, 0
    start = first
    while start <= last and offsets[start][1] <= answer_start:
        start += 1
    end = last
    while end >= first and offsets[end][0] >= answer_end:
        end -= 1
    return start, end


def best_answers(encodings: Sequence, start_logits: np.ndarray, end_logits: np.ndarray, context: str,
                 n_best: int = 20, max_answer_length: int = 30) -> list[Answer]:
    """The n-best answer spans over all windows of one context, best first (the standard SQuAD post-processing).

    Candidates pair the `n_best` highest start and end logits of each window's context tokens; spans that
    end before they start or run over `max_answer_length` tokens are dropped; a span is ranked by
    start + end logit, and its score is the softmax of that over the n-best kept.
    """
    candidates = []
    for window, (encoding, starts, ends) in enumerate(zip(encodings, start_logits, end_logits)):
        first, last = context_range(encoding)
        top_starts = first + np.argsort(starts[first : last + 1])[::-1][:n_best]
        top_ends = first + np.argsort(ends[first : last + 1])[::-1][:n_best]
        for s in top_starts:
            for e in top_ends:
                if e < s or e - s + 1 > max_answer_length:
                    continue
                candidates.append((float(starts[s] + ends[e]), encoding.offsets[s][0], encoding.offsets[e][1]))
    if not candidates:
        return [Answer("", 0, 0, 0.0)]
    candidates.sort(key=lambda c: -c[0])
    unique, seen = [], set()
    for logit, start, end in candidates:  # overlapping windows propose the same span twice
        if (start, end) not in seen:
            seen.add((start, end))
            unique.append((logit, start, end))
        if len(unique) == n_best:
            break
    logits = np.array([c[0] for c in unique])
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    return [Answer(context[start:end], start, end, float(p)) for (_, start, end), p in zip(unique, probabilities)]


def windows_of(examples: Sequence, tokenizer, max_length: int, doc_stride: int) -> tuple[list, list[int]]:
    """Every window of every example, and the index of the example each window belongs to."""
    windows, owners = [], []
    for index, example in enumerate(examples):
        for window in encode_windows(tokenizer, example.question, example.context, max_length, doc_stride):
            windows.append(window)
            owners.append(index)
    return windows, owners


def answers_from_logits(examples: Sequence, windows: Sequence, owners: Sequence[int], start_logits,
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


class SpanAnswerer:
    """What every extractive QA model shares: windows in, logits per window (the subclass's runtime), answers out.

    Subclasses set `tokenizer` (a `tokenizers.Tokenizer`), `settings` (`max_length`, `doc_stride`, `n_best`,
    `max_answer_length`) and `pad_id`, and implement `window_logits(arrays)`.
    """

    tokenizer = None
    settings: dict = {}
    pad_id: int = 0
    input_names: Sequence[str] = ("input_ids", "attention_mask", "token_type_ids")

    def window_logits(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def logits(self, windows: Sequence, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits per window, padded to the longest window (padding is no context, so never wins)."""
        width = max(len(w.ids) for w in windows)
        starts = np.full((len(windows), width), -1e4, dtype=np.float32)
        ends = starts.copy()
        for begin in range(0, len(windows), batch_size):
            arrays = pad_encodings(windows[begin : begin + batch_size], self.input_names, self.pad_id)
            start, end = self.window_logits(arrays)
            starts[begin : begin + len(start), : start.shape[1]] = start
            ends[begin : begin + len(end), : end.shape[1]] = end
        return starts, ends

    def answer(self, questions: Sequence[str], contexts: Sequence[str]) -> list[Answer]:
        """The best answer span for each (question, context)."""
        from .data.question_answering import QAExample

        return self.answer_examples([QAExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))])

    def window_tokens(self, questions: Sequence[str], contexts: Sequence[str]) -> int:
        """Tokens the model reads to answer these: every window of every context, as `answer` cuts them."""
        s = self.settings
        return sum(len(window.ids) for question, context in zip(questions, contexts)
                   for window in encode_windows(self.tokenizer, question, context, s["max_length"], s["doc_stride"]))

    def answer_examples(self, examples: Sequence) -> list[Answer]:
        s = self.settings
        windows, owners = windows_of(examples, self.tokenizer, s["max_length"], s["doc_stride"])
        starts, ends = self.logits(windows)
        return answers_from_logits(examples, windows, owners, starts, ends, s["n_best"], s["max_answer_length"])
