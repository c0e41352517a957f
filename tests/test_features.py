"""features.py against an independent numpy/librosa computation."""

import numpy as np
import pytest
import torch

from fdvad.errors import ConfigError
from fdvad.features import FeatureConfig, FeatureExtractor, dct_matrix, mel_filterbank

librosa = pytest.importorskip("librosa")


def _test_signal(n=16000 * 2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)


def test_slaney_filters_match_librosa():
    ours = mel_filterbank(16000, 512, 80)
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, htk=False, norm="slaney")
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-7)


def test_htk_filters_match_librosa_htk_without_norm():
    ours = mel_filterbank(16000, 512, 64, scale="htk", norm=None)
    ref = librosa.filters.mel(sr=16000, n_fft=512, n_mels=64, htk=True, norm=None)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6)


def test_logmel_matches_librosa_nemo_recipe():
    x = _test_signal()
    fe = FeatureExtractor(FeatureConfig()).eval()
    ours = fe(torch.from_numpy(x))[0].numpy()
    # independent reference: pre-emphasis -> power mel (symmetric Hann, zero padding) -> log(x + 2^-24)
    y = np.concatenate([x[:1], x[1:] - 0.97 * x[:-1]])
    mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=160, win_length=400,
                                         window=np.hanning(400), center=True, pad_mode="constant",
                                         power=2.0, n_mels=80, htk=False, norm="slaney")
    ref = np.log(mel + 2.0**-24)
    assert ours.shape == ref.shape == (80, len(x) // 160 + 1)
    np.testing.assert_allclose(ours, ref, atol=2e-3, rtol=1e-3)


def test_mfcc_matches_librosa_with_torchaudio_conventions():
    x = _test_signal(seed=1)
    fe = FeatureExtractor(FeatureConfig.nemo_mfcc()).eval()
    ours = fe(torch.from_numpy(x))[0].numpy()
    mel = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=160, win_length=400,
                                         window="hann", center=True, pad_mode="reflect",
                                         power=2.0, n_mels=64, htk=True, norm=None)
    ref = scipy_dct(np.log(mel + 1e-6))
    assert ours.shape == (64, len(x) // 160 + 1)
    np.testing.assert_allclose(ours, ref, atol=5e-3, rtol=1e-3)


def scipy_dct(logmel):
    import scipy.fft
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=0)[:64]


def test_dct_is_orthonormal():
    d = dct_matrix(64, 64)
    np.testing.assert_allclose(d.T @ d, np.eye(64), atol=1e-5)


def test_dither_only_in_training():
    x = torch.zeros(1, 16000)
    fe = FeatureExtractor()
    fe.eval()
    a, b = fe(x), fe(x)
    assert torch.equal(a, b)
    assert torch.allclose(a, torch.full_like(a, np.log(2.0**-24)))
    fe.train()
    assert not torch.equal(fe(x), fe(x))


def test_frame_count_and_batch():
    fe = FeatureExtractor().eval()
    out = fe(torch.zeros(3, 1000))
    assert out.shape == (3, 80, 1000 // 160 + 1)


def test_bad_config():
    with pytest.raises(ConfigError):
        FeatureConfig.from_dict({"kind": "spectrogram"})
    with pytest.raises(ConfigError):
        FeatureConfig.from_dict({"n_melz": 3})
