"""``earshot report RUN_DIR``: one self-contained HTML page (images and audio inlined)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import soundfile as sf  # noqa: E402
import yaml  # noqa: E402

from earshot.errors import EarshotError  # noqa: E402

CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}pre{background:#f7f7f7;padding:.8em;overflow:auto;max-height:420px;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;padding:.6em;width:330px}
.card img{width:100%}.bad{color:#b3261e}img.fig{max-width:100%}"""


def _png(fig: plt.Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _file_png(path: Path) -> str | None:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode() if path.exists() else None


def _curves(run: Path, headline: list[str]) -> str | None:
    """Training loss, validation loss and the validation metrics per epoch."""
    files = sorted(run.glob("logs/**/metrics.csv"))
    if not files:
        return None
    rows: list[dict[str, str]] = []
    for f in files:
        with open(f) as fh:
            rows.extend(csv.DictReader(fh))
    series: dict[str, dict[int, float]] = {}
    for r in rows:
        for k, v in r.items():
            if v and k not in ("epoch", "step") and not k.endswith("_step"):
                series.setdefault(k, {})[int(r["epoch"])] = float(v)
    if not series:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.6))
    for k in ("train/loss_epoch", "val/loss"):
        if k in series:
            e = sorted(series[k])
            a1.plot(e, [series[k][i] for i in e], marker=".", label=k.replace("_epoch", ""))
    for k in [f"val/{h}" for h in headline]:
        if k in series:
            e = sorted(series[k])
            a2.plot(e, [series[k][i] for i in e], marker=".", label=k)
    a1.set(xlabel="epoch", ylabel="loss", title="loss")
    a2.set(xlabel="epoch", title="validation metrics", ylim=(0, 1.02))
    for a in (a1, a2):
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _logmel_and_audio(path: str, frontend: dict[str, Any], max_seconds: float = 10.0) -> tuple[str, str]:
    """A log-mel image and a WAV data URI (mono, at the model's rate, at most ``max_seconds``)."""
    import torch

    from earshot.audio.io import load_audio
    from earshot.features.frontends import LogMel, LogMelConfig

    cfg = LogMelConfig(**{k: v for k, v in frontend.items() if k == "sample_rate"}) if "n_mels" not in frontend \
        else LogMelConfig(**frontend)  # a waveform model: show a default log-mel at its rate
    x, sr = load_audio(path, cfg.sample_rate)
    x = x[: int(max_seconds * sr)]
    with torch.no_grad():
        mel = LogMel(cfg)(torch.from_numpy(x)[None])[0].numpy()  # (T, F)
    fig, ax = plt.subplots(figsize=(4.2, 2.0))
    ax.imshow(mel.T, origin="lower", aspect="auto", cmap="magma",
              extent=(0, len(x) / sr, 0, cfg.n_mels), vmin=mel.max() - 80, vmax=mel.max())
    ax.set(xlabel="s", ylabel="mel band")
    fig.tight_layout()
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return _png(fig), "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()


def _table(rows: list[list[Any]], header: list[str]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else "–" if v is None else str(v)


def build_report(run_dir: str | Path, out: str | Path | None = None, n_wrong: int = 8) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``out``) and return its path."""
    run = Path(run_dir)
    if not (run / "metrics.json").exists():
        raise EarshotError(f"{run}: not a finished run folder (no metrics.json)")
    metrics = json.loads((run / "metrics.json").read_text())
    cfg_text = (run / "config.yaml").read_text() if (run / "config.yaml").exists() else ""
    cfg = yaml.safe_load(cfg_text) if cfg_text else {}
    parts = [f"<h1>earshot run: {html.escape(run.name)}</h1>", *_data_section(run, cfg),
             *_metrics_section(run, metrics), *_wrong_section(run, n_wrong),
             f"<h2>Config</h2><pre>{html.escape(cfg_text)}</pre>"]
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>earshot report {html.escape(run.name)}"
            f"</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>")
    out = Path(out) if out else run / "report.html"
    out.write_text(page)
    return out


def _data_section(run: Path, cfg: dict[str, Any]) -> list[str]:
    """The manifest's summary, and the clips skipped or noted during training."""
    parts = ["<h2>Data</h2>"]
    manifest = Path(cfg.get("data", {}).get("manifest", "")) if cfg else None
    if manifest and manifest.exists():
        from earshot.data.manifest import read_manifest, summarize

        s = summarize(read_manifest(manifest))
        parts.append(_table([[manifest, s["clips"], s["classes"], f"{s['hours']:.3f}", s["splits"]]],
                            ["manifest", "clips", "classes", "hours", "splits"]))
    else:
        parts.append(f"<p>manifest {html.escape(str(manifest))} not found from here</p>")
    skipped = json.loads((run / "skipped.json").read_text()) if (run / "skipped.json").exists() else {}
    if skipped.get("count"):
        parts.append(f"<p class=bad>{skipped['count']} clip(s) skipped during training:</p>"
                     + _table([[s["path"], s["reason"]] for s in skipped["skipped"][:50]], ["file", "reason"]))
    parts += [f"<p>note: {html.escape(n['path'])}: {html.escape(n['reason'])}</p>" for n in skipped.get("notes", [])[:20]]
    return parts


