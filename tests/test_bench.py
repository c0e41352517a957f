"""The benchmark scripts in bench/ run end to end on a tiny input and print a table with numbers in it."""

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest
from conftest import needs_espeak

BENCH = Path(__file__).resolve().parent.parent / "bench"
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def table_rows(out: str, first_column: str) -> dict[str, list[str]]:
    """Rows of the printed table, keyed by their label (which may contain one space)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_column)) + 2  # header, rule
    rows = {}
    for line in lines[start:]:
        if not line.strip() or line.startswith(("#", "CHECK")):
            break
        label, rest = line[:14].strip(), line[14:].split()
        rows[label] = rest
    return rows


@needs_espeak
def test_vad_speed_times_every_system(random_checkpoint, tmp_path, capsys):
    bench = load_script("vad_speed")
    json_path = tmp_path / "speed.json"
    rc = bench.main(["--model", str(random_checkpoint), "--seconds", "8", "--repeats", "1",
                     "--json", str(json_path)])
    out = capsys.readouterr().out
    assert rc == 0
    rows = table_rows(out, "system")
    assert set(rows) == {"fdvad fast", "fdvad exact", "silero ONNX", "silero JIT", "webrtcvad"}
    for label, cells in rows.items():
        if cells[0] == "-":  # a comparison package that is not installed: skipped with a note
            assert "skipped" in " ".join(cells), label
            continue
        seconds, x_real_time, speedup, runs, segments = cells[:5]
        assert all(NUMBER.match(c) for c in (seconds, x_real_time, speedup, runs, segments)), (label, cells)
        assert float(seconds) > 0 and int(runs) == 1
    assert float(rows["fdvad fast"][2]) == 1.0  # fast's ratio to itself
    assert re.search(r"^CHECK fast >= 1000x real time: (PASS|FAIL)", out, re.M)
    assert re.search(r"^CHECK fast faster than silero: (PASS|FAIL)", out, re.M)
    assert "# machine:" in out and "# command: python bench/vad_speed.py --model" in out
    saved = json.loads(json_path.read_text())
    assert saved["audio_seconds"] == pytest.approx(8.0)
    fast = next(r for r in saved["results"] if r["system"] == "fdvad fast")
    assert fast["x_real_time"] == pytest.approx(8.0 / fast["seconds"])
    assert set(saved["fast_profile_s"]) == {"features", "network_and_pooling", "postprocess", "total"}


@needs_espeak
def test_fast_vs_exact_compares_the_modes(random_checkpoint, tmp_path, capsys):
    bench = load_script("fast_vs_exact")
    json_path = tmp_path / "fve.json"
    rc = bench.main(["--model", str(random_checkpoint), "--seeds", "1", "--noise", "pink", "--snrs", "10",
                     "--seconds", "6", "--json", str(json_path)])
    out = capsys.readouterr().out
    assert rc == 0
    rows = table_rows(out, "condition")
    assert set(rows) == {"pink 10 dB", "all"}
    for label, cells in rows.items():
        assert len(cells) == len(bench.COLUMNS) - 1, (label, cells)
        assert all(NUMBER.match(c) or c == "nan" for c in cells), (label, cells)
    saved = json.loads(json_path.read_text())
    all_row = saved["rows"][-1]
    assert all_row["condition"] == "all" and all_row["recordings"] == 1
    assert 0.0 <= all_row["mean_abs_diff"] <= all_row["max_abs_diff"] <= 1.0
    assert 0.0 <= all_row["frame_agreement"] <= 1.0
    assert 0.0 <= all_row["auroc_fast"] <= 1.0 and not math.isnan(all_row["auroc_exact"])


def test_segment_matching_uses_both_ends():
    bench = load_script("fast_vs_exact")
    a = [(1.0, 2.0), (3.0, 4.0)]
    assert bench.matched_fraction(a, [(1.1, 2.1), (3.0, 4.5)], 0.15) == 0.5  # second end is 0.5 s off
    assert bench.matched_fraction(a, [], 0.15) == 0.0
    assert math.isnan(bench.matched_fraction([], a, 0.15))
    mask = bench.segments_to_frames([(0.05, 0.1)], 20)
    assert mask.sum() == 5 and mask[5] and not mask[10]


@needs_espeak
def test_vad_speed_skips_missing_packages_with_a_note(random_checkpoint, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "silero_vad", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "webrtcvad", None)
    bench = load_script("vad_speed")
    assert bench.main(["--model", str(random_checkpoint), "--seconds", "3", "--repeats", "1", "--no-profile"]) == 0
    out = capsys.readouterr().out
    rows = table_rows(out, "system")
    for label in ("silero ONNX", "silero JIT", "webrtcvad"):
        note = " ".join(rows[label])
        assert rows[label][0] == "-" and "skipped:" in note and "not installed" in note
    assert NUMBER.match(rows["fdvad fast"][0])
    assert "CHECK fast faster than silero: FAIL (silero not measured)" in out


@needs_espeak
def test_real_sample_scores_a_labelled_recording(tmp_path, monkeypatch, capsys):
    """The real-speech check, on a generated recording in place of the downloaded one (no network in tests)."""
    import soundfile as sf

    from fdvad.data.scenes import make_test_recording
    from fdvad.vad.formats import write_segments
    from fdvad.vad.segment import Segment

    rec = make_test_recording(seed=5, n_utterances=3, snr_db=15.0)
    wav, rttm = tmp_path / "sample.wav", tmp_path / "sample.rttm"
    sf.write(wav, rec.audio, 16000)
    write_segments(rttm, [Segment(a, b) for a, b in rec.utterance_spans], "rttm", wav)
    script = load_script("real_sample")
    monkeypatch.setattr(script, "fetch_sample", lambda cache: (wav, rttm))
    assert script.main(["--cache", str(tmp_path)]) == 0
    rows = {line.split()[0] + " " + line.split()[1]: line.split()[2:] for line in capsys.readouterr().out.splitlines()
            if line.startswith(("fdvad", "silero"))}
    assert set(rows) >= {"fdvad fast", "fdvad exact"}
    miss, fa, deter, auroc = map(float, rows["fdvad fast"])
    assert deter == pytest.approx(miss + fa, abs=2e-3) and deter < 0.2 and auroc > 0.95
