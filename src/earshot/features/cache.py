"""An HDF5 cache of log-mel features.

Features live under a group named by the front-end config's hash, so features computed with
other settings are never read. Each entry also records the audio file's size and mtime (an entry
whose file has changed since is recomputed) and its content hash: an entry that does not match its
hash is reported, recomputed and never returned. A cache file that cannot be opened at all (cut
short by a crash) is moved aside to ``NAME.damaged`` with a warning, and a new one is started.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from earshot.atomic import content_hash
from earshot.features.frontends import LogMelConfig

log = logging.getLogger(__name__)


class FeatureCache:
    """``get(path, compute)`` returns cached ``(T, F)`` features or computes and stores them."""

    def __init__(self, path: str | Path, config: LogMelConfig):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.key = config.key()
        self.hits = 0
        self.misses = 0
        self.rebuilt = 0
        try:
            self._h5 = h5py.File(self.path, "a")
        except OSError as e:
            aside = self.path.with_name(self.path.name + ".damaged")
            log.warning("%s: the feature cache cannot be opened (%s); moved to %s and started again",
                        self.path, str(e).splitlines()[0], aside)
            os.replace(self.path, aside)
            self._h5 = h5py.File(self.path, "a")
        grp = self._h5.require_group(self.key)
        grp.attrs["config"] = repr(config)
        self._grp = grp

    @staticmethod
    def _stamp(audio_path: str) -> np.ndarray:
        st = os.stat(audio_path)
        return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)

    def get(self, audio_path: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        name = os.path.abspath(audio_path).replace("/", "|")
        stamp = self._stamp(audio_path)
        if name in self._grp:
            ds = self._grp[name]
            if np.array_equal(ds.attrs.get("stamp"), stamp):
                try:
                    feats = ds[()]
                    ok = ds.attrs.get("hash") == content_hash(feats)
                except OSError:  # a chunk that does not decompress
                    ok = False
                if ok:
                    self.hits += 1
                    return feats
                log.warning("%s: its cached features in %s are damaged; computing them again", audio_path, self.path)
                self.rebuilt += 1
            del self._grp[name]
        feats = np.asarray(compute(), dtype=np.float32)
        ds = self._grp.create_dataset(name, data=feats, compression="lzf")
        ds.attrs["stamp"] = stamp
        ds.attrs["hash"] = content_hash(feats)
        self.misses += 1
        return feats

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "FeatureCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
