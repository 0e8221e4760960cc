import numpy as np
import pytest

from earshot.metrics.classification import classification_report, confusion_matrix, map_at_k, ranks, top_k_accuracy


def test_map_at_3_by_hand():
    probs = np.array([[0.6, 0.3, 0.1, 0.0],   # true 0 at rank 1 -> 1
                      [0.6, 0.3, 0.1, 0.0],   # true 1 at rank 2 -> 1/2
                      [0.6, 0.3, 0.1, 0.0],   # true 2 at rank 3 -> 1/3
                      [0.6, 0.3, 0.1, 0.0]])  # true 3 at rank 4 -> 0
    t = np.array([0, 1, 2, 3])
    assert ranks(probs, t).tolist() == [1, 2, 3, 4]
    assert map_at_k(probs, t, 3) == pytest.approx((1 + 1 / 2 + 1 / 3) / 4)
    assert top_k_accuracy(probs, t, 3) == 0.75


def test_ties_do_not_flatter():
    probs = np.full((1, 3), 1 / 3)
    assert ranks(probs, np.array([0]))[0] == 3


def test_report_and_confusion():
    probs = np.eye(3)[[0, 1, 1, 2]]
    t = np.array([0, 1, 2, 2])
    cm = confusion_matrix(probs, t, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    rep = classification_report(probs, t, ["a", "b", "c"])
    assert rep["accuracy"] == 0.75
    assert rep["per_class_accuracy"] == {"a": 1.0, "b": 1.0, "c": 0.5}
    assert rep["balanced_accuracy"] == pytest.approx(2.5 / 3)
    assert rep["support"] == {"a": 1, "b": 1, "c": 2}
    assert "map@3" in rep and "map@5" not in rep
