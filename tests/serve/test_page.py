"""The web page at ``GET /``, in a real browser: Debian's Chromium driven by Playwright.

Each test uploads a file, waits for the result, checks what is drawn and saves a screenshot
(kept under the test's tmp folder; ``EARSHOT_SCREENSHOTS=DIR`` keeps a copy).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium: install Debian's chromium (apt-get install chromium) to run the page tests",
                allow_module_level=True)

from earshot.serve.app import ServeLimits, create_app  # noqa: E402
from tests.conftest import SCENE_NOISE_STD, tone, write_wav  # noqa: E402


class Server:
    """uvicorn on a free loopback port, in a thread."""

    def __init__(self, checkpoint: Path):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        app = create_app(checkpoint, ServeLimits(max_upload_mb=2.0, max_seconds=60))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}/"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])  # a fake microphone (beeps)
        yield b
        b.close()


def open_page(browser, url: str, width: int = 1200, height: int = 1300):
    """A page on ``url`` once the model's description has loaded, and the list its script errors go to."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("document.querySelector('#model').textContent.includes('labels')")
    return page, errors


def keep(shot: Path) -> None:
    if os.environ.get("EARSHOT_SCREENSHOTS"):
        d = Path(os.environ["EARSHOT_SCREENSHOTS"])
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, d / shot.name)


def test_page_predicts_an_upload_and_shows_errors_inline(browser, trained_run, tmp_path):
    clip = write_wav(tmp_path / "tone.wav", tone(16000, 1.0, 440.0))
    junk = tmp_path / "notes.txt"
    junk.write_text("this is not audio\n" * 20)
    with Server(trained_run / "checkpoints" / "best.ckpt") as url:
        page, errors = open_page(browser, url)
        assert "classification" in page.inner_text("#model") and "4 labels" in page.inner_text("#model")
        page.set_input_files("#file", str(clip))
        page.wait_for_selector("#result.show .bar", timeout=30000)
        bars = page.locator("#bars .bar")
        labels = [bars.nth(i).get_attribute("data-label") for i in range(bars.count())]
        assert sorted(labels) == sorted(["tone", "clicks", "noise_burst", "chirp"])
        assert page.inner_text("#r-file") == "tone.wav"
        assert "Most likely" in page.inner_text("#verdict")
        assert page.locator("#bars .bar.on").count() == 1
        # the canvases were drawn: the spectrogram is not blank
        spread = page.evaluate("""() => { const c = document.querySelector('#spec');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let lo = 255, hi = 0;
            for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); } return hi - lo; }""")
        assert spread > 50
        shot = tmp_path / "page-classifier.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 20000
        keep(shot)
        page.set_input_files("#file", str(junk))  # an error, inline, and the last result stays
        page.wait_for_selector("#error.show", timeout=30000)
        assert "notes.txt" in page.inner_text("#error") and "not a readable audio file" in page.inner_text("#error")
        page.set_viewport_size({"width": 390, "height": 900})  # a phone: nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not errors, errors


def test_page_records_from_the_microphone(browser, trained_run, tmp_path):
    with Server(trained_run / "checkpoints" / "best.ckpt") as url:
        page, errors = open_page(browser, url, 900, 1000)
        page.click("#record")
        page.wait_for_function("document.querySelector('#record').textContent.startsWith('Stop (1.')", timeout=15000)
        page.click("#record")
        page.wait_for_selector("#result.show .bar", timeout=30000)
        assert page.inner_text("#r-file") == "recording.wav"
        assert float(page.inner_text("#r-meta").split(" s")[0]) >= 0.8  # the recorded seconds arrived
        assert page.inner_text("#record") == "Record" and not errors, errors
        shot = tmp_path / "page-recording.png"
        page.screenshot(path=str(shot), full_page=True)
        keep(shot)


def test_page_shows_a_detectors_events_on_a_timeline(browser, sed_run, tmp_path):
    sr = 16000
    rng = np.random.default_rng(0)
    # the background at the fixture's training level (conftest.scenes): the 8-epoch detector is not
    # trained to generalise to a quieter room, and at std 0.02 some seeds of it called the whole clip
    # a beep (a page test, not a test of the detector's quality)
    x = (SCENE_NOISE_STD * rng.standard_normal(sr * 6)).astype(np.float32)
    x[sr : sr + sr // 2] += tone(sr, 0.5, 1500.0)
    clip = write_wav(tmp_path / "scene.wav", x)
    with Server(sed_run / "checkpoints" / "best.ckpt") as url:
        page, errors = open_page(browser, url)
        page.set_input_files("#file", str(clip))
        page.wait_for_selector("#result.show #timeline .lane", timeout=60000)
        lanes = page.locator("#timeline .lane")
        assert sorted(lanes.nth(i).get_attribute("data-label") for i in range(lanes.count())) == ["beep", "hum"]
        beep = page.locator("#timeline .lane[data-label='beep'] .event")
        assert beep.count() >= 1
        box, plot = beep.first.bounding_box(), page.locator("#timeline .lane[data-label='beep'] .plot").bounding_box()
        onset = (box["x"] - plot["x"]) / plot["width"] * 6.0
        assert 0.6 < onset < 1.4  # the beep was put at 1.0 s
        assert "event" in page.inner_text("#tl-legend")
        shot = tmp_path / "page-detector.png"
        page.screenshot(path=str(shot), full_page=True)
        keep(shot)
        assert not errors, errors
