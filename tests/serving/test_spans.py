"""QA windows and span post-processing on real tokenizer output (the default model's WordPiece)."""

import numpy as np
import pytest

from tuneship.errors import TuneshipError
from tuneship.spans import answer_positions, best_answers, context_range, encode_windows


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tiny_model / "tokenizer.json"))


LONG_CONTEXT = " ".join(f"Sentence {i} talks about item{i}." for i in range(120)) + \
    " The bridge was finished in 1932 by the city engineers. " + " ".join(f"Filler {i}." for i in range(60))


def test_a_long_context_is_covered_by_overlapping_windows(tokenizer):
    windows = encode_windows(tokenizer, "When was the bridge finished?", LONG_CONTEXT, max_length=64, doc_stride=16)
    assert len(windows) > 10 and all(len(w.ids) <= 64 for w in windows)
    covered = set()
    for w in windows:
        first, last = context_range(w)
        covered.update(range(w.offsets[first][0], w.offsets[last][1]))
        assert w.ids[0] == tokenizer.token_to_id("[CLS]") and w.sequence_ids[1] == 0
    words = {LONG_CONTEXT.index(word) for word in ("1932", "engineers", "Filler 59")}
    assert words <= covered
    # consecutive windows overlap by doc_stride tokens
    first_a, last_a = context_range(windows[0])
    first_b, _ = context_range(windows[1])
    assert windows[0].offsets[last_a - 15] == windows[1].offsets[first_b]


def test_answers_map_to_tokens_and_back_in_every_window_that_holds_them(tokenizer):
    start = LONG_CONTEXT.index("1932")
    end = start + len("1932")
    windows = encode_windows(tokenizer, "When was the bridge finished?", LONG_CONTEXT, max_length=64, doc_stride=16)
    holding = []
    for w in windows:
        s, e = answer_positions(w, start, end)
        if (s, e) != (0, 0):
            holding.append(w)
            assert LONG_CONTEXT[w.offsets[s][0]:w.offsets[e][1]] == "1932"
    assert 1 <= len(holding) <= 3

    # logits that point at the answer in one window and at a decoy, less strongly, in another
    starts = np.full((len(windows), 64), -10.0)
    ends = np.full((len(windows), 64), -10.0)
    w = windows.index(holding[-1])
    s, e = answer_positions(windows[w], start, end)
    starts[w, s], ends[w, e] = 8.0, 8.0
    decoy = 0 if w != 0 else 1
    first, _ = context_range(windows[decoy])
    starts[decoy, first + 1], ends[decoy, first + 2] = 6.0, 6.0
    starts[w, s], ends[w, s - 1] = 8.0, 9.0  # an end before the start must be ignored
    answers = best_answers(windows, starts, ends, LONG_CONTEXT, n_best=5)
    assert answers[0].text == "1932" and (answers[0].start, answers[0].end) == (start, end)
    assert answers[0].score > answers[1].score and sum(a.score for a in answers) == pytest.approx(1.0)
    assert len({(a.start, a.end) for a in answers}) == len(answers)


def test_max_answer_length_and_bad_inputs(tokenizer):
    context = "one two three four five six seven eight nine ten"
    (window,) = encode_windows(tokenizer, "count?", context, max_length=64, doc_stride=8)
    first, last = context_range(window)
    starts, ends = np.full((1, len(window.ids)), -5.0), np.full((1, len(window.ids)), -5.0)
    starts[0, first], ends[0, last] = 5.0, 5.0
    assert best_answers([window], starts, ends, context, max_answer_length=30)[0].text == context
    assert best_answers([window], starts, ends, context, max_answer_length=3)[0].text != context
    assert answer_positions(window, context.index("three"), context.index("three") + 5) == (first + 2, first + 2)
    with pytest.raises(TuneshipError, match="the context is empty"):
        encode_windows(tokenizer, "q?", "   ")
    with pytest.raises(TuneshipError, match="doc_stride"):
        encode_windows(tokenizer, "q?", context, max_length=16, doc_stride=12)
    long_question = " ".join(["why"] * 100)
    windows = encode_windows(tokenizer, long_question, context, max_length=64, doc_stride=8)
    assert sum(1 for s in windows[0].sequence_ids if s == 0) == 32
