"""``earshot cache --shard i/n`` and ``earshot merge-cache``: shards are disjoint, cover every clip,
and merged equal a one-shard build."""

from __future__ import annotations

import numpy as np
import pytest

from earshot.cli import main
from earshot.data.manifest import Clip, read_manifest, write_manifest
from earshot.data.sharding import cache_entries, parse_shard, shard_of
from earshot.errors import EarshotError
from tests.conftest import tone, write_wav


@pytest.fixture
def manifest(tmp_path):
    audio = tmp_path / "audio"
    clips = [Clip(f"c{i:02d}", str(write_wav(audio / f"c{i:02d}.wav", tone(8000, 0.3 + 0.01 * i, 200 + 30 * i), 8000)),
                  0.3 + 0.01 * i, 8000, 1, ["a"]) for i in range(24)]
    (audio / "bad.wav").write_bytes(b"RIFF\x00\x00")  # unreadable: reported by its shard, not fatal
    clips.append(Clip("bad", str(audio / "bad.wav"), 1.0, 8000, 1, ["a"]))
    return write_manifest(tmp_path / "m.jsonl", clips)


def test_shards_merge_into_the_one_shard_cache(manifest, tmp_path, capsys):
    n = 3
    for i in range(1, n + 1):
        assert main(["cache", str(manifest), "--out", str(tmp_path / f"part{i}"), "--sample-rate", "16000",
                     "--shard", f"{i}/{n}"]) == 0
    parts = [cache_entries(tmp_path / f"part{i}") for i in range(1, n + 1)]
    assert all(parts) and not set(parts[0]) & set(parts[1]) and not set(parts[1]) & set(parts[2])
    assert main(["merge-cache", *(str(tmp_path / f"part{i}") for i in range(1, n + 1)),
                 "--out", str(tmp_path / "merged")]) == 0
    assert main(["cache", str(manifest), "--out", str(tmp_path / "whole"), "--sample-rate", "16000"]) == 0
    whole = cache_entries(tmp_path / "whole")
    assert len(whole) == 24 and cache_entries(tmp_path / "merged") == whole
    for name in whole:  # the arrays themselves, not only their hashes
        assert np.array_equal(np.load(tmp_path / "merged" / name), np.load(tmp_path / "whole" / name))
    out = capsys.readouterr().out
    assert out.count("1 skipped") == 2  # the bad file: in its own shard, and in the one-shard build
    # training's reader finds every readable clip in the merged cache
    from earshot.data.loading import AudioCache

    clips = read_manifest(manifest)
    cache = AudioCache(tmp_path / "merged", 16000)
    assert [c.id for c in clips if not cache.entry(c.path).exists()] == ["bad"]
    assert sum(len(p) for p in parts) == 24 and {shard_of(c, n) for c in clips} == {1, 2, 3}


def test_merge_leaves_out_a_damaged_entry(manifest, tmp_path, capsys):
    assert main(["cache", str(manifest), "--out", str(tmp_path / "p"), "--shard", "1/2"]) == 0
    entries = sorted((tmp_path / "p").rglob("*.npy"))
    entries[0].write_bytes(entries[0].read_bytes()[:-8])  # truncated
    assert main(["merge-cache", str(tmp_path / "p"), "--out", str(tmp_path / "m")]) == 1
    assert f"damaged: {entries[0]}" in capsys.readouterr().out
    assert len(cache_entries(tmp_path / "m")) == len(entries) - 1


def test_shard_argument():
    assert parse_shard("2/4") == (2, 4)
    for bad in ("0/4", "5/4", "x", "1/2/3"):
        with pytest.raises(EarshotError, match="--shard"):
            parse_shard(bad)
