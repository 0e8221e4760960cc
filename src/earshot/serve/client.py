"""``earshot client URL FILES...``: the local tester of seed 003's service. Posts each file to a
running ``earshot serve`` and prints the predictions (or events) as a table."""

from __future__ import annotations

import json
import uuid
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence


def post_files(url: str, paths: Sequence[str | Path], timeout: float = 60.0) -> dict[str, Any]:
    """One multipart request with every file; the JSON reply (an error reply included)."""
    base = url.rstrip("/")
    info = json.loads(urllib.request.urlopen(f"{base}/v1/model", timeout=timeout).read())
    boundary = uuid.uuid4().hex
    body = b""
    for p in paths:
        p = Path(p)
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{p.name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode() + p.read_bytes() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{base}/v1/{info['verb']}", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return {"status": r.status, **json.loads(r.read())}
    except urllib.error.HTTPError as e:
        return {"status": e.code, **json.loads(e.read() or b"{}")}


def table(reply: dict[str, Any]) -> list[str]:
    lines = []
    if "results" not in reply:
        return [f"HTTP {reply['status']}: {reply.get('detail')}"]
    for r in reply["results"]:
        if "error" in r:
            lines.append(f"{r['file']:30s}  error: {r['error']}")
        elif "events" in r:
            ev = ", ".join(f"{e['label']} {e['onset']:.2f}-{e['offset']:.2f}" for e in r["events"]) or "no events"
            lines.append(f"{r['file']:30s}  {ev}")
        else:
            top = "  ".join(f"{t['label']} {t['score']:.3f}" for t in r["top"]) or "(no label above threshold)"
            lines.append(f"{r['file']:30s}  {top}")
    return lines
