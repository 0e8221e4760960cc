"""The task protocol: targets, losses, decoding, metrics and state, for classification and tagging."""

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from earshot.data.manifest import Clip, SkipReport
from earshot.errors import ConfigError
from earshot.metrics.tagging import tagging_report, tune_thresholds
from earshot.tasks import ClassificationTask, TaggingTask, create_task


def _clip(labels, i=0):
    return Clip(id=f"c{i}", path=f"audio/c{i}.wav", duration=1.0, sample_rate=16000, channels=1, labels=list(labels))


def test_tagging_targets_are_multi_hot_and_loss_is_bce():
    t = TaggingTask(["a", "b", "c"])
    assert t.target(_clip(["c", "a"])).tolist() == [1.0, 0.0, 1.0]
    assert t.target(_clip([])).tolist() == [0.0, 0.0, 0.0]
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    y = torch.tensor([[1.0, 0.0, 1.0]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    assert torch.isclose(t.loss({"clip_logits": logits}, {"target": y}), expected)


def test_tagging_positive_weights_follow_the_class_balance():
    t = TaggingTask(["a", "b"], pos_weight="balanced")
    t.prepare([_clip(["a"], i) for i in range(3)] + [_clip(["b"], 9)])
    assert t.pos_weight.tolist() == pytest.approx([1.0, 3.0])  # n_neg / n_pos, at least 1
    rebuilt = create_task(**{"name": "tagging", **{k: v for k, v in t.describe().items() if k != "name"}})
    assert rebuilt.pos_weight.tolist() == t.pos_weight.tolist()


def test_tagging_keeps_all_negative_clips_and_reports_unknown_tags():
    t = TaggingTask(["a", "b"])
    sk = SkipReport()
    kept = t.admit([_clip(["a", "b"], 0), _clip([], 1), _clip(["zebra"], 2)], "train", sk)
    assert [c.id for c in kept] == ["c0", "c1"]
    assert len(sk) == 1 and "zebra" in sk.items[0].reason
    assert any("no positive tag: kept as an all-negative example" in n.reason for n in sk.notes)
    assert t.sampling_keys(kept[1]) == ["(no tag)"]


def test_classification_refuses_multi_label_data_and_names_the_fix():
    t = ClassificationTask(["a", "b"])
    with pytest.raises(ConfigError, match="set task.name=tagging"):
        t.admit([_clip(["a"]), _clip(["a", "b"], 1)], "train", SkipReport())


def test_tagging_metrics_match_scikit_learn_and_skip_unscorable_classes():
    rng = np.random.default_rng(0)
    y = (rng.random((60, 4)) < 0.4).astype(int)
    y[:, 3] = 0  # a class with no positive clip
    p = np.clip(y * 0.6 + rng.random((60, 4)) * 0.5, 0, 1)
    rep = tagging_report(p, y, ["a", "b", "c", "d"], [0.5] * 4)
    auc = [roc_auc_score(y[:, c], p[:, c]) for c in range(3)]
    ap = [average_precision_score(y[:, c], p[:, c]) for c in range(3)]
    assert rep["roc_auc_macro"] == pytest.approx(np.mean(auc)) and rep["mAP"] == pytest.approx(np.mean(ap))
    assert rep["per_class_auc"]["d"] is None and rep["per_class_ap"]["d"] is None
    assert rep["roc_auc_micro"] == pytest.approx(roc_auc_score(y.ravel(), p.ravel()))


def test_thresholds_tuned_on_validation_raise_f1_and_decode_uses_them():
    rng = np.random.default_rng(1)
    y = (rng.random((200, 2)) < 0.3).astype(int)
    p = np.where(y == 1, rng.uniform(0.15, 0.35, y.shape), rng.uniform(0.0, 0.2, y.shape))  # all under 0.5
    t = TaggingTask(["a", "b"])
    before = t.evaluate(p, y)["f1_macro"]
    t.tune(p, y)
    after = t.evaluate(p, y)["f1_macro"]
    assert before == 0.0 and after > 0.8
    assert all(0.1 < th < 0.3 for th in t.thresholds)
    probs = np.array([0.9 * t.thresholds[0] , 1.1 * t.thresholds[1]])
    assert [lab for lab, _ in t.decode(probs)] == ["b"]
    assert create_task("tagging", ["a", "b"], **{k: v for k, v in t.describe().items()
                                                  if k not in ("name", "labels")}).thresholds.tolist() == \
        pytest.approx(t.thresholds.tolist())
    tt = tune_thresholds(p, y)
    assert tt.shape == (2,)


def test_judge_names_the_confidently_wrong():
    c = ClassificationTask(["a", "b"])
    assert c.judge(np.array([0.9, 0.1]), np.array(1)) == (False, 0.9)
    t = TaggingTask(["a", "b"])
    ok, conf = t.judge(np.array([0.95, 0.1]), np.array([0.0, 0.0]))
    assert not ok and conf == pytest.approx(0.45)
