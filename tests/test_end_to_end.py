"""The shipped default model on generated speech in the containers users have: segment boundaries must be
within 0.15 s of the true ones (held-out espeak-ng voices, >= 1 s of noise at 10 dB SNR between utterances)."""

import numpy as np
import pytest
import soundfile as sf

import fdvad
from media import encode, has_encoder

TOLERANCE_S = 0.15


def check_boundaries(segments, truth):
    found = [(round(s.start, 2), round(s.end, 2)) for s in segments]
    assert len(segments) == len(truth), f"expected {truth}, got {found}"
    for seg, (start, end) in zip(segments, truth):
        assert abs(seg.start - start) <= TOLERANCE_S, f"start {seg.start:.2f} vs {start:.2f}; all: {found}"
        assert abs(seg.end - end) <= TOLERANCE_S, f"end {seg.end:.2f} vs {end:.2f}; all: {found}"


def resample_linear(x, rate):
    t = np.arange(int(len(x) * rate / 16000)) * 16000 / rate
    return np.interp(t, np.arange(len(x)), x).astype(np.float32)


@pytest.fixture(scope="module")
def default_vad():
    return fdvad.load_vad()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mp4_aac", "opus", "wav_8k_stereo", "flac_48k_24bit", "array"])
def test_boundaries_within_tolerance(default_vad, speech_recording, tmp_path, kind):
    audio = speech_recording.audio
    if kind == "array":
        segments = default_vad(audio, 16000)
    else:
        if kind == "mp4_aac":
            path = tmp_path / "talk.mp4"
            encode(path, audio[None], 16000, "aac", video=True)
        elif kind == "opus":
            if not has_encoder("libopus"):
                pytest.skip("PyAV build without libopus")
            path = tmp_path / "talk.opus"
            encode(path, resample_linear(audio, 48000)[None], 48000, "libopus", video=False)
        elif kind == "wav_8k_stereo":
            path = tmp_path / "talk.wav"
            x8 = resample_linear(audio, 8000)
            sf.write(path, np.stack([x8, x8 * 0.8], axis=1), 8000, subtype="PCM_16")
        else:
            path = tmp_path / "talk.flac"
            sf.write(path, resample_linear(audio, 48000), 48000, subtype="PCM_24")
        segments = default_vad(str(path))
    check_boundaries(segments, speech_recording.utterance_spans)


@pytest.mark.slow
def test_exact_mode_also_within_tolerance(speech_recording):
    vad = fdvad.load_vad(mode="exact")
    check_boundaries(vad(speech_recording.audio, 16000), speech_recording.utterance_spans)


@pytest.mark.slow
def test_bundled_sample_matches_its_truth():
    from pathlib import Path

    from fdvad.vad.formats import read_rttm

    root = Path(__file__).resolve().parents[1] / "examples"
    truth = read_rttm(root / "sample.rttm")["sample"]
    segments = fdvad.load_vad()(str(root / "sample.flac"))
    check_boundaries(segments, [(s.start, s.end) for s in truth])


@pytest.mark.slow
def test_cli_on_video_with_aac_track(speech_recording, tmp_path):
    import json
    import subprocess
    import sys

    from fdvad.vad.segment import Segment

    video = tmp_path / "talk.mp4"
    encode(video, speech_recording.audio[None], 16000, "aac", video=True)
    out = tmp_path / "talk.json"
    proc = subprocess.run([sys.executable, "-m", "fdvad.cli", "vad", str(video), "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    segments = [Segment(d["start"], d["end"]) for d in json.loads(out.read_text())]
    check_boundaries(segments, speech_recording.utterance_spans)
