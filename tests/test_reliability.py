"""Nothing lost: half-written files, a full disk, hostile inputs. Each test injects one fault and
checks what the user sees and what is kept (docs/reliability.md is the table of these)."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earshot.cli import main
from earshot.errors import AudioError, DataError
from tests.conftest import tone, write_wav


def wav_bytes(x: np.ndarray, sr: int = 16000) -> bytes:
    b = io.BytesIO()
    sf.write(b, x, sr, format="WAV", subtype="PCM_16")
    return b.getvalue()


def run_python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).resolve().parents[1])


# --- files cut short ----------------------------------------------------------------------------
def test_a_truncated_checkpoint_is_a_one_line_error(trained_run, tmp_path, capsys):
    ck = tmp_path / "best.ckpt"
    data = (trained_run / "checkpoints" / "best.ckpt").read_bytes()
    ck.write_bytes(data[: len(data) // 2])
    clip = write_wav(tmp_path / "a.wav", tone())
    assert main(["predict", str(ck), str(clip)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {ck}: not a readable checkpoint") and "Traceback" not in err


def test_a_truncated_manifest_names_its_last_line(tiny_dataset, tmp_path):
    from earshot.data.manifest import read_manifest

    text = tiny_dataset.read_text()
    cut = tmp_path / "cut.jsonl"
    cut.write_text(text[: len(text) - 40])  # the last record loses its end
    n = text.count("\n")
    with pytest.raises(DataError, match=rf"cut.jsonl:{n}: "):
        read_manifest(cut)


def test_truncated_metrics_and_skip_reports_say_so(trained_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    m = (run / "metrics.json").read_text()
    (run / "metrics.json").write_text(m[: len(m) // 3])
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert "metrics.json" in err and "damaged or cut short" in err and "Traceback" not in err
    (run / "metrics.json").write_text(m)
    (run / "skipped.json").write_text("")
    assert main(["report", str(run)]) == 2
    assert "skip report is empty" in capsys.readouterr().err


def test_an_event_list_cut_mid_row_loses_only_that_row(tmp_path):
    from earshot.data.manifest import SkipReport
    from earshot.data.sources.desed import read_strong
    from earshot.inference.writers import write_event_list

    events = [("a.wav", [(0.5, 1.25, "dog"), (2.0, 3.5, "cat")]), ("b.wav", [(1.0, 2.0, "dog")])]
    f = write_event_list(tmp_path / "events.tsv", events)
    text = f.read_text()
    f.write_text(text[: text.rindex("\t")])  # the last row loses its label
    report = SkipReport()
    got = read_strong(f, ["dog", "cat"], report)
    assert [(e.onset, e.label) for e in got["a.wav"]] == [(0.5, "dog"), (2.0, "cat")] and got["b.wav"] == []
    assert [(s.line, "expected onset, offset and event_label" in s.reason) for s in report.items] == [(4, True)]


def test_a_damaged_audio_cache_entry_is_reported_and_decoded_again(tmp_path, caplog):
    from earshot.data.loading import AudioCache

    src = write_wav(tmp_path / "a.wav", tone(16000, 1.0))
    cache = AudioCache(tmp_path / "cache", 16000)
    ref = np.array(cache.load(str(src)))
    entry = cache.entry(str(src))
    for damage in ("truncate", "flip"):
        raw = bytearray(entry.read_bytes())
        if damage == "truncate":
            raw = raw[: len(raw) // 2]
        else:
            raw[-100] ^= 0xFF  # one sample's byte flipped: the header still parses
        entry.write_bytes(bytes(raw))
        fresh = AudioCache(tmp_path / "cache", 16000)  # a new process reads the entry afresh
        with caplog.at_level("WARNING"):
            got = np.array(fresh.load(str(src)))
        assert np.array_equal(got, ref) and fresh.rebuilt == 1
        assert "is damaged" in caplog.text and str(entry) in caplog.text
        caplog.clear()


def test_a_feature_cache_cut_short_is_moved_aside_and_rebuilt(tmp_path, caplog):
    from earshot.features.cache import FeatureCache
    from earshot.features.frontends import LogMelConfig

    src = write_wav(tmp_path / "a.wav", tone())
    feats = np.arange(12, dtype=np.float32).reshape(3, 4)
    with FeatureCache(tmp_path / "f.h5", LogMelConfig()) as c:
        c.get(str(src), lambda: feats)
    raw = (tmp_path / "f.h5").read_bytes()
    (tmp_path / "f.h5").write_bytes(raw[: len(raw) // 3])
    with caplog.at_level("WARNING"), FeatureCache(tmp_path / "f.h5", LogMelConfig()) as c:
        assert np.array_equal(c.get(str(src), lambda: feats), feats) and c.misses == 1
    assert (tmp_path / "f.h5.damaged").exists() and "cannot be opened" in caplog.text


def test_a_feature_cache_entry_that_fails_its_hash_is_recomputed(tmp_path):
    from earshot.features.cache import FeatureCache
    from earshot.features.frontends import LogMelConfig

    src = write_wav(tmp_path / "a.wav", tone())
    feats = np.ones((3, 4), np.float32)
    with FeatureCache(tmp_path / "f.h5", LogMelConfig()) as c:
        c.get(str(src), lambda: feats)
        ds = c._grp[next(iter(c._grp))]
        ds[0, 0] = 7.0  # the data changed behind the cache's back
    with FeatureCache(tmp_path / "f.h5", LogMelConfig()) as c:
        assert np.array_equal(c.get(str(src), lambda: feats), feats) and c.rebuilt == 1


# --- a full disk ------------------------------------------------------------------------------------
def test_a_full_disk_keeps_the_last_good_checkpoint(tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: the write fails part-way, the old file stays whole and
    no temporary file is left behind."""
    r = run_python(f"""
        import resource, signal, torch
        from pathlib import Path
        from earshot.checkpoint import save_atomic
        from earshot.training.checkpoint_io import AtomicCheckpointIO
        d = Path({str(tmp_path)!r})
        save_atomic({{"w": torch.zeros(1000)}}, d / "best.ckpt")
        AtomicCheckpointIO().save_checkpoint({{"w": torch.zeros(1000)}}, d / "last.ckpt")
        good = (d / "best.ckpt").read_bytes(), (d / "last.ckpt").read_bytes()
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        for save in (lambda: save_atomic({{"w": torch.zeros(10**6)}}, d / "best.ckpt"),
                     lambda: AtomicCheckpointIO().save_checkpoint({{"w": torch.zeros(10**6)}}, d / "last.ckpt")):
            try:
                save()
                print("NO ERROR")
            except OSError as e:
                print("OSError", e.errno)
        assert ((d / "best.ckpt").read_bytes(), (d / "last.ckpt").read_bytes()) == good
        print(sorted(p.name for p in d.iterdir()))
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("OSError") and lines[1].startswith("OSError")
    assert lines[2] == "['best.ckpt', 'last.ckpt']"


def test_the_cli_reports_a_write_failure_in_one_line(trained_run, tmp_path, capsys):
    clip = write_wav(tmp_path / "a.wav", tone())
    out = tmp_path / "no" / "such" / "folder" / "p.csv"
    assert main(["predict", str(trained_run / "checkpoints" / "best.ckpt"), str(clip), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out}: No such file or directory") and "Traceback" not in err


# --- hostile inputs -------------------------------------------------------------------------------
def test_a_checkpoint_crafted_to_run_code_is_refused(tmp_path, capsys):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    ck = tmp_path / "evil.ckpt"
    import torch

    torch.save({"earshot": {"format": 2}, "payload": Evil()}, ck, pickle_module=pickle)
    clip = write_wav(tmp_path / "a.wav", tone())
    assert main(["predict", str(ck), str(clip)]) == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("name,offset,fmt,value,match", [
    ("rate0", 24, "<I", 0, "not a readable audio file"),
    ("rate4g", 24, "<I", 4_000_000_000, "not a readable audio file"),
    ("channels0", 22, "<H", 0, "Channel count is zero"),
    ("channels65535", 22, "<H", 65535, "Too many channels"),
    ("data4g", 40, "<I", 0xFFFFFFF0, "truncated WAV: header declares 4294967280 bytes"),
])
def test_malformed_wav_headers_fail_fast_in_bounded_memory(tmp_path, name, offset, fmt, value, match):
    """Decoded in a child process limited to 1.5 GB of address space: a header that promises
    4 GB or 65535 channels must not make the decoder allocate it."""
    data = bytearray(wav_bytes(tone(16000, 0.5)))
    data[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    f = tmp_path / f"{name}.wav"
    f.write_bytes(bytes(data))
    r = run_python(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))
        from earshot.audio.io import load_audio, stream_audio
        from earshot.errors import AudioError
        for read in (lambda: load_audio({str(f)!r}), lambda: list(stream_audio({str(f)!r}, 8000))):
            try:
                read()
                print("DECODED")
            except AudioError as e:
                print("AudioError:", e)
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout.strip().splitlines()
    assert len(out) == 2 and all(line.startswith("AudioError:") and match in line for line in out), out


def test_csv_paths_cannot_leave_the_audio_folder(tmp_path):
    from earshot.data.sources.csv_table import read_table

    audio = tmp_path / "audio"
    write_wav(audio / "ok.wav", tone())
    write_wav(tmp_path / "secret.wav", tone())
    outside = write_wav(tmp_path / "elsewhere" / "other.wav", tone())
    csv_file = audio / "list.csv"
    csv_file.write_text(f"path,label\nok.wav,a\n../secret.wav,b\n{outside},c\n")
    cands, report = read_table(csv_file)
    assert [c.path.name for c in cands] == ["ok.wav"]
    assert [(s.line, "leaves the audio folder" in s.reason) for s in report.items] == [(3, True), (4, True)]
    cands, report = read_table(csv_file, allow_outside_root=True)
    assert len(cands) == 3 and not len(report)


def test_manifest_clips_cannot_leave_the_dataset_root(tmp_path, caplog):
    from earshot.config import load_config
    from earshot.data.manifest import Clip, SkipReport, manifest_root, read_manifest, write_manifest
    from earshot.training.run import train

    audio = tmp_path / "data" / "audio"
    clips = [Clip(f"c{i}", str(write_wav(audio / f"c{i}.wav", tone())), 0.5, 16000, 1, ["a"]) for i in range(3)]
    m = write_manifest(tmp_path / "manifests" / "m.jsonl", clips)  # the manifest lives apart from its audio
    assert manifest_root(m) == audio.resolve()
    assert len(read_manifest(m)) == 3
    secret = write_wav(tmp_path / "secret.wav", tone())
    lines = m.read_text().splitlines()
    lines.insert(2, json.dumps({"id": "x", "path": "../secret.wav", "duration": 0.5, "sample_rate": 16000,
                                "channels": 1, "labels": ["a"]}))
    lines.append(json.dumps({"id": "y", "path": str(secret), "duration": 0.5, "sample_rate": 16000,
                             "channels": 1, "labels": ["a"]}))
    (audio / "link.wav").symlink_to(secret)  # inside the root by name, outside by what it opens
    lines.append(json.dumps({"id": "z", "path": "../data/audio/link.wav", "duration": 0.5, "sample_rate": 16000,
                             "channels": 1, "labels": ["a"]}))
    m.write_text("\n".join(lines) + "\n")
    report = SkipReport()
    kept = read_manifest(m, skipped=report)
    assert [c.id for c in kept] == ["c0", "c1", "c2"]
    assert [(s.line, "leaves the dataset root" in s.reason) for s in report.items] == [(3, True), (6, True), (7, True)]
    assert "outside the dataset root" in caplog.text
    assert len(read_manifest(m, allow_outside_root=True)) == 6
    # a manifest with no header (hand-written, or from before the header) is confined to its own folder
    bare = tmp_path / "manifests" / "bare.jsonl"
    bare.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(DataError, match="every clip lies outside the dataset root.*re-run `earshot prepare`"):
        read_manifest(bare)
    # and training refuses it the same way, unless the config allows it
    with pytest.raises(DataError, match="outside the dataset root"):
        train(load_config(None, [f"data.manifest={bare}", "model.name=cnn_small", "trainer.max_epochs=1"]))


def test_an_unexpected_error_is_one_line_unless_verbose(monkeypatch, capsys):
    import earshot.cli as cli

    def boom(a):
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr(cli, "cmd_models", boom)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "unexpected RuntimeError: something nobody planned for" in err and "Traceback" not in err
    assert "-v" in err
    with pytest.raises(RuntimeError):
        main(["-v", "models"])


# --- fuzzing (slow) -------------------------------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


def _wav_like() -> st.SearchStrategy[bytes]:
    """Random bytes, and real WAV headers with random fields and bodies."""
    def mutate(args: tuple[int, int, int, int, bytes]) -> bytes:
        channels, rate, bits, size, body = args
        fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * channels * max(bits, 8) // 8) % 2**32,
                          (channels * max(bits, 8) // 8) % 2**16, bits)
        return b"RIFF" + struct.pack("<I", 36 + len(body)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + \
            b"data" + struct.pack("<I", size) + body

    header = st.tuples(st.integers(0, 65535), st.integers(0, 2**32 - 1), st.sampled_from([0, 8, 16, 24, 32, 7]),
                       st.integers(0, 2**32 - 1), st.binary(max_size=2048))
    return st.one_of(st.binary(max_size=4096), header.map(mutate))


@pytest.mark.slow
@FUZZ
@given(data=_wav_like())
def test_fuzz_audio_decoding_raises_only_audio_errors(tmp_path_factory, data):
    from earshot.audio.io import load_audio, stream_audio

    f = tmp_path_factory.mktemp("fuzz") / "x.wav"
    f.write_bytes(data)
    for read in (lambda: load_audio(f, 16000), lambda: list(stream_audio(f, 16000))):
        try:
            read()
        except AudioError:
            pass


@pytest.mark.slow
@FUZZ
@given(lines=st.lists(st.one_of(st.text(max_size=200), st.builds(lambda d: json.dumps(d), st.dictionaries(
    st.sampled_from(["id", "path", "duration", "labels", "split", "fold", "events", "sample_rate", "x"]),
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
              st.lists(st.text(max_size=5), max_size=3)), max_size=8))), max_size=12))
def test_fuzz_manifest_reader_raises_only_data_errors(tmp_path_factory, lines):
    from earshot.data.manifest import read_manifest

    f = tmp_path_factory.mktemp("fuzz") / "m.jsonl"
    f.write_text("\n".join(lines), encoding="utf-8")
    try:
        read_manifest(f)
    except DataError:
        pass


@pytest.mark.slow
@FUZZ
@given(text=st.lists(st.one_of(st.sampled_from(list("ab,\t\n\"'./-0123456789;:")),
                              st.sampled_from(["path", "label", "fold", "onset", "offset", "split", "filename",
                                               "event_label", "event_labels", "nan", "1e309"])),
                    max_size=120).map("".join))
def test_fuzz_csv_and_tsv_parsers_raise_only_data_errors(tmp_path_factory, text):
    from earshot.data.sources.csv_table import read_table
    from earshot.data.sources.desed import read_strong, read_weak
    from earshot.data.manifest import SkipReport

    d = tmp_path_factory.mktemp("fuzz")
    f = d / "list.csv"
    f.write_text(text, encoding="utf-8")
    for parse in (lambda: read_table(f), lambda: read_strong(f, ["a", "b"], SkipReport()),
                  lambda: read_weak(f, ["a", "b"], SkipReport())):
        try:
            parse()
        except DataError:
            pass
