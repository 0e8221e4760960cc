"""`earshot serve`: the endpoints, and bad input that must never get a 500."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from earshot.serve.app import ServeLimits, create_app  # noqa: E402
from tests.conftest import tone  # noqa: E402


def wav_bytes(x: np.ndarray, sr: int = 16000) -> bytes:
    b = io.BytesIO()
    sf.write(b, x, sr, format="WAV", subtype="PCM_16")
    return b.getvalue()


@pytest.fixture(scope="module")
def client(trained_run):
    app = create_app(trained_run / "checkpoints" / "best.ckpt", ServeLimits(max_upload_mb=2.0, max_seconds=60))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_ping_model_and_docs(client):
    assert client.get("/ping").json() == {"status": "ok"}
    m = client.get("/v1/model").json()
    assert m["task"] == "classification" and m["verb"] == "predict" and len(m["labels"]) == 4 and m["earshot_version"]
    assert client.get("/docs").status_code == 200 and "/invocations" in client.get("/openapi.json").text


def test_invocations_is_the_sagemaker_contract(client):
    r = client.post("/invocations", content=wav_bytes(tone(seconds=1.0)), headers={"Content-Type": "audio/wav"})
    assert r.status_code == 200
    body = r.json()
    assert len(body["labels"]) == len(body["probabilities"]) == 4
    assert abs(sum(body["probabilities"]) - 1) < 1e-3


def test_predict_takes_several_files_and_reports_each_bad_one(client):
    files = [("files", ("a.wav", wav_bytes(tone(seconds=1.0)), "audio/wav")),
             ("files", ("empty.wav", b"", "audio/wav")),
             ("files", ("junk.wav", b"this is not audio at all", "audio/wav"))]
    r = client.post("/v1/predict", files=files)
    assert r.status_code == 200
    res = {x["file"]: x for x in r.json()["results"]}
    assert res["a.wav"]["top"] and "empty" in res["empty.wav"]["error"]
    assert "not a readable audio file" in res["junk.wav"]["error"]


def test_detect_on_a_classifier_names_the_right_endpoint(client):
    r = client.post("/v1/detect", files=[("files", ("a.wav", wav_bytes(tone()), "audio/wav"))])
    assert r.status_code == 422 and "POST /v1/predict" in r.json()["detail"]


@pytest.mark.parametrize("body,ctype,status,match", [
    (b"", "audio/wav", 422, "empty body"),
    (b"RIFF....WAVEjunk", "text/plain", 415, "not audio"),
    (b"\x00" * 1000, "audio/wav", 422, "not a readable audio file"),
])
def test_bad_bodies(client, body, ctype, status, match):
    r = client.post("/invocations", content=body, headers={"Content-Type": ctype})
    assert r.status_code == status and match in r.json()["detail"]


def test_a_truncated_wav_and_an_absurd_sample_rate_are_422(client):
    data = bytearray(wav_bytes(tone(seconds=1.0)))
    r = client.post("/invocations", content=bytes(data[: len(data) // 2]), headers={"Content-Type": "audio/wav"})
    assert r.status_code == 422 and "truncated WAV" in r.json()["detail"]
    for rate, match in ((4_000_000_000, "not a readable audio file"), (10_000_000, "sample rate 10000000 Hz")):
        data[24:28] = struct.pack("<I", rate)  # the header's sample rate
        r = client.post("/invocations", content=bytes(data), headers={"Content-Type": "audio/wav"})
        assert r.status_code == 422 and match in r.json()["detail"], rate


def test_too_large_and_too_long_uploads(client):
    big = b"\x00" * 3_000_000  # over the 2 MB limit of this app
    r = client.post("/invocations", content=big, headers={"Content-Type": "audio/wav"})
    assert r.status_code == 413 and "MB limit" in r.json()["detail"]
    long = wav_bytes(np.zeros(8000 * 70, np.float32), 8000)  # 70 s at 8 kHz: 1.1 MB, over 60 s
    r = client.post("/invocations", content=long, headers={"Content-Type": "audio/wav"})
    assert r.status_code == 422 and "over the 60 s limit" in r.json()["detail"]


def test_a_path_traversal_file_name_is_only_echoed(client, tmp_path):
    r = client.post("/v1/predict", files=[("files", ("../../etc/passwd", wav_bytes(tone()), "audio/wav"))])
    assert r.status_code == 200 and r.json()["results"][0]["file"] == "passwd"


def test_a_slow_body_times_out_with_408(trained_run):
    import asyncio

    from earshot.serve.app import LimitBody

    async def slow_receive():
        await asyncio.sleep(1.0)
        return {"type": "http.request", "body": b"x", "more_body": True}

    sent = []

    async def send(msg):
        sent.append(msg)

    async def app(scope, receive, send):
        await receive()

    mw = LimitBody(app, ServeLimits(body_timeout_s=0.2))
    asyncio.run(mw({"type": "http", "headers": []}, slow_receive, send))
    assert sent[0]["status"] == 408


def test_the_client_prints_a_table(trained_run, tmp_path, capsys):
    import threading
    import time

    import uvicorn

    from earshot.cli import main
    from tests.conftest import write_wav

    app = create_app(trained_run / "checkpoints" / "best.ckpt")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        f = write_wav(tmp_path / "one.wav", tone())
        assert main(["client", f"http://127.0.0.1:{port}", str(f)]) == 0
        assert "one.wav" in capsys.readouterr().out
    finally:
        server.should_exit = True
        th.join(5)


def test_page_and_its_analysis_endpoint(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="file"' in page.text and "v1/analyze" in page.text and "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
    r = client.post("/v1/analyze", files={"file": ("../../etc/passwd.wav", wav_bytes(tone(seconds=2.0)), "audio/wav")})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["file"] == "passwd.wav" and abs(d["duration"] - 2.0) < 1e-3 and d["notes"] == []
    assert len(d["scores"]) == 4 and abs(sum(s["score"] for s in d["scores"]) - 1) < 1e-3
    assert d["decision"][0]["label"] == d["scores"][0]["label"]
    spec = d["spectrogram"]
    import base64

    assert len(base64.b64decode(spec["data"])) == spec["frames"] * spec["mels"] and spec["mels"] == 64
    assert 0 < len(d["waveform"]) <= 1200
    assert client.post("/v1/analyze", files={"file": ("x.txt", b"hello" * 50, "text/plain")}).status_code == 422
    assert client.post("/v1/analyze").status_code == 422
    assert client.get("/v1/model").json()["limits"]["max_upload_mb"] == 2.0


def test_a_zero_byte_multipart_file_is_reported_by_name(client):
    r = client.post("/v1/predict", files=[("files", ("silence.wav", b"", "audio/wav"))])
    assert r.status_code == 422
    assert r.json()["results"] == [{"file": "silence.wav", "error": "empty body (0 bytes)"}]


def test_a_200_mb_upload_is_refused_with_413(client):
    def body(mb):  # generated lazily: nothing this big is ever held
        for _ in range(mb):
            yield b"\x00" * 1_000_000

    declared = {"Content-Type": "audio/wav", "Content-Length": str(200_000_000)}
    r = client.post("/invocations", content=body(200), headers=declared)  # refused on its declared size
    assert r.status_code == 413 and "200.0 MB is over the 2 MB limit" in r.json()["detail"]
    r = client.post("/invocations", content=body(10), headers={"Content-Type": "audio/wav"})  # chunked: while reading
    assert r.status_code == 413 and "MB limit" in r.json()["detail"]
    assert client.get("/ping").status_code == 200  # and the server goes on
