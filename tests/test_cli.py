"""`fdvad vad` as a user runs it: outputs, formats, overwrite protection, one-line errors, exit codes."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf


def run(*args, cwd=None):
    proc = subprocess.run([sys.executable, "-m", "fdvad.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    rng = np.random.default_rng(0)
    sf.write(d / "noise.wav", (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32), 16000)
    sf.write(d / "other.wav", (rng.standard_normal(8000 * 3) * 0.1).astype(np.float32), 8000)
    (d / "text.wav").write_text("hello, not audio")
    (d / "empty.wav").write_bytes(b"")
    x = np.zeros(16000, np.float32)
    x[100:200] = np.nan
    sf.write(d / "nan.wav", x, 16000, subtype="FLOAT")
    return d


def assert_one_line_error(rc, out, err, expect_rc=None):
    assert rc != 0
    if expect_rc is not None:
        assert rc == expect_rc
    assert "Traceback" not in err + out
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err


def test_prints_json_to_stdout_and_writes_each_format(random_checkpoint, media, tmp_path):
    rc, out, err = run("vad", media / "noise.wav", "--model", random_checkpoint, "--threshold", "0", "-q")
    assert rc == 0, err
    segs = json.loads(out)
    assert segs == [{"start": 0.0, "end": 2.0, "score": segs[0]["score"]}]
    for fmt, ext in [("rttm", ".rttm"), ("csv", ".csv"), ("audacity", ".txt"), ("manifest", ".jsonl")]:
        target = tmp_path / f"out{ext}"
        rc, _, err = run("vad", media / "noise.wav", "--model", random_checkpoint, "--threshold", "0", "-o", target)
        assert rc == 0, err
        text = target.read_text()
        assert text.strip(), fmt
    assert (tmp_path / "out.rttm").read_text().startswith("SPEAKER noise 1 0.000 2.000")
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])["duration"] == 2.0


def test_several_inputs_into_a_directory(random_checkpoint, media, tmp_path):
    rc, _, err = run("vad", media / "noise.wav", media / "other.wav", "--model", random_checkpoint, "-o", tmp_path,
                     "--format", "rttm")
    assert rc == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.wav.rttm", "other.wav.rttm"]


def test_existing_output_is_kept_without_overwrite(random_checkpoint, media, tmp_path):
    target = tmp_path / "keep.json"
    target.write_text("precious")
    rc, out, err = run("vad", media / "noise.wav", "--model", random_checkpoint, "-o", target)
    assert_one_line_error(rc, out, err)
    assert "--overwrite" in err and target.read_text() == "precious"
    rc, _, err = run("vad", media / "noise.wav", "--model", random_checkpoint, "-o", target, "--overwrite")
    assert rc == 0, err
    assert json.loads(target.read_text()) is not None


@pytest.mark.parametrize("name", ["missing.wav", "text.wav", "empty.wav", "nan.wav"])
def test_bad_inputs_give_one_line_and_no_output(random_checkpoint, media, tmp_path, name):
    target = tmp_path / "out.json"
    rc, out, err = run("vad", media / name, "--model", random_checkpoint, "-o", target)
    assert_one_line_error(rc, out, err, expect_rc=1)
    assert name in err
    assert list(tmp_path.iterdir()) == []


def test_bad_options_give_one_line(random_checkpoint, media):
    for args in (["--mode", "slow"], ["--format", "xml"], ["--threshold", "0.3", "--neg-threshold", "0.6"],
                 ["--model", "nope.nemo"]):
        rc, out, err = run("vad", media / "noise.wav", *args)
        assert_one_line_error(rc, out, err)


def test_one_bad_input_among_good_ones(random_checkpoint, media, tmp_path):
    rc, out, err = run("vad", media / "noise.wav", media / "text.wav", "--model", random_checkpoint, "-o", tmp_path)
    assert rc == 1
    assert "text.wav" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.wav.json"]


def test_version():
    rc, out, _ = run("--version")
    assert rc == 0 and out.startswith("fdvad ")
