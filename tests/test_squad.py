"""The SQuAD v1.1 metric against hand-worked cases."""

import pytest

from tuneship.metrics.question_answering import exact_match, f1, normalize_answer, squad_metrics


def test_normalization_as_the_official_script():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("Theory") == "theory"  # articles only as whole words


def test_exact_match_and_f1_hand_worked():
    assert exact_match("1889.", "1889") == 1.0 and exact_match("in 1889", "1889") == 0.0
    # prediction {cat, sat}, gold {cat, sat, on, mat}: precision 1, recall 1/2, F1 2/3
    assert f1("cat sat", "the cat sat on the mat") == pytest.approx(2 / 3)
    # repeated tokens count once each: {the->dropped} "paris paris" vs "paris": common 1, P 1/2, R 1 -> 2/3
    assert f1("Paris Paris", "Paris") == pytest.approx(2 / 3)
    assert f1("", "Paris") == 0.0 and f1("London", "Paris") == 0.0


def test_totals_take_the_best_gold_answer_and_count_missing_predictions():
    references = {"q1": ["Denver Broncos", "The Broncos"], "q2": ["Santa Clara"], "q3": ["gold"]}
    predictions = {"q1": "the broncos", "q2": "Santa Clara, California"}
    result = squad_metrics(predictions, references)
    assert result["num_examples"] == 3
    assert result["exact_match"] == pytest.approx(100 / 3)
    # q1: 1.0; q2: P 2/3, R 1 -> 0.8; q3: missing -> 0
    assert result["f1"] == pytest.approx(100 * (1 + 0.8) / 3)
    with pytest.raises(ValueError, match="no gold answer"):
        squad_metrics({}, {"q": []})
