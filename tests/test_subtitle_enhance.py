import shutil

import numpy as np
import pytest

from fdvad.errors import ConfigError
from fdvad.subtitles.enhance import enhance


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed")
@pytest.mark.parametrize("method", ["spectral", "rnnoise"])
def test_enhancement_keeps_length_and_timeline_and_lowers_noise(method):
    pytest.importorskip("noisereduce" if method == "spectral" else "pyrnnoise")
    from fdvad.data.voices import get_voice, synthesize

    rng = np.random.default_rng(0)
    speech = synthesize("please call me tomorrow morning", get_voice("flite:kal"))
    clean = np.concatenate([np.zeros(16000, np.float32), speech, np.zeros(16000, np.float32)])
    noisy = clean + rng.normal(0, 0.02, len(clean)).astype(np.float32)
    out = enhance(noisy, 16000, method)
    assert out.shape == noisy.shape and out.dtype == np.float32
    c = np.correlate(out, clean, "full")
    assert abs(int(c.argmax()) - (len(clean) - 1)) <= 16  # within 1 ms of the input's timeline
    silence = slice(0, 12000)
    assert np.std(out[silence]) < 0.5 * np.std(noisy[silence])  # the noise-only lead-in got quieter


def test_none_and_unknown():
    audio = np.ones(100, np.float32)
    assert enhance(audio, 16000, "none") is audio
    with pytest.raises(ConfigError, match="unknown enhancement"):
        enhance(audio, 16000, "demucs")
