"""The public API on a random-weights checkpoint: shapes, sample rates, modes, options, errors."""

import numpy as np
import pytest
import soundfile as sf
import torch

import fdvad
from fdvad.errors import CheckpointError, ConfigError, InvalidAudioError, MediaNotFoundError
from fdvad.vad.detector import default_model_path


@pytest.fixture(scope="module")
def vad(random_checkpoint):
    return fdvad.load_vad(random_checkpoint)


def test_probs_cover_the_input_in_hops(vad, rng):
    audio = rng.standard_normal(16000 * 3 + 100).astype(np.float32) * 0.1
    probs, hop_s = vad.speech_probs(audio, 16000)
    assert hop_s == pytest.approx(0.08)
    assert len(probs) == int(np.ceil(len(audio) / 1280))
    assert probs.dtype == np.float32 and np.all((probs >= 0) & (probs <= 1))


def test_file_and_array_and_tensor_agree(vad, rng, tmp_path):
    audio = (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.wav", audio, 16000, subtype="FLOAT")
    p_file, _ = vad.speech_probs(str(tmp_path / "a.wav"))
    p_arr, _ = vad.speech_probs(audio, 16000)
    p_tensor, _ = vad.speech_probs(torch.from_numpy(audio), 16000)
    np.testing.assert_allclose(p_file, p_arr, atol=1e-6)
    np.testing.assert_allclose(p_tensor, p_arr, atol=1e-6)


def test_other_sample_rates_and_channels_are_converted(vad, rng):
    audio16 = (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32)
    p16, _ = vad.speech_probs(audio16, 16000)
    stereo = np.stack([audio16, audio16])  # (channels, samples), identical channels
    p_stereo, _ = vad.speech_probs(stereo, 16000)
    np.testing.assert_allclose(p_stereo, p16, atol=1e-5)
    p8, _ = vad.speech_probs(audio16[::2], 8000)  # half the samples at half the rate: same duration
    assert len(p8) == len(p16)


def test_segments_respect_options_and_threshold(vad, rng):
    audio = (rng.standard_normal(16000 * 4) * 0.1).astype(np.float32)
    probs, hop = vad.speech_probs(audio, 16000)
    assert vad.threshold == 0.5
    everything = vad(audio, 16000, threshold=0.0, neg_threshold=0.0)
    assert len(everything) == 1 and everything[0].start == 0 and everything[0].end == pytest.approx(4.0)
    assert vad(audio, 16000, threshold=1.0) == []
    with pytest.raises(ConfigError):
        vad(audio, 16000, bogus_option=3)


def test_exact_and_fast_modes_differ_but_have_same_length(random_checkpoint, rng):
    audio = (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32)
    fast, _ = fdvad.load_vad(random_checkpoint, mode="fast").speech_probs(audio, 16000)
    exact, _ = fdvad.load_vad(random_checkpoint, mode="exact").speech_probs(audio, 16000)
    assert len(fast) == len(exact)
    assert not np.allclose(fast, exact)


def test_bad_inputs(vad, tmp_path):
    with pytest.raises(MediaNotFoundError):
        vad(str(tmp_path / "missing.wav"))
    with pytest.raises(InvalidAudioError):
        vad(np.array([0.0, np.nan, 0.0], np.float32), 16000)
    with pytest.raises(ConfigError):
        vad(str(tmp_path / "x.wav"), sample_rate=8000)
    with pytest.raises(ConfigError):
        fdvad.load_vad(mode="slow")
    with pytest.raises(CheckpointError):
        fdvad.load_vad(tmp_path / "nope.safetensors")
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="neither an fdvad .safetensors nor a NeMo .nemo"):
        fdvad.load_vad(tmp_path / "m.pt")


def test_silence_gives_finite_probs(vad):
    probs, _ = vad.speech_probs(np.zeros(16000, np.float32), 16000)
    assert len(probs) == 13 and np.isfinite(probs).all()


def test_shipped_models_load_by_name_and_an_unknown_name_lists_them():
    from fdvad.vad.detector import shipped_models

    names = shipped_models()
    assert "default" in names
    for name in names:  # earlier defaults stay loadable by name, each with its card
        vad = fdvad.load_vad(name)
        assert vad.name == name and vad.hop_s > 0
        assert (default_model_path().parent / f"{name}.md").is_file()
    with pytest.raises(CheckpointError, match="shipped model: 'default'"):
        fdvad.load_vad("no-such-model")
