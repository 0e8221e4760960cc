"""The main process holds the manifest compactly: a training run's set-up keeps no Python object per clip."""

import gc
import linecache
import tracemalloc

from earshot.config import load_config
from earshot.data.manifest import Clip, ClipStore, SkipReport, write_manifest
from earshot.training.run import build_data
from tests.conftest import tone, write_wav


def _manifest(root, n):
    wav = tone(16000, 0.1)
    clips = []
    for i in range(n):
        p = write_wav(root / f"class{i % 4}" / f"clip{i:05d}.wav", wav)
        clips.append(Clip(id=f"clip{i:05d}", path=str(p), duration=0.1, sample_rate=16000, channels=1,
                          labels=[f"class{i % 4}"], split=("train", "train", "val", "test")[(i // 4) % 4]))
    return write_manifest(root / "manifest.jsonl", clips, root=root)


def _interning(trace) -> bool:
    """Whether an allocation was made on a line that calls ``sys.intern`` (ours or pathlib's)."""
    frame = trace.traceback[0]
    return "intern(" in linecache.getline(frame.filename, frame.lineno)


def _held_after_setup(manifest, tmp_path):
    """Bytes of Python heap that ``build_data`` allocated and still holds. Not counted: the growth of
    Python's table of interned strings. ``sys.intern`` (which pathlib calls on every path part, such
    as this test's own file names) resizes that table by megabytes whenever enough names have been
    interned, so a resize lands in whichever call crosses the next size. A string that set-up
    interned and kept would still count, at the line that made it."""
    cfg = load_config(None, [f"data.manifest={manifest}", f"out_dir={tmp_path}", "data.num_workers=0",
                             "data.clip_seconds=0.1", "model.name=cnn_small", "trainer.accelerator=cpu"])
    gc.collect()
    tracemalloc.start()
    out = build_data(cfg, SkipReport())
    gc.collect()
    held = sum(t.size for t in tracemalloc.take_snapshot().traces if not _interning(t))
    tracemalloc.stop()
    return held, out


def test_setup_holds_a_few_hundred_bytes_a_clip_in_stores(tmp_path):
    small, large = _manifest(tmp_path / "s", 200), _manifest(tmp_path / "l", 1800)
    _held_after_setup(small, tmp_path)  # warm-up: first-call imports and tables are not the data's
    held_small, _ = _held_after_setup(small, tmp_path)
    held_large, (_, _, splits, _, _, loaders) = _held_after_setup(large, tmp_path)
    for seq in (splits.train, splits.val, splits.test, loaders.train_clips, loaders.val_clips):
        assert isinstance(seq, ClipStore)
    assert (len(loaders.train_clips), len(loaders.val_clips), len(splits.test)) == (904, 448, 448)  # every clip kept
    assert loaders.train_clips[0].labels == ["class0"]
    per_clip = (held_large - held_small) / 1600
    assert per_clip < 400, f"{per_clip:.0f} bytes held a clip"  # a Clip object and its strings: 900 or more


def test_a_large_manifest_spills_to_files_and_the_heap_holds_nothing_per_clip(tmp_path, monkeypatch):
    monkeypatch.setattr(ClipStore, "SPILL_BYTES", 0)  # as a manifest of millions of clips would
    monkeypatch.setenv("EARSHOT_TMPDIR", str(tmp_path))
    # 4,000 clips: a few kilobytes that vary with what ran before in the process (typing's caches, io
    # buffers) stay small beside 20 bytes a clip
    small, large = _manifest(tmp_path / "s", 200), _manifest(tmp_path / "l", 4000)
    _held_after_setup(small, tmp_path)
    held_small, _ = _held_after_setup(small, tmp_path)
    held_large, (_, _, splits, _, _, loaders) = _held_after_setup(large, tmp_path)
    for seq in (splits.test, loaders.train_clips, loaders.val_clips):
        assert seq.spilled
    assert loaders.train_clips[-1].id == "clip03991" and len(splits.test) == 1000
    per_clip = (held_large - held_small) / 3800
    assert per_clip < 20, f"{per_clip:.0f} bytes held a clip"
