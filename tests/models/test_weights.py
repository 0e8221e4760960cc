"""``earshot download`` against a local HTTP server: checksums, resume, and no half file."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from earshot.cli import main
from earshot.errors import EarshotError
from earshot.models import weights

pytest.importorskip("pooch")
PAYLOAD = bytes(range(256)) * 4000  # ~1 MB


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at any path, honouring ``Range: bytes=N-``; counts the bytes it sends."""

    sent = 0

    def do_GET(self):  # noqa: N802
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        RangeHandler.sent += len(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    RangeHandler.sent = 0
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def entry(monkeypatch, url: str, checksum: str) -> None:
    monkeypatch.setitem(weights.WEIGHTS, "toy", weights.Weights("panns_cnn6", url + "/toy.pth", "toy.pth", checksum,
                                                                 "a local test server"))


def test_download_verifies_and_caches(server, tmp_path, monkeypatch, capsys):
    entry(monkeypatch, server, "md5:" + hashlib.md5(PAYLOAD).hexdigest())
    assert main(["download", "toy", "--cache", str(tmp_path)]) == 0
    assert (tmp_path / "toy.pth").read_bytes() == PAYLOAD
    assert not list(tmp_path.glob("*.part"))
    sent = RangeHandler.sent
    weights.download("toy", tmp_path, progress=False)  # cached: verified, not fetched again
    assert RangeHandler.sent == sent
    monkeypatch.setenv("EARSHOT_CACHE", str(tmp_path))
    assert weights.cached("toy") == tmp_path / "toy.pth"


def test_an_interrupted_download_resumes(server, tmp_path, monkeypatch):
    entry(monkeypatch, server, "sha256:" + hashlib.sha256(PAYLOAD).hexdigest())
    (tmp_path / "toy.pth.part").write_bytes(PAYLOAD[:300_000])  # what a broken connection left
    path = weights.download("toy", tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert RangeHandler.sent == len(PAYLOAD) - 300_000  # only the rest was sent


@pytest.mark.parametrize("checksum", ["md5:" + "0" * 32, "sha256-prefix:deadbeef"])
def test_a_checksum_mismatch_fails_loudly_and_leaves_no_file(server, tmp_path, monkeypatch, checksum):
    entry(monkeypatch, server, checksum)
    with pytest.raises(EarshotError, match="failed its checksum and was deleted"):
        weights.download("toy", tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []  # no half file, no bad file, no part file


def test_a_prefix_checksum_is_accepted(server, tmp_path, monkeypatch):
    entry(monkeypatch, server, "sha256-prefix:" + hashlib.sha256(PAYLOAD).hexdigest()[:8])
    assert weights.download("toy", tmp_path, progress=False).read_bytes() == PAYLOAD


def test_an_unreachable_server_is_a_clear_error(tmp_path, monkeypatch):
    entry(monkeypatch, "http://127.0.0.1:9", "md5:" + "0" * 32)
    with pytest.raises(EarshotError, match="run the command again to resume"):
        weights.download("toy", tmp_path, progress=False)


def test_unknown_names_and_the_list(capsys):
    with pytest.raises(EarshotError, match="no published checksum"):
        weights.download("panns_mobilenetv2")
    assert main(["download"]) == 0
    out = capsys.readouterr().out
    assert "Cnn14_mAP=0.431.pth" in out and "md5:541141fa2ee191a88f24a3219fff024e" in out
