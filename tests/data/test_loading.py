"""Lazy loading: bounded memory, the decoded-audio cache, seeded workers, balanced multi-label sampling."""

import os
import tracemalloc

import numpy as np
import pytest
import torch

from earshot.data.loading import (AudioCache, AudioReader, CropDataset, WindowDataset, EpochSampler, class_weights, check_clips,
                                  collate_windows, seed_worker)
from earshot.data.manifest import Clip, SkipReport
from earshot.tasks import TaggingTask
from tests.conftest import tone, write_wav


def _clips(root, n, seconds=1.0, sr=16000):
    out = []
    for i in range(n):
        p = write_wav(root / f"c{i}.wav", tone(sr, seconds, 200 + 7 * i), sr)
        out.append(Clip(id=f"c{i}", path=str(p), duration=seconds, sample_rate=sr, channels=1, labels=["a"]))
    return out


def _peak_bytes_while_iterating(clips, reader):
    task = TaggingTask(["a"])
    ds = CropDataset(clips, reader, task.target, win=4000, seed=0)
    tracemalloc.start()
    for i in range(len(ds)):
        ds[i]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_stays_bounded_whatever_the_dataset_size(tmp_path):
    """Iterating 10x more clips must not need 10x the memory: nothing is held after an item is made."""
    small = _clips(tmp_path / "s", 8)
    large = _clips(tmp_path / "l", 80)
    reader = AudioReader(16000)
    one_clip = 16000 * 4  # bytes of one decoded clip (float32)
    for clips in (small, large):  # warm-up: first-call imports and path-interning tables are not the data's
        _peak_bytes_while_iterating(clips, reader)
    peak_small, peak_large = _peak_bytes_while_iterating(small, reader), _peak_bytes_while_iterating(large, reader)
    assert peak_large < peak_small + 4 * one_clip
    assert peak_large < 20 * one_clip  # far below the 80 clips' 80 * one_clip
    capped = AudioReader(16000, memory_bytes=5 * one_clip)  # the RAM cache holds at most its cap
    _peak_bytes_while_iterating(large, capped)
    assert len(capped._memory) == 5 and capped._held <= 5 * one_clip


def test_audio_cache_is_keyed_by_rate_and_file_and_memory_maps(tmp_path):
    clips = _clips(tmp_path / "a", 2, sr=8000)
    cache = AudioCache(tmp_path / "cache", 16000)
    x = cache.load(clips[0].path)
    assert len(x) == 16000 and len(list((tmp_path / "cache" / "16000hz").glob("*.npy"))) == 1
    y = cache.load(clips[0].path)
    assert isinstance(y, np.memmap) and np.array_equal(x, y)
    assert AudioCache(tmp_path / "cache", 22050).load(clips[0].path).shape == (22050,)  # another rate: another entry
    os.utime(clips[0].path, ns=(1, 1))  # the source changed: decoded afresh
    assert cache.entry(clips[0].path) != cache.entry(clips[1].path)
    cache.build(clips)
    assert len(list((tmp_path / "cache" / "16000hz").glob("*.npy"))) == 3
    cache.entry(clips[1].path).write_bytes(b"garbage")  # a damaged entry is rebuilt, never read
    assert np.allclose(cache.load(clips[1].path), AudioReader(16000)(clips[1]))


def test_each_worker_draws_from_its_own_generator(tmp_path):
    clips = _clips(tmp_path, 8, seconds=2.0)
    task = TaggingTask(["a"])
    ds = CropDataset(clips * 4, AudioReader(16000), task.target, win=4000, seed=0,
                     augment=lambda y, rng: y * 0 + rng.random())  # the crop records one draw of its generator

    def draws(workers):
        torch.manual_seed(0)
        dl = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers, worker_init_fn=seed_worker)
        return torch.cat([b["audio"][:, 0] for b in dl]).numpy()

    two = draws(2)
    assert len(set(np.round(two, 8))) == len(two)  # no two workers repeat a draw
    assert np.array_equal(two, draws(2))  # and the same seed repeats the run


def test_window_dataset_decodes_each_clip_once_and_keeps_clip_targets(tmp_path):
    clips = _clips(tmp_path, 3, seconds=1.0)
    task = TaggingTask(["a"])
    ds = WindowDataset(clips, AudioReader(16000), task.target, win=4000, hop=2000)
    batch = collate_windows([ds[0], ds[1]])
    assert batch["audio"].shape == (14, 4000) and batch["target"].shape == (2, 1)
    assert batch["clip_index"].tolist() == [0] * 7 + [1] * 7


def test_check_clips_reports_missing_and_truncated_files_without_decoding(tmp_path):
    clips = _clips(tmp_path, 3)
    os.unlink(clips[0].path)
    data = open(clips[1].path, "rb").read()
    open(clips[1].path, "wb").write(data[:200])
    sk = SkipReport()
    kept = check_clips(clips, 16000, skipped=sk, min_samples=32000)
    assert [c.id for c in kept] == ["c2"]
    assert {s.reason.split(":")[0].split(" (")[0] for s in sk.items} == {"file not found", "truncated WAV"}
    assert any("zero-padded" in n.reason for n in sk.notes)


