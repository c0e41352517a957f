import shutil

import numpy as np
import pytest

from fdvad.errors import ConfigError
from fdvad.subtitles.asr import ENGINES, make_asr

pytest.importorskip("pocketsphinx")


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
def test_pocketsphinx_words_carry_times_inside_the_speech():
    from fdvad.data.voices import get_voice, synthesize

    speech = synthesize("please call me tomorrow morning", get_voice("flite:slt"))
    audio = np.concatenate([np.zeros(32000, np.float32), speech, np.zeros(16000, np.float32)])
    words = make_asr("pocketsphinx").transcribe(audio)
    text = " ".join(w.text for w in words)
    assert "tomorrow" in text and "morning" in text  # flite speech is recognised nearly exactly here
    speech_end = 2.0 + len(speech) / 16000
    for w in words:
        assert 2.0 - 0.1 <= w.start < w.end <= speech_end + 0.1
        assert not w.text.startswith(("<", "[", "++"))  # fillers removed
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_every_engine_fails_with_one_clear_line_without_its_model(tmp_path):
    with pytest.raises(ConfigError, match="unknown ASR engine"):
        make_asr("kaldi")
    for engine in ENGINES[1:]:
        with pytest.raises(ConfigError, match="--asr-model|pip install"):
            make_asr(engine)
        with pytest.raises(ConfigError, match="not found|pip install"):
            make_asr(engine, str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="English only"):
        make_asr("pocketsphinx", language="fr")
    with pytest.raises(ConfigError, match="mdef"):
        make_asr("pocketsphinx", str(tmp_path))
