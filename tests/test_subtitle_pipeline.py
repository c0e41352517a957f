"""`fdvad subtitle` end to end on a generated 3-minute video with speech at known times."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from fdvad.subtitles.layout import Cue, LayoutRules, check_layout

pytestmark = pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
pysubs2 = pytest.importorskip("pysubs2")
pytest.importorskip("pocketsphinx")

RATE = 16000
# (start second, voice, sentence): long silences between them, one of 38 s
SCRIPT = [
    (4.0, "flite:kal", "the weather will be cold and windy tomorrow morning"),
    (21.0, "flite:slt", "please call me when you arrive at the station"),
    (43.0, "flite:awb", "we need to buy bread and milk before the shop closes"),
    (81.0, "flite:rms", "the meeting has been moved to thursday afternoon"),
    (112.0, "flite:kal", "my brother lives in a small house near the river"),
    (140.0, "flite:slt", "turn left at the next corner and walk for five minutes"),
    (163.0, "flite:awb", "thank you very much for your help today"),
]


def _speech_span(clip: np.ndarray, start: float) -> tuple[float, float]:
    """Where a clip's speech is: frames within 40 dB of its peak."""
    frames = clip[: len(clip) // 160 * 160].reshape(-1, 160)
    level = 10 * np.log10((frames ** 2).mean(1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - 40)
    return start + loud[0] * 0.01, start + (loud[-1] + 1) * 0.01


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    from media import encode

    from fdvad.data.voices import get_voice, synthesize

    folder = tmp_path_factory.mktemp("episode")
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.002, RATE * 180).astype(np.float32)  # a quiet room
    spans = []
    for start, voice, text in SCRIPT:
        clip = 0.5 * synthesize(text, get_voice(voice))
        i = int(start * RATE)
        audio[i: i + len(clip)] += clip
        spans.append(_speech_span(clip, start))
    path = folder / "episode.mp4"
    encode(path, audio[None, :], RATE, "aac", video=True)
    return path, spans


def _run(*args):
    return subprocess.run([sys.executable, "-m", "fdvad.cli", "subtitle", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


def _cues(path) -> list[Cue]:
    return [Cue(e.start / 1000, e.end / 1000, e.plaintext.split("\n")) for e in pysubs2.load(str(path))]


@pytest.mark.slow
def test_subtitles_of_a_video_lie_in_the_speech_keep_its_times_and_obey_the_layout(episode, tmp_path):
    video, spans = episode
    out = tmp_path / "episode.srt"
    keep = tmp_path / "keep"
    r = _run(video, "-o", out, "--keep-intermediate", keep)
    assert r.returncode == 0, r.stderr
    cues = _cues(out)
    assert len(cues) >= len(SCRIPT)
    for cue in cues:  # every cue inside one utterance, +-0.3 s
        assert any(s - 0.3 <= cue.start and cue.end <= e + 0.3 for s, e in spans), (cue, spans)
    assert check_layout(cues, LayoutRules()) == []
    # the timeline: each utterance, however long the silence before it, is subtitled where it is spoken
    for s, e in spans:
        mine = [c for c in cues if s - 0.3 <= c.start and c.end <= e + 0.3]
        assert mine, (s, e)
        assert abs(mine[0].start - s) <= 0.3 and abs(mine[-1].end - e) <= 0.3
    text = " ".join(" ".join(c.lines) for c in cues).lower()
    assert sum(word in text for word in ("tomorrow", "station", "bread", "thursday", "river", "corner", "thank")) >= 5
    assert {p.suffix for p in keep.iterdir()} == {".wav", ".rttm", ".json"}


def test_bad_inputs_give_one_clear_error_each(episode, tmp_path):
    import soundfile as sf

    from media import encode

    video, _ = episode
    silent_video = tmp_path / "no_audio.mp4"
    encode(silent_video, np.zeros((1, RATE)), RATE, None, video=True)
    glossary = tmp_path / "glossary.txt"
    glossary.write_text("fine\nbad -> \n")
    existing = tmp_path / "done.srt"
    existing.write_text("1\n00:00:01,000 --> 00:00:02,000\nkeep me\n")
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(RATE, np.float32), RATE)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    cases = {
        "no audio stream": [silent_video, "-o", tmp_path / "x.srt"],
        "unknown ASR engine": [wav, "--asr", "kaldi", "-o", tmp_path / "y.srt"],
        "--asr-model": [wav, "--asr", "faster-whisper", "-o", tmp_path / "z.srt"],
        "glossary": [wav, "--glossary", glossary, "-o", tmp_path / "g.srt"],
        "already exists": [wav, "-o", existing],
        "permission denied" if shutil.os.geteuid() != 0 else "does not exist": (
            [wav, "-o", locked / "out.srt"] if shutil.os.geteuid() != 0 else [wav, "-o", tmp_path / "no" / "o.srt"]),
    }
    for expected, args in cases.items():
        r = _run(*args)
        assert r.returncode != 0, expected
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], (expected, r.stderr)
    assert existing.read_text() == "1\n00:00:01,000 --> 00:00:02,000\nkeep me\n"
    assert not list(tmp_path.glob("*.srt.*")) and not (tmp_path / "x.srt").exists()


def test_cues_follow_the_picture_when_the_audio_track_starts_late(tmp_path):
    from media import encode

    from fdvad.data.voices import get_voice, synthesize

    clip = 0.5 * synthesize("please call me when you arrive at the station", get_voice("flite:slt"))
    audio = np.random.default_rng(1).normal(0, 0.002, RATE * 8).astype(np.float32)
    audio[RATE: RATE + len(clip)] += clip[: RATE * 7]
    spoken_s, ended_s = _speech_span(clip, 1.0)  # on the audio's own timeline
    video = tmp_path / "late.mkv"
    encode(video, audio[None, :], RATE, "flac", video=True, audio_start_s=2.0)  # the sound starts 2 s in
    out = tmp_path / "late.srt"
    r = _run(video, "-o", out)
    assert r.returncode == 0, r.stderr
    cues = _cues(out)
    assert cues
    assert abs(cues[0].start - (2.0 + spoken_s)) <= 0.3 and abs(cues[-1].end - (2.0 + ended_s)) <= 0.3


def test_on_picture_timeline_moves_every_cue_and_never_below_zero():
    from fdvad.subtitles.pipeline import on_picture_timeline

    from fdvad.subtitles.layout import Word

    cues = [Cue(0.1, 0.9, ["a"], [Word("a", 0.1, 0.9)]), Cue(2.0, 3.0, ["b"])]
    assert on_picture_timeline(cues, 0.0) is cues
    moved = on_picture_timeline(cues, 1.5)
    assert [(c.start, c.end) for c in moved] == [(1.6, 2.4), (3.5, 4.5)]
    assert [(w.start, w.end) for w in moved[0].words] == [(1.6, 2.4)]  # the JSON output's word times too
    assert [(c.start, c.end) for c in on_picture_timeline(cues, -0.5)] == [(0.0, 0.4), (1.5, 2.5)]
