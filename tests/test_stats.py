"""Corpus statistics on a hand-made corpus, the histogram plot, and `fdvad data stats` as a user runs it."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from fdvad.data.corpora import LabelledAudio
from fdvad.data.stats import corpus_stats, save_histogram, snr_band
from fdvad.errors import OutputExistsError
from fdvad.vad.segment import Segment

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

ITEMS = [
    LabelledAudio("/c/a.wav", 0.0, 10.0, [Segment(0, 5)],
                  {"language": "en", "snr_db": 5, "noise": "music", "codec": "mp3", "voice": "en+m3"}),
    LabelledAudio("/c/b.wav", 3.0, 20.0, [Segment(0, 2), Segment(1, 2.5), Segment(10, 12)],
                  {"language": "de", "snr_db": -3, "noise": ["babble", "music"]}),
    LabelledAudio("/c/c.wav", 0.0, 6.0, [Segment(5, 9)], {"lang": "en", "snr": 25}),  # speech past the end
    LabelledAudio("/c/d.wav", 0.0, 0.0, [], {"snr_db": float("inf"), "language": None}),
]


def test_corpus_stats_by_hand():
    stats = corpus_stats(ITEMS)
    # 10 + 20 + 6 + 0 = 36 s; speech 5 + (2.5 + 2) + 1 (clipped at 6 s) = 10.5 s
    assert stats["items"] == 4
    assert stats["hours"] == pytest.approx(36 / 3600)
    assert stats["speech_hours"] == pytest.approx(10.5 / 3600)
    assert stats["speech_ratio"] == pytest.approx(10.5 / 36)
    assert stats["counts"] == {
        "language": {"en": 2, "de": 1},
        "voice": {"en+m3": 1},
        "noise": {"music": 2, "babble": 1},
        "snr_band": {"<0": 1, "0-10": 1, ">=20": 1, "clean": 1},
        "codec": {"mp3": 1},
    }
    assert list(stats["counts"]["snr_band"]) == ["<0", "0-10", ">=20", "clean"]  # band order, not count order
    assert stats["per_item"]["duration_s"] == [10.0, 20.0, 6.0, 0.0]
    assert stats["per_item"]["speech_ratio"] == pytest.approx([0.5, 4.5 / 20, 1 / 6, 0.0])


def test_empty_corpus_and_snr_bands():
    stats = corpus_stats([])
    assert (stats["items"], stats["hours"], stats["speech_ratio"], stats["counts"]) == (0, 0.0, 0.0, {})
    assert [snr_band(v) for v in (-0.1, 0, 9.99, 10, 19.9, 20, "30", "clean", float("inf"))] == [
        "<0", "0-10", "0-10", "10-20", "10-20", ">=20", ">=20", "clean", "clean"]


def test_save_histogram_writes_png_and_refuses_overwrite(tmp_path):
    png = tmp_path / "hist.png"
    assert save_histogram(ITEMS, png) == png
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    with pytest.raises(OutputExistsError):
        save_histogram(corpus_stats(ITEMS), png)
    assert png.read_bytes() == data
    save_histogram(corpus_stats(ITEMS[:1]), png, overwrite=True)
    assert png.read_bytes() != data
    assert [p.name for p in tmp_path.iterdir()] == ["hist.png"]  # no temporary file left


def run(*args):
    proc = subprocess.run([sys.executable, "-m", "fdvad.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_data_stats(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(16000 * 9, np.float32), 16000)
    sf.write(tmp_path / "b.wav", np.zeros(16000 * 9, np.float32), 16000)
    manifest = tmp_path / "train.json"
    manifest.write_text(
        json.dumps({"audio_filepath": "a.wav", "duration": 9.0, "label": " ".join(["1"] * 150 + ["0"] * 300),
                    "language": "fr", "snr_db": 12}) + "\n"
        + json.dumps({"audio_filepath": "b.wav", "offset": 0, "duration": 3.0, "label": "speech"}) + "\n")
    png = tmp_path / "stats.png"

    rc, out, err = run("data", "stats", manifest, "--plot", png)
    assert rc == 0, err
    # a: 9 s with 3 s speech; b: 9 s (the whole file, grouped) with 3 s speech -> 18 s, 6 s speech
    assert "hours" in out and "0.005" in out and "speech ratio" in out and "0.333" in out
    assert "fr" in out and "10-20" in out
    assert png.read_bytes().startswith(PNG_MAGIC)

    rc, out, err = run("data", "stats", manifest, "--json")
    stats = json.loads(out)
    assert rc == 0 and stats["items"] == 2 and stats["hours"] == pytest.approx(18 / 3600)
    assert stats["speech_ratio"] == pytest.approx(1 / 3) and "per_item" not in stats

    before = png.read_bytes()
    rc, out, err = run("data", "stats", manifest, "--plot", png)
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc != 0 and len(lines) == 1 and lines[0].startswith("error: ") and "--overwrite" in lines[0]
    assert "Traceback" not in err and png.read_bytes() == before
    rc, _, err = run("data", "stats", manifest, "--plot", png, "--overwrite")
    assert rc == 0, err

    (tmp_path / "bad.json").write_text('{"audio_filepath": "a.wav", "duration": 1, "label": "perhaps"}\n')
    rc, out, err = run("data", "stats", tmp_path / "bad.json")
    lines = [l for l in err.splitlines() if l.strip()]
    assert rc == 2 and len(lines) == 1 and "bad.json, line 1" in lines[0] and "Traceback" not in err


def test_noise_kinds_and_categories_are_counted(tmp_path):
    import numpy as np
    import soundfile as sf

    from fdvad.data.corpora import LabelledAudio
    from fdvad.data.stats import corpus_stats

    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    items = [LabelledAudio(str(wav), meta={"noise_kind": ["real", "human"], "noise_category": ["engine", "cough"]}),
             LabelledAudio(str(wav), meta={"noise_kind": ["real"], "noise_category": ["alarm"]})]
    counts = corpus_stats(items)["counts"]
    assert counts["noise_kind"] == {"real": 2, "human": 1}
    assert counts["noise_category"] == {"engine": 1, "cough": 1, "alarm": 1}
