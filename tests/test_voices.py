"""TTS voices over espeak-ng, flite and festival: listing, synthesis, errors and label accuracy.

Label accuracy (issue 3, Must show): a clean utterance placed at a known offset inside digital silence gets frame
labels whose first/last speech frame lies within 20 ms of the first/last sample above 1% of the peak.
"""

import random

import numpy as np
import pytest

from fdvad.data import tts, voices
from fdvad.data.texts import SENTENCES
from fdvad.errors import ConfigError, FdvadError

SR = 16000
TOLERANCE_S = 0.020
# one voice per engine for the main check; the slow all-voices check covers the rest
REPRESENTATIVE = {"espeak": ["espeak:en-us", "espeak:de+f3", "espeak:fr-fr+whisper"],
                  "flite": ["flite:slt", "flite:kal16"],
                  "festival": ["festival:kal_diphone", "festival:cmu_us_slt_arctic_hts"]}


def needs(engine):
    if not voices.engine_installed(engine):
        pytest.skip(f"{engine} is not installed: apt-get install {voices.ENGINE_PACKAGES[engine]}")
    if not voices.list_voices(engine):
        pytest.skip(f"{engine} is installed but no voice works")


def text_for(voice):
    return voices.PROBE_TEXT.get(voice.primary_language) or SENTENCES[voice.primary_language][0]


def reference_bounds(x, rel=0.01):
    """First and last sample above `rel` of the peak, in seconds: computed without tts.py."""
    above = np.flatnonzero(np.abs(x) > rel * np.abs(x).max())
    return above[0] / SR, (above[-1] + 1) / SR


def label_errors(clean, offset_samples, tail_samples=8000):
    """(start error, end error) in seconds of tts.speech_frames against the sample reference."""
    x = np.concatenate([np.zeros(offset_samples, np.float32), clean, np.zeros(tail_samples, np.float32)])
    frames = tts.speech_frames(x, SR)
    idx = np.flatnonzero(frames)
    assert len(idx), "no speech frame labelled"
    ref_start, ref_end = reference_bounds(x)
    assert ref_start >= offset_samples / SR  # the placement is where the speech is
    return idx[0] * 0.01 - ref_start, (idx[-1] + 1) * 0.01 - ref_end


@pytest.mark.parametrize("engine", voices.ENGINES)
def test_list_voices_per_installed_engine(engine):
    needs(engine)
    found = voices.list_voices(engine)
    assert found and all(v.engine == engine for v in found)
    names = [v.name for v in found]
    assert len(set(names)) == len(names)
    assert all(v == v.base_voice for v in found)
    assert all(voices.get_voice(v.name) == v for v in found[:20])
    assert engine in voices.available_engines()
    for v in found[:5]:
        assert v.package in voices.LICENCES


def test_list_voices_filters_by_language():
    needs("espeak")
    english = voices.list_voices(language="en")
    assert english and all(v.primary_language == "en" for v in english)
    assert {v.language for v in voices.list_voices("espeak", "en-us")} == {"en-us"}
    assert voices.get_voice("espeak:en+f3").name == "espeak:en-gb+f3"  # espeak-ng's own alias


@pytest.mark.parametrize("engine", voices.ENGINES)
def test_synthesize_and_label_accuracy(engine):
    needs(engine)
    for name in REPRESENTATIVE[engine]:
        voice = voices.get_voice(name)
        audio = voices.synthesize(text_for(voice), voice)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert np.isfinite(audio).all()
        assert 0.3 * SR < len(audio) < 15 * SR
        assert np.abs(audio).max() > 0.05
        for offset in (4960, 5000, 12345):  # frame-aligned and not
            start_err, end_err = label_errors(audio, offset)
            assert abs(start_err) <= TOLERANCE_S, (name, offset, start_err)
            assert abs(end_err) <= TOLERANCE_S, (name, offset, end_err)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["flite", "festival"])
def test_label_accuracy_all_voices(engine):
    needs(engine)
    for voice in voices.list_voices(engine):
        audio = voices.synthesize(text_for(voice), voice)
        start_err, end_err = label_errors(audio, 4960)
        limit = 0.25 if voice.name in voices.LOOSE_LABELS else TOLERANCE_S
        assert abs(start_err) <= limit and abs(end_err) <= limit, (voice.name, start_err, end_err)


