"""Our Silero VAD v6 network against the packaged model: same probabilities on a minute of audio."""

import numpy as np
import pytest
import torch

silero_vad = pytest.importorskip("silero_vad")

from fdvad.errors import CheckpointError  # noqa: E402
from fdvad.models.silero import CHUNK, SileroV6, load_silero_v6  # noqa: E402


def _minute(seed: int = 0) -> np.ndarray:
    """A minute of speech-like sound (harmonic bursts with syllable rhythm) over noise, with silences."""
    rng = np.random.default_rng(seed)
    t = np.arange(60 * 16000) / 16000
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.3 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 8))
    syllables = (np.sin(2 * np.pi * 4 * t) > 0).astype(float) * (np.sin(2 * np.pi * 0.1 * t) > -0.3)
    audio = 0.3 * voiced * syllables + rng.normal(0, 0.01, len(t))
    return audio[: 60 * 16000 - 300].astype(np.float32)  # not a multiple of 512: the last chunk is padded


def _packaged_probs(audio: np.ndarray) -> np.ndarray:
    model = silero_vad.load_silero_vad(onnx=False)
    model.reset_states()
    x = torch.from_numpy(np.pad(audio, (0, -len(audio) % CHUNK)))
    with torch.no_grad():
        return np.array([model(x[i: i + CHUNK], 16000).item() for i in range(0, len(x), CHUNK)])


def test_matches_the_packaged_model_on_a_minute_of_audio():
    audio = _minute()
    ours = load_silero_v6()
    with torch.no_grad():
        probs = ours(torch.from_numpy(audio)[None])[0].numpy()
    theirs = _packaged_probs(audio)
    assert probs.shape == theirs.shape == (SileroV6.num_chunks(len(audio)),)
    assert np.abs(probs - theirs).max() <= 1e-4
    assert theirs.max() > 0.5 and theirs.min() < 0.5  # the audio has both speech-like and quiet stretches


def test_batched_files_equal_files_alone_and_features_have_the_frame_rate():
    model = load_silero_v6()
    a, b = _minute(1)[: 16000 * 5], _minute(2)[: 16000 * 5]
    with torch.no_grad():
        both = model(torch.from_numpy(np.stack([a, b])))
        alone = model(torch.from_numpy(b)[None])
        features = model.forward_features(torch.from_numpy(a)[None])
    torch.testing.assert_close(both[1:], alone, atol=1e-5, rtol=0)
    assert features.shape == (1, 128, SileroV6.num_chunks(len(a)))


def test_a_file_that_is_not_silero_is_refused(tmp_path):
    bad = tmp_path / "x.jit"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError):
        load_silero_v6(bad)
