"""Where earshot keeps files of its own outside a run: the user cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$EARSHOT_CACHE``, else the per-user cache folder pooch picks for ``earshot``
    (``~/.cache/earshot`` on Linux): downloaded weights, the compiled front-end kernels. Without
    pooch (it comes with the ``pretrained`` extra), ``$XDG_CACHE_HOME/earshot`` or ``~/.cache/earshot``."""
    if os.environ.get("EARSHOT_CACHE"):
        return Path(os.environ["EARSHOT_CACHE"])
    try:
        import pooch
    except ImportError:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "earshot"
    return Path(pooch.os_cache("earshot"))
