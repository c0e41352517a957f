"""Optional speech enhancement before VAD and ASR: 16 kHz float audio in, the same length out.

  none       the audio as it is (the default: enhancement can hurt VAD and ASR, docs/subtitles.md measures it);
  spectral   spectral gating (noisereduce, non-stationary noise estimate);
  rnnoise    RNNoise (pyrnnoise), the recurrent denoiser of Valin 2018, 48 kHz inside, resampled back.
Both are `pip install 'fdvad[enhance]'`; a missing package is one clear error.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError

METHODS = ("none", "spectral", "rnnoise")
RNNOISE_DELAY_S = 0.020


def enhance(audio: np.ndarray, sample_rate: int = 16000, method: str = "none") -> np.ndarray:
    if method not in METHODS:
        raise ConfigError(f"unknown enhancement {method!r}; choose one of {', '.join(METHODS)}")
    if method == "none" or len(audio) == 0:
        return audio
    if method == "spectral":
        try:
            import noisereduce
        except ImportError:
            raise ConfigError("--enhance spectral needs noisereduce: pip install 'fdvad[enhance]'") from None
        out = noisereduce.reduce_noise(y=audio.astype(np.float32), sr=sample_rate, stationary=False)
        return np.asarray(out, np.float32)
    try:
        from pyrnnoise import RNNoise
    except ImportError:
        raise ConfigError("--enhance rnnoise needs pyrnnoise: pip install 'fdvad[enhance]'") from None
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    frames = [frame for _, frame in RNNoise(sample_rate).denoise_chunk(pcm, partial=True)]
    out = np.concatenate(frames, axis=-1).reshape(-1).astype(np.float32) / 32767.0
    # RNNoise and its resampling delay the audio by 20 ms (measured by cross-correlation on speech, tested):
    # shift it back, and pad or cut the end, so that every time stays on the input's timeline
    out = out[int(RNNOISE_DELAY_S * sample_rate):]
    if len(out) < len(audio):
        out = np.concatenate([out, np.zeros(len(audio) - len(out), np.float32)])
    return out[: len(audio)]
