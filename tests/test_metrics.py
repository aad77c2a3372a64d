import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from tuneship.metrics import classification_metrics, scalar_metrics


@pytest.mark.parametrize("num_labels", [2, 4])
def test_matches_scikit_learn(num_labels):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, num_labels, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, num_labels, 300))
    names = [f"c{i}" for i in range(num_labels)]
    metrics = classification_metrics(y_true, y_pred, names)

    assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    average = "binary" if num_labels == 2 else "macro"
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0)
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == pytest.approx((p, r, f))
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="weighted", zero_division=0)
    assert (metrics["precision_weighted"], metrics["recall_weighted"], metrics["f1_weighted"]) == pytest.approx((p, r, f))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    for i, name in enumerate(names):
        assert metrics["per_class"][name] == pytest.approx({"precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]})
    assert metrics["confusion_matrix"]["matrix"] == confusion_matrix(y_true, y_pred).tolist()


def test_binary_uses_the_chosen_positive_class():
    y_true, y_pred = [0, 0, 0, 1], [0, 0, 1, 1]
    as_one = classification_metrics(y_true, y_pred, ["no", "yes"])
    as_zero = classification_metrics(y_true, y_pred, ["no", "yes"], positive_label_id=0)
    assert as_one["positive_label"] == "yes" and as_one["precision"] == pytest.approx(0.5)
    assert as_zero["positive_label"] == "no" and as_zero["precision"] == pytest.approx(1.0)
    assert as_zero["recall"] == pytest.approx(2 / 3)


def test_class_never_predicted_scores_zero_not_nan():
    metrics = classification_metrics([0, 1, 2], [0, 0, 0], ["a", "b", "c"])
    assert metrics["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert all(np.isfinite(v) for v in scalar_metrics(metrics).values())
