"""Window scoring: geometry, block-size independence, exact mode = NeMo's isolated windows."""

import numpy as np
import pytest
import torch

from fdvad.errors import ConfigError
from fdvad.features import FeatureExtractor
from fdvad.models.checkpoint import load_checkpoint
from fdvad.vad.detector import default_model_path
from fdvad.vad.infer import WindowScorer, WindowSpec, num_windows


@pytest.fixture(scope="module")
def model():
    # the shipped, trained model: its outputs react to the input, unlike a random network's
    return load_checkpoint(default_model_path())[0]


@pytest.fixture(scope="module")
def audio():
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 12) / 16000
    x = 0.05 * rng.standard_normal(len(t))
    x[32000:80000] += 0.3 * np.sin(2 * np.pi * 180 * t[32000:80000]) * (1 + np.sin(2 * np.pi * 4 * t[32000:80000]))
    return x.astype(np.float32)


def test_geometry_matches_nemo():
    spec = WindowSpec()
    assert (spec.window_frames, spec.shift_frames, spec.shift_samples, spec.lead_frames) == (63, 8, 1280, 27)
    assert num_windows(16000, spec) == 13 and num_windows(1280, spec) == 1 and num_windows(1281, spec) == 2
    with pytest.raises(ConfigError):
        WindowSpec(shift_s=0.085).validate()


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_result_does_not_depend_on_blocks(model, audio, mode):
    fe = FeatureExtractor()
    whole = WindowScorer(model, fe, mode=mode)(audio)
    assert len(whole) == num_windows(len(audio), WindowSpec())
    small = WindowScorer(model, fe, mode=mode, block_windows=7)
    pieces = [audio[i:i + 5555] for i in range(0, len(audio), 5555)]
    np.testing.assert_allclose(small(pieces), whole, atol=2e-5)
    assert whole.max() - whole.min() > 0.5  # the check means something only if the output varies


def test_exact_mode_equals_isolated_nemo_windows(model, audio):
    fe = FeatureExtractor().eval()
    probs = WindowScorer(model, fe, mode="exact")(audio)
    padded = np.concatenate([np.zeros(27 * 160, np.float32), audio, np.zeros(20000, np.float32)])
    for k in (0, 10, 40, len(probs) - 1):
        # NeMo: 10080 samples -> 64 frames of which 63 are valid; window k starts 27 frames before frame 8k
        window = padded[k * 1280: k * 1280 + 10080]
        with torch.no_grad():
            logits = model(fe(torch.from_numpy(window)), torch.tensor([63]))
        expected = torch.sigmoid(logits[0, 1] - logits[0, 0]).item()
        # whole-file features differ from per-window ones only in the STFT frames at the window's edges
        assert probs[k] == pytest.approx(expected, abs=0.02), k


def test_fast_mode_is_close_to_exact(model, audio):
    fe = FeatureExtractor()
    fast = WindowScorer(model, fe, mode="fast")(audio)
    exact = WindowScorer(model, fe, mode="exact")(audio)
    assert np.mean(np.abs(fast - exact)) < 0.05
    assert np.array_equal(fast > 0.5, exact > 0.5) or np.mean((fast > 0.5) != (exact > 0.5)) < 0.05


def test_empty_and_short_inputs(model):
    scorer = WindowScorer(model, FeatureExtractor())
    assert len(scorer(np.zeros(0, np.float32))) == 0
    assert len(scorer(np.zeros(10, np.float32))) == 1
