"""Published checkpoints: where each file lives, its checksum, and a resumable, verified download.

``earshot download panns_cnn14`` puts ``Cnn14_mAP=0.431.pth`` in the cache folder
(``$EARSHOT_CACHE``, else pooch's per-user cache, e.g. ``~/.cache/earshot``) and
``create_model("panns_cnn14", n, pretrained="panns_cnn14")`` then finds it there.

- The download goes through pooch. Bytes first land in ``<file>.part`` next to the target, and an
  interrupted download resumes from there (an HTTP ``Range`` request).
- The checksum is verified before the file takes its final name. On a mismatch, the bytes are
  deleted (no half file and no bad file is left) and the error names both checksums.
- Checksums are the ones the publishers give: Zenodo's MD5 for PANNs, and for VGGish the SHA-256
  prefix that torch.hub writes into the file name (``vggish-10086976.pth``).
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earshot.errors import EarshotError
from earshot.paths import cache_dir

_ZENODO = "https://zenodo.org/record/3987831/files/"


@dataclass(frozen=True)
class Weights:
    """One published checkpoint file. ``checksum`` is ``md5:<hex>``, ``sha256:<hex>`` or
    ``sha256-prefix:<hex>`` (only the start of the digest is published)."""

    model: str
    url: str
    filename: str
    checksum: str
    source: str


WEIGHTS: dict[str, Weights] = {
    "panns_cnn6": Weights("panns_cnn6", _ZENODO + "Cnn6_mAP%3D0.343.pth?download=1", "Cnn6_mAP=0.343.pth",
                          "md5:e25e26b84585b14c7754c91e48efc9be", "Zenodo record 3987831 (Kong et al., PANNs)"),
    "panns_cnn10": Weights("panns_cnn10", _ZENODO + "Cnn10_mAP%3D0.380.pth?download=1", "Cnn10_mAP=0.380.pth",
                           "md5:bfb1f1f9968938fa8ef4012b8471f5f6", "Zenodo record 3987831 (Kong et al., PANNs)"),
    "panns_cnn14": Weights("panns_cnn14", _ZENODO + "Cnn14_mAP%3D0.431.pth?download=1", "Cnn14_mAP=0.431.pth",
                           "md5:541141fa2ee191a88f24a3219fff024e", "Zenodo record 3987831 (Kong et al., PANNs)"),
    "panns_mobilenetv1": Weights("panns_mobilenetv1", _ZENODO + "MobileNetV1_mAP%3D0.389.pth?download=1",
                                 "MobileNetV1_mAP=0.389.pth", "md5:a419303e1c88aa1b9d2ac3811563d371",
                                 "Zenodo record 3987831 (Kong et al., PANNs)"),
    "vggish": Weights("vggish", "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
                      "vggish-10086976.pth", "sha256-prefix:10086976", "the torchvggish port of VGGish (v0.1 release)"),
}
# panns_mobilenetv2 (MobileNetV2_mAP=0.383.pth, same Zenodo record) is left out: earshot knows no
# published checksum for it. Download it yourself and pass the file: pretrained=path/to/file.


def cached(name: str, cache: str | Path | None = None) -> Path | None:
    """The downloaded file of ``name``, or None."""
    path = Path(cache or cache_dir()) / WEIGHTS[name].filename
    return path if path.is_file() else None


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, checksum: str) -> None:
    """Raise :class:`EarshotError` unless ``path`` has ``checksum``."""
    kind, _, want = checksum.partition(":")
    algorithm = "sha256" if kind.startswith("sha256") else kind
    got = file_digest(path, algorithm)
    ok = got.startswith(want.lower()) if kind == "sha256-prefix" else got == want.lower()
    if not ok:
        raise EarshotError(f"checksum mismatch: expected {checksum}, got {algorithm}:{got}")


class ResumableDownloader:
    """A pooch downloader that keeps partial bytes in ``part`` and resumes with an HTTP Range
    request; pooch then checks the hash of the finished file."""

    def __init__(self, part: Path, progress: bool = True, timeout: float = 60.0):
        self.part = part
        self.progress = progress
        self.timeout = timeout

    def __call__(self, url: str, output_file: Any, pooch_obj: Any, check_only: bool = False) -> bool | None:
        if check_only:
            return True
        have = self.part.stat().st_size if self.part.exists() else 0
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                resumed = have and r.status == 206
                total = int(r.headers.get("Content-Length") or 0) + (have if resumed else 0)
                with open(self.part, "ab" if resumed else "wb") as f:
                    done = have if resumed else 0
                    for block in iter(lambda: r.read(1 << 20), b""):
                        f.write(block)
                        done += len(block)
                        if self.progress and total:
                            print(f"\r  {done / 1e6:.1f} / {total / 1e6:.1f} MB", end="", flush=True)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:  # nothing left to fetch: the part file is complete
                pass
            else:
                raise EarshotError(f"{url}: HTTP {e.code} {e.reason}") from None
        except OSError as e:
            raise EarshotError(f"{url}: download interrupted ({e}); run the command again to resume from "
                               f"{self.part.stat().st_size if self.part.exists() else 0} bytes") from None
        if self.progress:
            print(flush=True)
        shutil.copyfile(self.part, output_file if isinstance(output_file, (str, Path)) else output_file.name)
        return None


def download(name: str, cache: str | Path | None = None, progress: bool = True) -> Path:
    """Fetch the checkpoint ``name`` into the cache (if not there yet) and return its path."""
    import pooch

    if name not in WEIGHTS:
        known = ", ".join(sorted(WEIGHTS))
        raise EarshotError(f"no published checkpoint named {name!r}; known: {known}"
                           + (" (panns_mobilenetv2: no published checksum; download it yourself and pass the file)"
                              if name == "panns_mobilenetv2" else ""))
    w = WEIGHTS[name]
    folder = Path(cache or cache_dir())
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / w.filename
    if target.is_file():
        verify(target, w.checksum)
        return target
    part = folder / (w.filename + ".part")
    pooch_hash = None if w.checksum.startswith("sha256-prefix") else w.checksum
    try:
        got = Path(pooch.retrieve(w.url, known_hash=pooch_hash, fname=w.filename, path=folder,
                                  downloader=ResumableDownloader(part, progress), progressbar=False))
        if pooch_hash is None:  # pooch cannot check a digest prefix: check it before keeping the file
            try:
                verify(got, w.checksum)
            except EarshotError:
                got.unlink(missing_ok=True)
                raise
    except ValueError as e:  # pooch's hash mismatch: it has already removed its temporary file
        part.unlink(missing_ok=True)
        raise EarshotError(f"{name}: downloaded file failed its checksum and was deleted ({e})") from None
    except EarshotError as e:
        if "checksum" in str(e):
            part.unlink(missing_ok=True)
            raise EarshotError(f"{name}: downloaded file failed its checksum and was deleted ({e})") from None
        raise
    part.unlink(missing_ok=True)
    return got
