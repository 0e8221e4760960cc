"""HTTP service for a checkpoint (``earshot serve``): FastAPI, OpenAPI docs at ``/docs``.

Endpoints:

- ``GET /ping``: 200 once the model is loaded (SageMaker's health check).
- ``POST /invocations``: SageMaker's inference contract; the body is the raw audio bytes
  (``audio/wav``, ``audio/flac``, ``audio/ogg``, ``audio/mpeg`` or ``application/octet-stream``),
  the reply ``{labels, probabilities}`` (plus ``top``, the task's decoded labels).
- ``POST /v1/predict``: multipart upload of one or more ``files``; per file the top-k labels (a
  tagger's tags above threshold), or that file's error.
- ``POST /v1/detect``: the same for a detection checkpoint: events per file.
- ``GET /v1/model``: labels, task, front-end settings, earshot version and the upload limits.
- ``GET /``: a page to try the model (upload or record; waveform, log-mel, scores, events);
  ``POST /v1/analyze`` gives it one file's scores with the pictures' data.

Bad input never gets a 500: an upload past ``max_upload_mb`` is 413 (checked on the declared
length and while reading), a body slower than ``body_timeout_s`` is 408 and frees its slot, an
unknown content type is 415, and audio that does not decode (empty, truncated, not audio, an absurd
sample rate) or is longer than ``max_seconds`` is 422 with the decoder's reason. Uploaded bytes
go to a temporary file with a name of our own: a client's file name is only echoed back, never
used as a path. The model runs under a lock, one request at a time.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, File, HTTPException, Request, UploadFile  # the [serve] extra
from fastapi.responses import HTMLResponse, JSONResponse

from earshot.errors import AudioError, EarshotError

AUDIO_TYPES = {"audio/wav", "audio/x-wav", "audio/wave", "audio/flac", "audio/x-flac", "audio/ogg", "audio/mpeg",
               "audio/mp3", "application/octet-stream"}
MAX_SAMPLE_RATE = 384_000


@dataclass
class ServeLimits:
    max_upload_mb: float = 20.0  # per request
    max_seconds: float = 600.0  # of audio per file
    body_timeout_s: float = 30.0  # the whole body must arrive within this
    max_files: int = 16  # per multipart request


class LimitBody:
    """ASGI middleware: 413 past the size limit (declared or read), 408 when the body is too slow."""

    def __init__(self, app: Any, limits: ServeLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        cap = int(self.limits.max_upload_mb * 1e6)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            return await _error(send, 413, f"upload of {int(declared) / 1e6:.1f} MB is over the "
                                           f"{self.limits.max_upload_mb:g} MB limit")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_s
        seen = 0
        failed: list[tuple[int, str]] = []

        async def limited() -> dict:
            nonlocal seen
            try:
                msg = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                failed.append((408, f"the request body did not arrive within {self.limits.body_timeout_s:g} s"))
                raise _Abort() from None
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > cap:
                    failed.append((413, f"upload is over the {self.limits.max_upload_mb:g} MB limit"))
                    raise _Abort()
            return msg

        started = False

        async def tracking_send(msg: dict) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited, tracking_send)
        except _Abort:
            if not started:
                await _error(send, *failed[0])


class _Abort(Exception):
    pass


async def _error(send: Any, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def decode_upload(data: bytes, max_seconds: float) -> tuple[np.ndarray, int]:
    """Audio from uploaded bytes, through the same checks as files (empty, truncated WAV, not
    audio); raises :class:`AudioError` naming the upload, never the client's file name as a path."""
    import soundfile as sf

    from earshot.audio.io import load_audio

    if not data:
        raise AudioError("upload", "empty body (0 bytes)")
    with tempfile.TemporaryDirectory(prefix="earshot-serve-") as d:
        suffix = ".wav" if data[:4] == b"RIFF" else ".audio"
        path = Path(d) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            info = sf.info(str(path))
        except Exception as e:
            raise AudioError("upload", f"not a readable audio file ({str(e).splitlines()[0][:200]})") from None
        if not 0 < info.samplerate <= MAX_SAMPLE_RATE:
            raise AudioError("upload", f"sample rate {info.samplerate} Hz is outside 1..{MAX_SAMPLE_RATE} Hz")
        if info.frames / info.samplerate > max_seconds:
            raise AudioError("upload", f"{info.frames / info.samplerate:.0f} s of audio is over the "
                                       f"{max_seconds:g} s limit")
        x, sr = load_audio(path, None, mono=False)
    return x, sr


def run_model(pred: Any, x: np.ndarray, sr: int, name: str, verb: str) -> dict[str, Any]:
    """One file through the predictor: decoded labels and probabilities, or events."""
    if verb == "detect":
        return pred.detect_array(x, sr, source=name).to_dict()
    p = pred.predict_array(x, sr, source=name)
    return {**p.to_dict(), "probabilities": [round(float(v), 6) for v in p.probs]}