def test_speaking_parameters_change_the_audio():
    needs("espeak")
    base = voices.get_voice("espeak:en-us")
    slow = voices.synthesize("The weather is going to be cold and windy tomorrow", base)
    fast = voices.speak("The weather is going to be cold and windy tomorrow", base, "fast")
    assert len(fast) < 0.85 * len(slow)
    whisper = voices.styled(voices.get_voice("espeak:de+f3"), "whisper")
    assert whisper.variant == "whisperf" and whisper.base_voice.name == "espeak:de+whisperf"
    with pytest.raises(ConfigError, match="unknown speaking style"):
        voices.styled(base, "sing")


@pytest.mark.parametrize("engine", ["flite", "festival"])
def test_duration_stretch_slows_recorded_voices(engine):
    needs(engine)
    voice = voices.list_voices(engine, "en")[0]
    normal = voices.synthesize("Please call me back when you get this message", voice)
    slow = voices.synthesize("Please call me back when you get this message", voices.styled(voice, "slow"))
    assert len(slow) > 1.2 * len(normal)


def test_random_voice_is_reproducible_and_respects_filters():
    needs("espeak")
    a = [voices.random_voice(random.Random(7)) for _ in range(3)]
    b = [voices.random_voice(random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    picked = [voices.random_voice(rng, languages=["de", "fr"], engines=["espeak"]) for _ in range(30)]
    assert {v.primary_language for v in picked} <= {"de", "fr"}
    assert all(voices.ESPEAK_RATE_WPM[0] <= v.rate_wpm <= voices.ESPEAK_RATE_WPM[1] for v in picked)
    excluded = {v.name for v in voices.list_voices("espeak", "de")[:40]}
    assert all(voices.random_voice(rng, ["de"], ["espeak"], excluded).name not in excluded for _ in range(20))
    with pytest.raises(ConfigError):
        voices.random_voice(rng, languages=["xx-nonexistent"])


def test_random_voice_skips_voices_with_unreliable_labels():
    needs("festival")
    hindi = [v for v in voices.list_voices("festival", "hi") if v.name in voices.UNRELIABLE_LABELS]
    if not hindi:
        pytest.skip("festvox-hi-nsk is not installed")
    rng = random.Random(0)
    with pytest.raises(ConfigError, match="no TTS voice"):
        voices.random_voice(rng, languages=["hi"], engines=["festival"])
    assert voices.random_voice(rng, ["hi"], ["festival"], include_unreliable=True).base_voice == hindi[0]


def test_unknown_voice_is_a_one_line_config_error():
    needs("espeak")
    for name in ("espeak:xx-nonexistent", "klingon:worf", "flite:nobody"):
        with pytest.raises(ConfigError, match="unknown TTS voice") as info:
            voices.get_voice(name)
        assert "\n" not in str(info.value) and "available:" in str(info.value)
    made_up = voices.Voice("espeak", "xx-nonexistent", "xx")
    with pytest.raises(ConfigError, match="unknown TTS voice 'espeak:xx-nonexistent'"):
        voices.synthesize("hello", made_up)


def test_text_a_voice_cannot_speak_is_a_config_error():
    needs("espeak")
    with pytest.raises(ConfigError):
        voices.synthesize("   ", voices.get_voice("espeak:en-us"))
    if voices.engine_installed("flite"):
        with pytest.raises(ConfigError, match="English only"):
            voices.synthesize("Доброе утро", voices.get_voice("flite:slt"))
    if voices.engine_installed("festival") and voices.list_voices("festival", "cs"):
        with pytest.raises(ConfigError, match="cannot speak"):
            voices.synthesize("Доброе утро", voices.list_voices("festival", "cs")[0])


def test_missing_engine_program_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    for engine, package in voices.ENGINE_PACKAGES.items():
        with pytest.raises(FdvadError, match=f"apt-get install {package}") as info:
            voices.synthesize("hello", voices.Voice(engine, "x", "en"))
        assert not isinstance(info.value, ConfigError)
