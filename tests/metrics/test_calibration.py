import numpy as np
import pytest
import torch

from earshot.metrics.calibration import expected_calibration_error, fit_temperature, nll, rescale
from earshot.tasks import create_task


def overconfident(n=2000, c=5, seed=0):
    """Logits whose true temperature is 3: sharpening them by 3 makes an over-confident model."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), y] += 1.5
    p_true = torch.tensor(logits).softmax(-1).numpy()
    y = np.array([rng.choice(c, p=p) for p in p_true])  # labels drawn from the calibrated model
    return torch.tensor(logits * 3).softmax(-1).numpy(), y


def test_ece_of_perfect_and_of_overconfident_predictions():
    p = np.eye(4)[[0, 1, 2, 3]]
    assert expected_calibration_error(p, np.array([0, 1, 2, 3])) == 0.0
    assert expected_calibration_error(p, np.array([1, 2, 3, 0])) == pytest.approx(1.0)
    probs, y = overconfident()
    assert expected_calibration_error(probs, y) > 0.15


def test_temperature_recovers_the_sharpening_and_lowers_ece_and_nll():
    probs, y = overconfident()
    t = fit_temperature(probs, y)
    assert t == pytest.approx(3.0, rel=0.15)
    after = rescale(probs, t)
    assert (after.argmax(1) == probs.argmax(1)).all()  # accuracy untouched
    assert expected_calibration_error(after, y) < 0.5 * expected_calibration_error(probs, y)
    assert nll(after, y) < nll(probs, y)


def test_classification_task_fits_applies_and_stores_the_temperature():
    probs, y = overconfident(seed=1)
    task = create_task("classification", list("abcde"))
    tuned = task.tune(probs, y)
    assert tuned["val_ece_after"] < tuned["val_ece_before"] and tuned["val_nll_after"] < tuned["val_nll_before"]
    assert task.temperature == pytest.approx(tuned["temperature"])
    logits = torch.log(torch.tensor(probs[:3]))
    p = task.probabilities({"clip_logits": logits}).numpy()
    np.testing.assert_allclose(p, rescale(probs[:3], task.temperature), atol=1e-5)
    again = create_task(**{**task.describe(), "labels": task.labels})  # what a checkpoint rebuilds
    assert again.temperature == task.temperature
    report = task.evaluate(rescale(probs, task.temperature), y)
    assert report["ece"] < report["ece_uncalibrated"] and 0.5 < report["roc_auc_macro"] <= 1.0
    assert create_task("classification", list("ab"), calibrate=False).tune(probs[:, :2], y % 2) == {}