def describe_model(pred: Any) -> dict[str, Any]:
    """What ``GET /v1/model`` answers."""
    from earshot import __version__

    task = pred.task
    return {"labels": getattr(task, "out_labels", task.labels), "task": task.name, "model": pred.model.name,
            "verb": task.verb, "sample_rate": pred.sample_rate, "frontend": pred.model.describe()["frontend"],
            "window_seconds": pred.win / pred.sample_rate, "earshot_version": __version__}


class Service:
    """The predictor behind the routes: one request at a time in the model, uploads decoded off the
    event loop."""

    def __init__(self, pred: Any, limits: ServeLimits):
        self.pred = pred
        self.task = pred.task
        self.limits = limits
        self.lock = threading.Lock()

    def _run(self, x: np.ndarray, sr: int, name: str, verb: str) -> dict[str, Any]:
        with self.lock:
            return run_model(self.pred, x, sr, name, verb)

    async def one(self, data: bytes, name: str, verb: str) -> dict[str, Any]:
        x, sr = await asyncio.to_thread(decode_upload, data, self.limits.max_seconds)
        return await asyncio.to_thread(self._run, x, sr, name, verb)

    async def analyze(self, file: UploadFile | None) -> dict[str, Any]:
        """The web page's data for one upload (see :mod:`earshot.serve.page`)."""
        from earshot.serve.page import analyze

        if file is None:
            raise HTTPException(422, "no file in the upload (multipart field 'file')")
        name = os.path.basename(file.filename or "upload")[:200]
        x, sr = await asyncio.to_thread(decode_upload, await file.read(), self.limits.max_seconds)

        def run() -> dict[str, Any]:
            with self.lock:
                return analyze(self.pred, x, sr, name)

        return await asyncio.to_thread(run)

    async def invocations(self, request: Request) -> dict[str, Any]:
        ctype = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype not in AUDIO_TYPES:
            raise HTTPException(415, f"content type {ctype or 'none'!r} is not audio; send the file's bytes as one of "
                                     f"{sorted(AUDIO_TYPES)}")
        out = await self.one(await request.body(), "body", self.task.verb)
        if self.task.verb == "detect":
            return out
        return {"labels": self.pred.labels, "probabilities": out["probabilities"], "top": out["top"],
                "notes": out["notes"]}

    async def files(self, files: list[UploadFile], verb: str) -> Any:
        if self.task.verb != verb:
            raise HTTPException(422, f"this is a {self.task.name} checkpoint: POST /v1/{self.task.verb}")
        if not files:
            raise HTTPException(422, "no files in the upload (multipart field 'files')")
        if len(files) > self.limits.max_files:
            raise HTTPException(413, f"{len(files)} files is over the limit of {self.limits.max_files} per request")
        results = []
        for f in files:
            name = os.path.basename(f.filename or "upload")[:200]  # echoed back only, never a path
            try:
                results.append({**await self.one(await f.read(), name, verb), "file": name})
            except AudioError as e:
                results.append({"file": name, "error": e.reason})
        if all("error" in r for r in results):
            return JSONResponse({"detail": "no upload could be decoded", "results": results}, status_code=422)
        return {"results": results}


def create_app(checkpoint: str | Path, limits: ServeLimits | None = None, device: str | None = None,
               precision: str = "auto") -> Any:
    """The FastAPI app serving ``checkpoint``."""
    from earshot import __version__
    from earshot.inference.predictor import Predictor

    limits = limits or ServeLimits()
    svc = Service(Predictor.load(checkpoint, device, precision), limits)
    app = FastAPI(title="earshot", version=__version__,
                  description=f"{svc.task.name} with {svc.pred.model.name}: {len(svc.pred.labels)} labels")

    @app.exception_handler(EarshotError)
    async def earshot_error(request: Any, exc: EarshotError) -> JSONResponse:  # bad input: never a 500
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        from earshot.serve.page import page_html

        return page_html()

    @app.get("/v1/model")
    def model_info() -> dict[str, Any]:
        return {**describe_model(svc.pred), "limits": asdict(limits)}

    @app.post("/v1/analyze")
    async def analyze(file: UploadFile | None = File(default=None)) -> dict[str, Any]:
        """One file's scores (and events) with its waveform and log-mel, as the web page draws them."""
        return await svc.analyze(file)

    @app.post("/invocations")
    async def invocations(request: Request) -> dict[str, Any]:
        return await svc.invocations(request)

    @app.post("/v1/predict")
    async def predict(files: list[UploadFile] = File(default=[])) -> Any:
        return await svc.files(files, "predict")

    @app.post("/v1/detect")
    async def detect(files: list[UploadFile] = File(default=[])) -> Any:
        return await svc.files(files, "detect")

    app.add_middleware(LimitBody, limits=limits)
    return app


def serve(checkpoint: str | Path, host: str = "127.0.0.1", port: int = 8080, limits: ServeLimits | None = None,
          precision: str = "auto") -> None:
    import uvicorn

    uvicorn.run(create_app(checkpoint, limits, precision=precision), host=host, port=port, log_level="info", timeout_keep_alive=5)