def test_balanced_sampler_evens_out_multi_label_classes():
    keys = [["common"]] * 90 + [["common", "rare"]] * 10
    s = EpochSampler(100, class_weights(keys), seed=0)
    drawn = []
    for epoch in range(20):
        s.set_epoch(epoch)
        drawn += [i for i, _, _ in s]
    rare_share = np.bincount(drawn, minlength=100)[90:].sum() / len(drawn)
    assert 0.35 < rare_share < 0.65  # the rare class is drawn about as often as the common one


def test_an_epoch_depends_on_seed_and_epoch_only_and_resumes_at_any_position():
    s = EpochSampler(50, seed=3)
    s.set_epoch(4)
    full = list(s)
    assert sorted(i for i, _, _ in full) == list(range(50)) and list(s) == full  # a permutation, repeatable
    s.set_epoch(5)
    assert [i for i, _, _ in s] != [i for i, _, _ in full]
    s.resume(4, 17)
    s.set_epoch(3)  # a resume point applies to its own epoch only, and waits for it
    assert len(list(s)) == 50
    s.set_epoch(4)
    assert list(s) == full[17:] and list(s) == full  # and to one iteration


def test_crops_are_the_same_whichever_worker_draws_them(tmp_path):
    clips = [Clip(id=f"c{i}", path=str(write_wav(tmp_path / f"c{i}.wav", tone(16000, 1.0))), duration=1.0,
                  sample_rate=16000, channels=1, labels=["a"]) for i in range(2)]
    ds = CropDataset(clips, AudioReader(16000), lambda c, crop=None: np.zeros(1, np.float32), 4000, seed=7)
    a, b = ds[(1, 2, 9)]["audio"], ds[(1, 2, 9)]["audio"]
    assert torch.equal(a, b) and not torch.equal(a, ds[(1, 2, 10)]["audio"])


def test_cached_clips_skip_the_header_probe(tmp_path, monkeypatch):
    """With the audio cache, a clip whose entry exists needs one stat, not a header read; a file
    that has gone is still reported, and an uncached one is still probed."""
    import earshot.data.loading as loading
    from earshot.data.loading import AudioCache, check_clips
    from earshot.data.manifest import Clip, SkipReport
    from tests.conftest import tone, write_wav

    clips = [Clip(f"c{i}", str(write_wav(tmp_path / f"c{i}.wav", tone())), 0.5, 16000, 1, ["a"]) for i in range(3)]
    cache = AudioCache(tmp_path / "cache", 16000)
    cache.build(clips[:2])
    probed = []
    monkeypatch.setattr(loading, "probe_audio", lambda p: probed.append(p))
    (tmp_path / "c1.wav").unlink()
    report = SkipReport()
    kept = check_clips(clips, 16000, skipped=report, cache=cache)
    assert [c.id for c in kept] == ["c0", "c2"] and probed == [clips[2].path]
    assert [(s.path, s.reason) for s in report.items] == [(clips[1].path, "file not found")]


def test_a_dataset_hash_checks_each_cache_entry_once_in_bits_of_fixed_size(tmp_path, monkeypatch):
    import earshot.data.loading as loading

    clips = _clips(tmp_path / "a", 20)
    cache = AudioCache(tmp_path / "cache", 16000)
    cache.build(clips)
    built = set(cache._verified)  # the entries it wrote itself
    entry = cache.entry(clips[3].path)
    raw = bytearray(entry.read_bytes())
    raw[-10] ^= 0xFF  # one sample damaged: caught on the first read, decoded again
    entry.write_bytes(bytes(raw))
    checks = []
    monkeypatch.setattr(loading, "content_hash", lambda x, real=loading.content_hash: checks.append(1) or real(x))
    ds = CropDataset(clips, AudioReader(16000, cache), TaggingTask(["a"]).target, win=4000, seed=0)
    size = len(ds.checked.bits)
    assert size == 3  # 20 clips: 3 bytes, whatever the epoch reads
    for _ in range(3):
        for i in range(len(ds)):
            ds[i]
    assert len(checks) == 20 + 1 and cache.rebuilt == 1  # once each, and the rewritten entry is hashed when written
    assert len(ds.checked.bits) == size and all(i in ds.checked for i in range(20))
    assert cache._verified == built  # no set of names growing through the epoch


def test_the_epoch_order_is_torch_randperm_of_its_seed_in_any_dtype():
    """The order is held as 4-byte indices, and is still exactly the 8-byte randperm of earlier versions,
    so a run with a given seed sees the same data as before."""
    from earshot.data.loading import _mix

    s = EpochSampler(5000, seed=7)
    s.set_epoch(2)
    ref = torch.randperm(5000, generator=torch.Generator().manual_seed(_mix(7, 2)))
    assert [i for i, _, _ in s] == ref.tolist()
