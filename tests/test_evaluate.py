"""fdvad.eval: systems behind one call, corpus metrics by hand, curves, and the eval / compare commands."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from fdvad.data.corpora import LabelledAudio
from fdvad.errors import ConfigError
from fdvad.eval.evaluate import (by_condition, compare_systems, conditions, pr_curve, roc_curve, score_items,
                                 summarize)
from fdvad.eval.metrics import roc_auc
from fdvad.eval.systems import System, SystemOutput, _runs_to_segments, _stretch, make_system
from fdvad.vad.segment import Segment

SR = 16000


def _fake(segments_of):
    """A system whose probability is 1 inside the segments it returns and 0 elsewhere."""
    def run(audio):
        n = -(-len(audio) // 160)
        segs = segments_of(len(audio) / SR)
        probs = np.zeros(n, np.float32)
        for s in segs:
            probs[int(round(s.start * 100)):int(round(s.end * 100))] = 1
        return SystemOutput(probs, segs)
    return System("fake", run)


def test_metrics_by_hand():
    speech = LabelledAudio("a.wav", 0.0, 2.0, [Segment(0.5, 1.5)], {"language": "de", "snr_db": 5.0,
                                                                    "noise_kind": ["real"], "codec": "opus@16k",
                                                                    "effects": {"reverb": {"rt60_s": 0.3}}})
    music = LabelledAudio("b.wav", 0.0, 2.0, [], {"noise_kind": ["music"], "snr_db": None})
    noise = LabelledAudio("c.wav", 0.0, 2.0, [], {"noise_kind": ["real", "human"], "snr_db": None})
    answers = iter([[Segment(0.6, 1.5)], [Segment(0.0, 0.5)], []])  # one per item, in order
    system = _fake(lambda duration: next(answers))
    scores = score_items(system, [speech, music, noise], [np.zeros(2 * SR, np.float32)] * 3)
    r = summarize(scores)
    # frames: 100 speech (50..149), the system finds 90 of them and 50 frames of music
    assert r["recall"] == pytest.approx(0.9) and r["precision"] == pytest.approx(90 / 140, abs=1e-4)
    # AUROC: 90 speech frames at 1, 10 at 0; of 500 non-speech frames 50 at 1:
    # P(speech > non-speech) + P(tie) / 2 = 0.9 * 0.9 + 0.5 * (0.9 * 0.1 + 0.1 * 0.9)
    assert r["auroc"] == pytest.approx(0.9 * 0.9 + 0.5 * (0.09 + 0.09), abs=1e-4)
    # DetER, collar 0: miss 0.1 s + false alarm 0.5 s (the music item) over 1 s of speech
    assert r["miss@0"] == pytest.approx(0.1) and r["false_alarm@0"] == pytest.approx(0.5)
    assert r["deter@0"] == pytest.approx(0.6)
    # collar 0.25 s (+-0.125 s around reference boundaries 0.5 and 1.5): the 0.1 s miss is inside the collar
    assert r["miss@0.25"] == pytest.approx(0.0) and r["false_alarm@0.25"] == pytest.approx(0.5 / 0.75, abs=1e-4)
    assert r["fp_rate_music_only"] == pytest.approx(0.25) and r["music_only_items"] == 1
    assert r["fp_rate_noise_only"] == 0.0 and r["noise_only_items"] == 1
    assert r["hours"] == pytest.approx(6 / 3600, abs=1e-4) and r["items"] == 3

    assert conditions(speech.meta) == {"language": ["de"], "snr": ["0-10 dB"], "noise_kind": ["real"],
                                       "codec": ["opus"], "reverb": ["reverb"]}
    assert conditions(noise.meta) == {"snr": ["no speech"], "noise_kind": ["human", "real"]}
    groups = by_condition(scores)
    assert list(groups["snr"]) == ["0-10 dB", "no speech"]
    assert groups["noise_kind"]["real"]["items"] == 2 and groups["noise_kind"]["music"]["fp_rate_no_speech"] == 0.25
    assert groups["snr"]["no speech"]["auroc"] is None  # one class only


def test_curves_agree_with_auroc():
    rng = np.random.default_rng(0)
    truth = rng.random(2000) < 0.3
    probs = np.where(truth, rng.random(2000) * 0.8 + 0.2, rng.random(2000) * 0.8)
    probs = np.round(probs, 2)  # ties
    fpr, tpr = roc_curve(probs, truth)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == pytest.approx(1) and tpr[-1] == pytest.approx(1)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(probs, truth), abs=1e-9)
    recall, precision = pr_curve(np.array([0.9, 0.8, 0.8, 0.1]), np.array([1, 0, 1, 0]))
    assert recall.tolist() == [0.5, 1.0, 1.0] and precision.tolist() == [1.0, 2 / 3, 0.5]


def test_system_helpers():
    assert _stretch(np.array([0.1, 0.9]), 3.2, 8).tolist() == pytest.approx([0.1] * 3 + [0.9] * 5)
    assert _runs_to_segments(np.array([0, 1, 1, 0, 1]), 0.03) == [Segment(0.03, 0.09), Segment(0.12, 0.15)]
    for bad in ("nosuch", "webrtc:7", "webrtc:x", "silero:v4"):
        with pytest.raises(ConfigError):
            make_system(bad)


def test_webrtc_and_pocketsphinx_run_on_audio():
    pytest.importorskip("webrtcvad")
    pytest.importorskip("pocketsphinx")
    audio = np.zeros(SR, np.float32)
    audio[SR // 2:] = np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32) * 0.3
    for spec in ("webrtc", "webrtc:3", "pocketsphinx"):
        out = make_system(spec)(audio)
        assert out.probs.shape == (100,) and set(np.unique(out.probs)) <= {0.0, 1.0}
        assert not out.probs[:40].any()  # digital silence is not speech


def test_compare_times_and_rejects_twins(random_checkpoint, tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(SR, np.float32), SR)
    item = LabelledAudio(str(tmp_path / "a.wav"), 0.0, None, [])
    system = make_system(f"fdvad:{random_checkpoint}")
    results, speed = compare_systems([system], [item])
    assert len(results[system.name]) == 1 and speed[system.name] > 0
    with pytest.raises(ConfigError, match="twice"):
        compare_systems([system, system], [item])


def _corpus(tmp_path, speech_recording):
    folder = tmp_path / "corpus"
    (folder / "rttm").mkdir(parents=True)
    rec = speech_recording
    sf.write(folder / "rec.wav", rec.audio, SR)
    spans = np.flatnonzero(np.diff(np.concatenate([[0], rec.frames.astype(np.int8), [0]])))
    (folder / "rttm" / "rec.rttm").write_text("".join(
        f"SPEAKER rec 1 {a / 100:.2f} {(b - a) / 100:.2f} <NA> <NA> speech <NA> <NA>\n"
        for a, b in zip(spans[::2], spans[1::2])))
    return folder


def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "fdvad.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def test_eval_and_compare_commands(tmp_path, speech_recording):
    corpus = _corpus(tmp_path, speech_recording)
    rc, out, err = _cli("eval", "default", corpus, "--out", tmp_path / "ev")
    assert rc == 0, err
    report = json.loads((tmp_path / "ev" / "eval.json").read_text())
    assert report["overall"]["auroc"] > 0.9 and report["overall"]["items"] == 1 and "AUROC" in out
    for png in ("roc.png", "pr.png"):
        assert (tmp_path / "ev" / png).read_bytes()[:4] == b"\x89PNG"
    rc, out, err = _cli("eval", "default", corpus, "--out", tmp_path / "ev")
    assert rc != 0 and "--overwrite" in err and "Traceback" not in err

    rc, out, err = _cli("compare", corpus, "--systems", "fdvad,webrtc", "--out", tmp_path / "cmp")
    assert rc == 0, err
    report = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert set(report["systems"]) == {"fdvad", "webrtc"}
    assert report["systems"]["fdvad"]["x_real_time_one_thread"] > 1 and report["systems"]["webrtc"]["binary"]
    assert "webrtc" in out and "x real time" in out

    for args, message in ((("compare", corpus, "--systems", "nosuch", "--out", tmp_path / "c2"), "unknown system"),
                          (("compare", tmp_path / "missing.json", "--out", tmp_path / "c3"), "missing.json"),
                          (("eval", tmp_path / "no.safetensors", corpus, "--out", tmp_path / "c4"), "no.safetensors")):
        rc, out, err = _cli(*args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc != 0 and len(lines) == 1 and message in lines[0] and "Traceback" not in err, err


def test_tune_finds_the_threshold_between_speech_and_a_loud_noise():
    from fdvad.eval.tune import DevItem, tune
    from fdvad.vad.postprocess import PostprocessConfig

    class Stub:
        hop_s = 0.08
        postprocess = PostprocessConfig()  # onset 0.5: the 0.6 noise burst counts as speech

    probs = np.full(50, 0.1)
    probs[10:20] = 0.75  # speech: [0.8, 1.6) s
    probs[30:40] = 0.6  # a noise burst
    truth = np.zeros(400, bool)
    truth[80:160] = True
    dev = [DevItem(probs, 4.0, truth)]
    best, scores, start = tune(Stub(), dev, "f1")
    assert start["f1"] < 0.9 and scores["f1"] == pytest.approx(1.0)
    assert 0.6 <= best.onset < 0.75 and best.offset <= best.onset and best.pad_onset == best.pad_offset == 0
    best_d, scores_d, _ = tune(Stub(), dev, "deter")
    assert scores_d["deter"] == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="objective"):
        tune(Stub(), dev, "auc")
    with pytest.raises(ConfigError, match="no speech"):
        tune(Stub(), [DevItem(probs, 4.0, np.zeros(400, bool))])


def test_tune_command_writes_only_when_asked(tmp_path, speech_recording, random_checkpoint):
    import shutil

    import yaml

    corpus = _corpus(tmp_path, speech_recording)
    model = tmp_path / "m.safetensors"
    shutil.copy(random_checkpoint, model)
    shutil.copy(random_checkpoint.with_suffix(".yaml"), model.with_suffix(".yaml"))
    before = model.with_suffix(".yaml").read_text()
    rc, out, err = _cli("tune", model, corpus)
    assert rc == 0, err
    assert "tuned:" in out and model.with_suffix(".yaml").read_text() == before  # nothing written
    rc, out, err = _cli("tune", model, corpus, "--objective", "deter", "--write")
    assert rc == 0, err
    config = yaml.safe_load(model.with_suffix(".yaml").read_text())
    assert config["tuning"]["postprocess"]["objective"] == "deter" and config["format"] == "fdvad-vad-1"
    tuned = out.split("tuned:")[1]
    assert f"onset {config['postprocess']['onset']:g}," in tuned
    rc, out, err = _cli("tune", "default", corpus, "--save-as", tmp_path / "d.safetensors")
    assert rc == 0, err and (tmp_path / "d.yaml").is_file()
    for args, message in ((("tune", "default", corpus, "--write"), "--save-as"),
                          (("tune", "default", corpus, "--save-as", tmp_path / "d.safetensors"), "exists"),
                          (("tune", model, corpus, "--objective", "auc"), "objective")):
        rc, out, err = _cli(*args)
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc != 0 and len(lines) == 1 and message in lines[0] and "Traceback" not in err, err


def test_tenvad_when_it_is_installed():
    pytest.importorskip("ten_vad")  # optional only: its licence has a non-compete clause
    try:
        system = make_system("tenvad")
    except ConfigError as e:
        assert "libc++1" in str(e)
        pytest.skip("ten-vad's library needs libc++1")
    audio = np.zeros(SR, np.float32)
    audio[SR // 2:] = np.random.default_rng(0).standard_normal(SR // 2).astype(np.float32) * 0.3
    out = system(audio)
    assert out.probs.shape == (100,) and out.probs.max() <= 1.0
    assert all(isinstance(s.start, float) for s in out.segments)
