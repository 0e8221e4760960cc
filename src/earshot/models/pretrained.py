"""Loading published checkpoints (PANNs, VGGish) and earshot's own into a registered model.

``create_model(name, n_classes, pretrained=SOURCE)`` calls :func:`load_pretrained`. ``SOURCE`` is a
file, or the name of a checkpoint that ``earshot download`` put in its cache.

- Files are read with ``torch.load(..., weights_only=True)``: a checkpoint holds tensors and plain
  data, never code. A truncated or foreign file is a one-line error naming it.
- The model family's converter maps the published names onto earshot's (PANNs' ``fc1`` becomes
  the head's hidden layer, its front-end buffers are checked and dropped, ...). An earshot
  checkpoint needs no mapping: it must be of the same model, and its head is reused when the
  class count matches.
- Then the check is strict: every parameter and buffer of the model must come from the file,
  except the ones the converter declares newly initialised (a new classifier for other
  classes), and every tensor in the file must land somewhere with the same shape. Anything else
  is an error listing the mismatches.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from earshot.errors import EarshotError

log = logging.getLogger("earshot")


@dataclass
class Converted:
    """A checkpoint in earshot's names: ``mapped`` tensors, ``dropped`` keys (with the reason) and the
    key prefixes of the model that stay at their initialisation (``fresh``)."""

    mapped: dict[str, torch.Tensor]
    dropped: dict[str, str] = field(default_factory=dict)
    fresh: tuple[str, ...] = ()


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The tensors of a checkpoint file and, for an earshot checkpoint, its ``earshot`` entry.
    Accepts a bare state dict, ``{'model': state_dict, ...}`` (PANNs), ``{'state_dict': ...}``
    (Lightning) and ``module.`` prefixes (DataParallel)."""
    path = Path(path)
    if not path.is_file():
        raise EarshotError(f"{path}: pretrained checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise EarshotError(f"{path}: refused: the file holds Python objects other than tensors and plain data, and "
                           f"earshot reads checkpoints with weights_only=True so that a file cannot run code "
                           f"({str(e).splitlines()[0]})") from None
    except Exception as e:  # truncated zip, not a checkpoint at all, ...
        raise EarshotError(f"{path}: cannot read this checkpoint ({type(e).__name__}: {str(e).splitlines()[0]}); "
                           "the file is truncated or not a PyTorch checkpoint: download it again") from None
    meta = obj.get("earshot") if isinstance(obj, dict) else None
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EarshotError(f"{path}: not a state dict (expected a dict of tensors, or one under 'model' or "
                           "'state_dict')")
    prefix = "model." if meta is not None else "module."
    if all(k.startswith(prefix) for k in obj):
        obj = {k[len(prefix):]: v for k, v in obj.items()}
    return obj, meta


def resolve_source(source: str | Path) -> Path:
    """A file path, or the cached file of a checkpoint name known to ``earshot download``."""
    from earshot.models.weights import WEIGHTS, cached

    p = Path(source)
    if p.exists() or str(source) not in WEIGHTS:
        return p
    path = cached(str(source))
    if path is None:
        raise EarshotError(f"pretrained={source}: not downloaded yet; run `earshot download {source}` "
                           f"(or pass the path of the file: {WEIGHTS[str(source)].filename})")
    return path


def _convert_earshot(state: dict[str, torch.Tensor], meta: dict[str, Any], model: Any) -> Converted:
    name = meta.get("model", {}).get("name")
    if name != model.name:
        raise EarshotError(f"the checkpoint is an earshot {name!r} model, not {model.name!r}: set model.name={name}")
    theirs = meta["model"].get("frontend", {})
    ours = model.describe()["frontend"]
    diff = {k: (theirs.get(k), v) for k, v in ours.items() if k in theirs and theirs[k] != v}
    if diff:
        raise EarshotError(f"the checkpoint's front-end differs from the model's: {diff} (checkpoint, model)")
    own = model.state_dict()
    n = len(meta.get("task", {}).get("labels") or [])
    heads = {k: v for k, v in state.items() if k.startswith("head.")}
    same_head = meta["model"].get("head") == model.head_args and all(
        k in own and own[k].shape == v.shape for k, v in heads.items())
    mapped = {k: v for k, v in state.items() if same_head or not k.startswith("head.")}
    dropped = {} if same_head else {k: f"the checkpoint's head ({n} classes, {meta['model'].get('head')}): this "
                                       "model gets a new one" for k in heads}
    return Converted(mapped, dropped, () if same_head else ("head.",))


def load_pretrained(model: Any, source: str | Path) -> Converted:
    """Load ``source`` into ``model`` (an :class:`~earshot.models.registry.AudioModel`), strictly."""
    from earshot.models.registry import model_spec

    path = resolve_source(source)
    state, meta = read_state_dict(path)
    if meta is not None:
        conv = _convert_earshot(state, meta, model)
    else:
        spec = model_spec(model.name)
        if spec.convert is None:
            raise EarshotError(f"{path}: {model.name} has no published checkpoint format; pass an earshot checkpoint "
                               "of the same model, or use a model that has one (panns_*, vggish)")
        conv = spec.convert(state, model)
        if not isinstance(conv, Converted):
            conv = Converted(*conv)
    own = model.state_dict()
    expected = {k for k in own if not k.startswith(conv.fresh) and not (meta is None and k.startswith("input."))}
    optional = {k for k in expected if k.endswith("num_batches_tracked")}  # older PyTorch did not save them
    missing = sorted(expected - set(conv.mapped) - optional)
    unexpected = sorted(set(conv.mapped) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}"
                    for k, v in conv.mapped.items() if k in own and own[k].shape != v.shape)
    if missing or unexpected or shapes:
        def some(xs: list[str]) -> str:
            return ", ".join(xs[:8]) + (f" and {len(xs) - 8} more" if len(xs) > 8 else "")

        parts = [f"{len(missing)} missing from the checkpoint ({some(missing)})" if missing else "",
                 f"{len(unexpected)} unexpected ({some(unexpected)})" if unexpected else "",
                 f"{len(shapes)} of another shape ({some(shapes)})" if shapes else ""]
        raise EarshotError(f"{path} does not fit {model.name}: " + "; ".join(p for p in parts if p) +
                           ". Is it a checkpoint of another architecture?")
    model.load_state_dict(conv.mapped, strict=False)
    log.info("loaded %d tensors from %s into %s%s", len(conv.mapped), path, model.name,
             f"; left out: {sorted(conv.dropped)}" if conv.dropped else "")
    return conv
