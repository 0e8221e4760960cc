"""`earshot serve` under load, and the latency of one 5 s clip over HTTP, in PyTorch and in ONNX.

    python benchmarks/serve_load.py CHECKPOINT [--clients 16] [--seconds 60] [--requests 100000]
                                              [--malformed 0.05] [--latency-only]

Load test: the server runs in its own process on loopback; ``--clients`` threads post real
recordings of 1-5 s from ../shared/data (office events and slices of a street recording, at their
own sample rates) to ``/invocations``, with ``--malformed`` of the uploads broken on purpose (random
bytes, an empty body, a WAV header that claims more data than it holds, a sample rate of 4 GHz,
a wrong content type). It stops after ``--seconds`` or ``--requests``, whichever comes first, and
prints requests per second, p50/p99 latency of the good uploads, the status codes, the count of
5xx replies (must be 0), and the server's resident memory at the start, every 1000 requests and at
the end. The load generator shares the machine's cores with the server.

Latency: one 5 s clip, the median of 30 calls after 3 warm-up calls, each end to end from encoded
WAV bytes: ``POST /invocations``, ``Predictor.predict`` in PyTorch, and the exported model on ONNX
Runtime (``earshot predict --backend onnx``'s code).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def wav_bytes(x: np.ndarray, sr: int) -> bytes:
    b = io.BytesIO()
    sf.write(b, x, sr, format="WAV", subtype="PCM_16")
    return b.getvalue()


def real_uploads(rng: np.random.Generator, n: int = 200) -> list[bytes]:
    """WAV files of 1-5 s: office events (looped to their drawn length) and street slices."""
    events = sorted((DATA / "dcase2016-task2" / "train" / "sound").glob("*.wav"))
    street, ssr = sf.read(str(DATA / "backgrounds" / "street-scene-1.wav"), dtype="float32")
    out = []
    for i in range(n):
        seconds = rng.uniform(1.0, 5.0)
        if i % 2:
            x, sr = sf.read(str(events[rng.integers(len(events))]), dtype="float32")
            x = np.tile(x, int(np.ceil(seconds * sr / len(x))))[: int(seconds * sr)]
        else:
            sr = ssr
            start = rng.integers(0, len(street) - int(seconds * sr))
            x = street[start : start + int(seconds * sr)]
        out.append(wav_bytes(x, sr))
    return out


def malformed(rng: np.random.Generator, good: bytes) -> tuple[bytes, str]:
    kind = rng.integers(5)
    if kind == 0:
        return rng.bytes(int(rng.integers(10, 50_000))), "audio/wav"
    if kind == 1:
        return b"", "audio/wav"
    if kind == 2:  # the header claims 100x more data than the file holds
        b = bytearray(good)
        pos = b.find(b"data")
        b[pos + 4 : pos + 8] = struct.pack("<I", min(2**32 - 2, 100 * (len(b) - pos)))
        return bytes(b[: len(b) // 2]), "audio/wav"
    if kind == 3:  # a sample rate of 4 GHz
        b = bytearray(good)
        b[24:28] = struct.pack("<I", 4_000_000_000)
        return bytes(b), "audio/wav"
    return good, "text/plain"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(checkpoint: str, port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "earshot.cli", "serve", checkpoint, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the server did not start: " + proc.stderr.read().decode()[-2000:])


def load_test(url: str, pid: int, clients: int, seconds: float, max_requests: int, bad_fraction: float) -> None:
    import httpx

    rng = np.random.default_rng(0)
    uploads = real_uploads(rng)
    lock = threading.Lock()
    latencies: list[float] = []
    codes: dict[int, int] = {}
    bad_codes: dict[int, int] = {}
    errors: list[str] = []
    memory: list[tuple[int, float]] = []
    count = 0
    stop = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        nonlocal count
        r = np.random.default_rng(seed)
        with httpx.Client(timeout=60) as c:
            while time.perf_counter() < stop:
                with lock:
                    if count >= max_requests:
                        return
                    count += 1
                    n = count
                good = uploads[r.integers(len(uploads))]
                is_bad = r.random() < bad_fraction
                body, ctype = malformed(r, good) if is_bad else (good, "audio/wav")
                t0 = time.perf_counter()
                try:
                    resp = c.post(f"{url}/invocations", content=body, headers={"Content-Type": ctype})
                    code = resp.status_code
                except httpx.HTTPError as e:
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}")
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    (bad_codes if is_bad else codes)[code] = (bad_codes if is_bad else codes).get(code, 0) + 1
                    if not is_bad and code == 200:
                        latencies.append(dt)
                    if n % 1000 == 0:
                        memory.append((n, rss_mb(pid)))

    rss0 = rss_mb(pid)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    rss1 = rss_mb(pid)
    total = sum(codes.values()) + sum(bad_codes.values())
    lat = np.array(latencies) * 1000
    five = sum(v for k, v in {**codes}.items() if k >= 500) + sum(v for k, v in bad_codes.items() if k >= 500)
    print(f"load: {clients} clients, {wall:.1f} s, {total} requests ({sum(bad_codes.values())} malformed), "
          f"{total / wall:.1f} requests/s")
    print(f"  good uploads: p50 {np.percentile(lat, 50):.0f} ms, p99 {np.percentile(lat, 99):.0f} ms, "
          f"status {dict(sorted(codes.items()))}")
    print(f"  malformed uploads: status {dict(sorted(bad_codes.items()))}")
    print(f"  5xx replies: {five}; connection errors: {len(errors)} {errors[:3]}")
    print(f"  server RSS: start {rss0:.0f} MB, end {rss1:.0f} MB; every 1000 requests: "
          + ", ".join(f"{n}: {m:.0f}" for n, m in memory))


def latency(checkpoint: str, url: str, reps: int = 30) -> None:
    import httpx

    from earshot.inference.export import export_onnx
    from earshot.inference.onnx_backend import OnnxPredictor
    from earshot.inference.predictor import Predictor

    street, sr = sf.read(str(DATA / "backgrounds" / "street-scene-1.wav"), dtype="float32")
    clip = wav_bytes(street[: 5 * sr], sr)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "clip.wav"
        path.write_bytes(clip)
        onnx_path = export_onnx(checkpoint, Path(d) / "model.onnx")
        torch_pred = Predictor.load(checkpoint, "cpu")
        onnx_pred = OnnxPredictor(onnx_path)

        def timed(fn: object) -> float:
            for _ in range(3):
                fn()  # type: ignore[operator]
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()  # type: ignore[operator]
                ts.append(time.perf_counter() - t0)
            return float(np.median(ts)) * 1000

        with httpx.Client(timeout=60) as c:
            http = timed(lambda: c.post(f"{url}/invocations", content=clip,
                                        headers={"Content-Type": "audio/wav"}).raise_for_status())
        pt = timed(lambda: torch_pred.predict(path))
        ox = timed(lambda: onnx_pred.predict(path))
    print(f"latency, one 5 s clip at {sr} Hz (median of {reps}): HTTP /invocations {http:.1f} ms, "
          f"PyTorch {pt:.1f} ms, ONNX Runtime {ox:.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--malformed", type=float, default=0.05)
    ap.add_argument("--latency-only", action="store_true")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus; checkpoint {a.checkpoint}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(a.checkpoint, port)
    try:
        if not a.latency_only:
            load_test(url, proc.pid, a.clients, a.seconds, a.requests, a.malformed)
        latency(a.checkpoint, url)
        alive = proc.poll() is None
        print(f"server still running at the end: {alive}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
