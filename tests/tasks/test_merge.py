"""Seed 003's class split/merge: train on fine classes, score and predict the merged ones."""

import numpy as np
import pytest
import torch

from earshot.data.manifest import Clip, SkipReport
from earshot.errors import ConfigError
from earshot.tasks import create_task

FINE = ["bark", "other_door", "other_vacuum"]
MERGE = {"bark": "bark", "other": ["other_door", "other_vacuum"]}


def clip(label, i=0):
    return Clip(id=f"{label}{i}", path=f"{label}{i}.wav", duration=1.0, sample_rate=16000, channels=1, labels=[label])


def test_probabilities_of_split_classes_are_summed_for_scores_and_predictions():
    task = create_task("classification", FINE, merge=MERGE)
    assert task.out_labels == ["bark", "other"]
    probs = np.array([[0.4, 0.35, 0.25], [0.6, 0.3, 0.1]])
    assert task.decode(probs[0])[0] == ("other", pytest.approx(0.6))  # neither fine class beats bark alone
    targets = np.array([task.target(clip("other_door")), task.target(clip("bark"))])
    rep = task.evaluate(probs, targets)
    assert rep["accuracy"] == 1.0 and rep["labels"] == ["bark", "other"]
    assert task.judge(probs[0], targets[0])[0]


def test_evaluation_clips_may_carry_the_merged_label_but_training_clips_may_not():
    task = create_task("classification", FINE, merge=MERGE)
    skipped = SkipReport()
    assert task.admit([clip("other")], "train", skipped) == [] and "output class of task.merge" in skipped.items[0].reason
    kept = task.admit([clip("other")], "test", SkipReport())
    t = task.target(kept[0])
    assert int(t) == len(FINE) + 1
    assert task.evaluate(np.array([[0.1, 0.5, 0.4]]), np.array([t]))["accuracy"] == 1.0
    loss = task.loss({"clip_logits": torch.zeros(2, 3)}, {"target": torch.tensor([0, int(t)])})
    assert torch.isfinite(loss)  # the merged-label clip is left out of the fine loss


def test_the_mapping_is_checked():
    with pytest.raises(ConfigError, match=r"leaves training label\(s\) \['other_vacuum'\] unmapped"):
        create_task("classification", FINE, merge={"bark": "bark", "other": ["other_door"]})
    with pytest.raises(ConfigError, match="is under both"):
        create_task("classification", FINE, merge={"bark": ["bark", "other_door"], "other": ["other_door", "other_vacuum"]})
    with pytest.raises(ConfigError, match="'howl' .* is not a training label"):
        create_task("classification", FINE, merge={**MERGE, "howl": "howl"})
    task = create_task("classification", FINE, merge=MERGE)
    again = create_task(**{**task.describe(), "labels": task.labels})
    assert again.out_labels == ["bark", "other"]
