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
from matplotlib.ticker import MaxNLocator  # noqa: E402
import soundfile as sf  # noqa: E402
import yaml  # noqa: E402

from earshot.atomic import read_json  # noqa: E402
from earshot.errors import EarshotError  # noqa: E402

CSS = """:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2430;--mute:#5d6778;--line:#e2e6ec;--accent:#2f6fde;
--accent2:#e8f0fd;--bad:#b3261e;--radius:10px}
*{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.4em 1em;padding:1em clamp(1em,4vw,2.5em);
border-bottom:1px solid var(--line);background:var(--card)}
header h1{margin:0;font-size:1.35em}header h1 span{color:var(--accent)}header .meta{color:var(--mute);font-size:.92em}
main{max-width:1180px;margin:0 auto;padding:1.2em clamp(.8em,3vw,2em) 3em;display:grid;gap:1.2em}
section{background:var(--card);border:1px solid var(--line);border-radius:var(--radius);padding:1.1em 1.2em;
overflow-x:auto}
h2{margin:0 0 .7em;font-size:1.1em}h3{font-size:.95em;margin:1.2em 0 .4em;color:var(--mute)}
.tiles{display:flex;flex-wrap:wrap;gap:.8em}.tile{border:1px solid var(--line);border-radius:8px;padding:.5em .9em;
min-width:8.5em}.tile b{display:block;font-size:1.5em;font-variant-numeric:tabular-nums}.tile span{color:var(--mute);
font-size:.85em}
table{border-collapse:collapse;margin:.3em 0;font-variant-numeric:tabular-nums}
td,th{border-bottom:1px solid var(--line);padding:4px 12px 4px 0;text-align:left}th{color:var(--mute);font-weight:600}
pre{background:var(--bg);padding:.8em;border-radius:8px;overflow:auto;max-height:420px;font-size:12px}
details summary{cursor:pointer;color:var(--accent)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1em}
.card{border:1px solid var(--line);border-radius:8px;padding:.7em}.card img{width:100%}.card audio{width:100%}
.bad{color:var(--bad)}.mute{color:var(--mute)}img.fig{max-width:100%;height:auto}"""


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
    loss_keys = [k for k in ("train/loss_epoch", "val/loss") if k in series]
    val_keys = [k for k in (f"val/{h}" for h in headline) if k in series]
    panels = [(keys, title) for keys, title in ((loss_keys, "loss"), (val_keys, "validation metrics")) if keys]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    for ax, (keys, title) in zip(axes[0], panels):
        for k in keys:
            e = sorted(series[k])
            ax.plot(e, [series[k][i] for i in e], marker=".", label=k.replace("_epoch", ""))
        ax.set(xlabel="epoch", title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title == "loss":
            ax.set_ylabel("loss")
        else:
            ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
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


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 17 s``, ``2 h 05 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def counts_text(counts: dict[Any, int], name: str = "") -> str:
    """``train 300 · val 50 · test 50`` (a split of None reads "no split")."""
    def key(k: Any) -> str:
        return "no split" if k in (None, "None") else f"{name}{k}"

    return " · ".join(f"{key(k)} {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))


def build_report(run_dir: str | Path, out: str | Path | None = None, n_wrong: int = 8) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``out``) and return its path: one page with only what the
    run has (no validation plot without validation, no table without rows)."""
    from earshot.atomic import atomic_write_text

    run = Path(run_dir)
    if not (run / "metrics.json").exists():
        raise EarshotError(f"{run}: not a finished run folder (no metrics.json)")
    metrics = read_json(run / "metrics.json", "the run's metrics")
    cfg_text = (run / "config.yaml").read_text() if (run / "config.yaml").exists() else ""
    cfg = yaml.safe_load(cfg_text) if cfg_text else {}
    model = (cfg.get("model") or {}).get("name", "") if cfg else ""
    meta = " · ".join(x for x in (str(metrics.get("task", "")), model) if x)
    sections = [*_metrics_section(run, metrics), *_data_section(run, cfg), *_wrong_section(run, n_wrong)]
    if cfg_text:
        sections.append(f"<section><h2>Config</h2><details><summary>config.yaml</summary><pre>{html.escape(cfg_text)}"
                        "</pre></details></section>")
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content='width=device-width, initial-scale=1'><title>earshot · {html.escape(run.name)}</title>"
            f"<style>{CSS}</style></head><body><header><h1>ear<span>shot</span></h1><b>{html.escape(run.name)}</b>"
            f"<span class=meta>{html.escape(meta)}</span></header><main>{''.join(sections)}</main></body></html>")
    out = Path(out) if out else run / "report.html"
    atomic_write_text(out, page)
    return out


def _data_section(run: Path, cfg: dict[str, Any]) -> list[str]:
    """The manifest's summary, and the clips skipped or noted during training."""
    parts = ["<section><h2>Data</h2>"]
    manifest = Path(cfg.get("data", {}).get("manifest", "")) if cfg else None
    if manifest and manifest.is_file():
        from earshot.data.manifest import read_manifest, summarize

        s = summarize(read_manifest(manifest))
        rows = [["manifest", manifest], ["clips", s["clips"]], ["classes", s["classes"]],
                ["audio", duration_text(s["hours"] * 3600)], ["splits", counts_text(s["splits"])]]
        if s["folds"]:
            rows.append(["folds", counts_text(s["folds"], "fold ")])
        parts.append(_table(rows, ["", ""]).replace("<tr><th></th><th></th></tr>", ""))
    else:
        parts.append(f"<p class=mute>The manifest {html.escape(str(manifest))} is not found from here.</p>")
    skipped = read_json(run / "skipped.json", "the skip report") if (run / "skipped.json").exists() else {}
    if skipped.get("count"):
        parts.append(f"<p class=bad>{skipped['count']} clip(s) skipped during training:</p>"
                     + _table([[s["path"], s["reason"]] for s in skipped["skipped"][:50]], ["file", "reason"]))
    parts += [f"<p class=mute>note: {html.escape(n['path'])}: {html.escape(n['reason'])}</p>"
              for n in skipped.get("notes", [])[:20]]
    return parts + ["</section>"]


def _tiles(metrics: dict[str, Any]) -> str:
    """The headline metrics, the training time and the epochs, as large figures."""
    tiles = [(f"{metrics[k]:.3f}" if isinstance(metrics[k], float) else _fmt(metrics[k]), k)
             for k in metrics.get("headline", []) if k in metrics]
    if isinstance(metrics.get("train_seconds"), (int, float)):
        tiles.append((duration_text(metrics["train_seconds"]), "training time"))
    if metrics.get("epochs") is not None:
        tiles.append((str(metrics["epochs"]), "epochs"))
    return "<div class=tiles>" + "".join(f"<div class=tile><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>"
                                         for v, k in tiles) + "</div>"


def _metrics_section(run: Path, metrics: dict[str, Any]) -> list[str]:
    """Headline metrics, training curves, the task's per-class table and its plots."""
    task = _checkpoint_task(run)
    split = metrics.get("split")
    where = f"{html.escape(str(split))} split, {metrics.get('n_clips')} clips" if split else f"{metrics.get('n_clips')} clips"
    parts = [f"<section><h2>Results <span class=mute>({where})</span></h2>{_tiles(metrics)}"]
    if metrics.get("selection"):
        parts.append(f"<p class=mute>Checkpoint: {html.escape(str(metrics['selection']))}.</p>")
    parts.append("</section>")
    curves = _curves(run, metrics.get("headline", []))
    if curves:
        parts.append(f"<section><h2>Training curves</h2><img class=fig src='{curves}' alt='training curves'></section>")
    if task is not None:
        header, rows = task.per_class_table(metrics)
        if rows:
            parts.append("<section><h2>Per class</h2>" + _table([[_fmt(v) for v in r] for r in rows], header)
                         + "</section>")
    plots = sorted(run.glob("*.png"))
    if plots:
        parts.append("<section><h2>Plots</h2>")
        for png in plots:
            title = png.stem.replace("_", " ").replace("auc ap", "ROC-AUC and AP")
            title = title[:1].upper() + title[1:]
            parts.append(f"<h3>{html.escape(title)}</h3><img class=fig src='{_file_png(png)}' alt='{html.escape(title)}'>")
        parts.append("</section>")
    pictures = sorted((run / "events").glob("*.png"))[:8]  # detection: log-mel, frame probabilities, events
    if pictures:
        parts.append("<section><h2>Events <span class=mute>(reference above, predicted below in each row)</span></h2>")
        parts += [f"<h3>{html.escape(p.stem)}</h3><img class=fig src='{_file_png(p)}' alt='events of {html.escape(p.stem)}'>"
                  for p in pictures]
        parts.append("</section>")
    return parts


def _wrong_section(run: Path, n_wrong: int) -> list[str]:
    """The clips the task judged wrong, most confident first, with log-mel images and audio."""
    preds_file = run / "predictions.jsonl"
    if not preds_file.exists():
        return []
    preds = [json.loads(line) for line in preds_file.read_text().splitlines() if line.strip()]
    wrong = sorted((p for p in preds if not p["correct"]), key=lambda p: -p["confidence"])
    if not wrong:
        return [f"<section><h2>Most confidently wrong</h2><p>None: all {len(preds)} clips are right.</p></section>"]
    parts = [f"<section><h2>Most confidently wrong <span class=mute>({len(wrong)} wrong of {len(preds)})</span></h2>"
             "<div class=grid>"]
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
    return parts + ["</div></section>"]


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