def _metrics_section(run: Path, metrics: dict[str, Any]) -> list[str]:
    """Headline metrics, training curves, the task's per-class table and its plots."""
    task = _checkpoint_task(run)
    parts = [f"<h2>Metrics ({html.escape(str(metrics.get('split')))} split, {metrics.get('n_clips')} clips)</h2>"]
    keys = [k for k in (*metrics.get("headline", []), "train_seconds", "epochs") if k in metrics]
    parts.append(_table([[_fmt(metrics[k]) for k in keys]], keys))
    curves = _curves(run, metrics.get("headline", []))
    if curves:
        parts.append(f"<h2>Training curves</h2><img class=fig src='{curves}' alt='training curves'>")
    if task is not None:
        header, rows = task.per_class_table(metrics)
        parts.append("<h2>Per class</h2>" + _table([[_fmt(v) for v in r] for r in rows], header))
    for png in sorted(run.glob("*.png")):
        title = png.stem.replace("_", " ").replace("auc ap", "ROC-AUC and AP")
        title = title[:1].upper() + title[1:]
        parts.append(f"<h3>{html.escape(title)}</h3><img class=fig src='{_file_png(png)}' alt='{html.escape(title)}'>")
    pictures = sorted((run / "events").glob("*.png"))[:8]  # detection: log-mel, frame probabilities, events
    if pictures:
        parts.append("<h2>Events (reference above, predicted below in each row)</h2>")
        parts += [f"<h3>{html.escape(p.stem)}</h3><img class=fig src='{_file_png(p)}' alt='events of {html.escape(p.stem)}'>"
                  for p in pictures]
    return parts


def _wrong_section(run: Path, n_wrong: int) -> list[str]:
    """The clips the task judged wrong, most confident first, with log-mel images and audio."""
    preds_file = run / "predictions.jsonl"
    if not preds_file.exists():
        return []
    preds = [json.loads(line) for line in preds_file.read_text().splitlines() if line.strip()]
    wrong = sorted((p for p in preds if not p["correct"]), key=lambda p: -p["confidence"])
    parts = [f"<h2>Most confidently wrong ({len(wrong)} wrong of {len(preds)})</h2><div class=grid>"]
    frontend = _checkpoint_meta(run, "model", "frontend") or {}
    for p in wrong[:n_wrong]:
        try:
            img, audio = _logmel_and_audio(p["path"], frontend)
            media = f"<img src='{img}' alt='log-mel'><audio controls src='{audio}'></audio>"
        except Exception as e:  # the file may have moved since training
            media = f"<p class=bad>audio unavailable: {html.escape(str(e))}</p>"
        top = ", ".join(f"{html.escape(lab)} {s:.2f}" for lab, s in p["top"][:3]) or "nothing above threshold"
        parts.append(f"<div class=card><b>{html.escape(Path(p['path']).name)}</b><br>true: "
                     f"<b>{html.escape(', '.join(p['labels']) or '(none)')}</b><br>predicted: {top}{media}</div>")
    return parts + ["</div>"]


def _checkpoint_meta(run: Path, *keys: str) -> Any:
    """A value from the best checkpoint's ``earshot`` entry, or None."""
    from earshot.checkpoint import read

    try:
        meta = read(run / "checkpoints" / "best.ckpt")["earshot"]
    except EarshotError:
        return None
    for k in keys:
        meta = meta[k]
    return meta


def _checkpoint_task(run: Path) -> Any:
    from earshot.tasks import create_task

    t = _checkpoint_meta(run, "task")
    if t is None:
        return None
    t = dict(t)
    return create_task(t.pop("name"), t.pop("labels"), **t)
