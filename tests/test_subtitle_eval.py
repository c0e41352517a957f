import json
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fdvad.errors import ConfigError
from fdvad.subtitles.evaluate import normalize, read_asr_manifest, table
from fdvad.subtitles.episodes import sentence

needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")


def test_sentences_are_varied_and_reproducible():
    a = [sentence(random.Random(1)) for _ in range(3)]
    assert a == [sentence(random.Random(1)) for _ in range(3)]
    many = {sentence(random.Random(k)) for k in range(200)}
    assert len(many) > 150


def test_normalize_and_manifest_errors(tmp_path):
    assert normalize("Hello, World! It's  me.") == "hello world it's me"
    bad = tmp_path / "m.json"
    bad.write_text('{"audio_filepath": "a.wav"}\n')
    with pytest.raises(ConfigError, match="line 1: needs audio_filepath and text"):
        read_asr_manifest(bad)
    bad.write_text("not json\n")
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_asr_manifest(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_asr_manifest(tmp_path / "missing.json")


@needs_flite
def test_episodes_have_non_overlapping_turns_inside_the_audio_and_resume(tmp_path):
    from fdvad.subtitles.episodes import make_episode, write_episodes

    ep = make_episode(3, minutes=0.5)
    assert ep.duration_s == 30.0 and ep.turns
    assert all(0 <= s < e <= 30.0 for s, e, _, _ in ep.turns)
    assert all(a[1] <= b[0] for a, b in zip(ep.turns, ep.turns[1:]))
    assert np.abs(ep.audio).max() <= 0.5 + 1e-6
    manifest = write_episodes(tmp_path, count=1, minutes=0.5, seed=3)
    entry = json.loads(manifest.read_text())
    assert entry["text"] == ep.text and entry["turns"] == [list(t) for t in ep.turns]
    wav = tmp_path / "episode_003_0.5min.wav"
    before = wav.stat().st_mtime_ns
    write_episodes(tmp_path, count=1, minutes=0.5, seed=3)  # kept, not made again
    assert wav.stat().st_mtime_ns == before


@pytest.mark.slow
@needs_flite
def test_eval_asr_scores_each_vad_choice(tmp_path):
    pytest.importorskip("jiwer")
    pytest.importorskip("pocketsphinx")
    from fdvad.subtitles.episodes import write_episodes

    manifest = write_episodes(tmp_path / "eps", count=1, minutes=0.5, seed=5)
    r = subprocess.run([sys.executable, "-m", "fdvad.cli", "eval-asr", str(manifest), "--vads", "default,none",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "out" / "eval_asr.json").read_text())
    assert set(report["systems"]) == {"default", "none"}
    for name, s in report["systems"].items():
        assert 0 <= s["cer"] <= s["wer"] + 1 and s["total_s"] >= s["asr_s"] > 0
        assert 0 < s["speech_recall"] <= 1
    assert report["systems"]["none"]["speech_recall"] == 1.0  # fixed windows hear everything
    assert report["systems"]["default"]["asr_audio_min"] < report["systems"]["none"]["asr_audio_min"]
    assert "| default |" in table(report) and (tmp_path / "out" / "eval_asr.md").is_file()


def test_eval_asr_refuses_an_unknown_enhancement(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text('{"audio_filepath": "a.wav", "text": "hi"}\n')
    r = subprocess.run([sys.executable, "-m", "fdvad.cli", "eval-asr", str(manifest), "--enhance", "none,demucs",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and r.stderr.startswith("error: --enhance: unknown demucs") and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()
