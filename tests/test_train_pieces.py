"""fdvad.train: crops of a labelled corpus and the window objectives."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from fdvad.data.corpora import LabelledAudio, frame_labels
from fdvad.errors import ConfigError
from fdvad.models import create_model
from fdvad.train.crops import CropSampler
from fdvad.train.objectives import spec_augment, window_losses, window_targets
from fdvad.vad.segment import Segment

SR = 16000


@pytest.fixture
def ramp_items(tmp_path):
    """A 3 s 16 kHz WAV whose samples say where they are, and a 1 s 8 kHz FLAC (decoded whole, resampled)."""
    ramp = (np.arange(3 * SR) / (3 * SR)).astype(np.float32)
    sf.write(tmp_path / "long.wav", ramp, SR, subtype="FLOAT")
    sf.write(tmp_path / "short.flac", np.full(8000, 0.25, np.float32), 8000)
    return [LabelledAudio(str(tmp_path / "long.wav"), 0.0, None, [Segment(0.5, 1.25), Segment(2.0, 2.5)]),
            LabelledAudio(str(tmp_path / "short.flac"), 0.0, None, [Segment(0.2, 0.6)])], ramp


def test_crops_line_up_with_their_labels(ramp_items):
    items, ramp = ramp_items
    sampler = CropSampler(items, crop_s=2.0)
    assert sampler.hours == pytest.approx(4 / 3600)
    long_labels = frame_labels(items[0], 0.01).astype(np.float32)
    short_labels = frame_labels(items[1], 0.01).astype(np.float32)
    rng = np.random.default_rng(0)
    seen_long = seen_short = 0
    for _ in range(20):
        audio, labels = sampler.sample(rng, 8)
        assert audio.shape == (8, 2 * SR) and labels.shape == (8, 200) and audio.dtype == torch.float32
        for x, y in zip(audio.numpy(), labels.numpy()):
            if x[-1] != 0:  # a 2 s crop of the 3 s ramp: where it starts says which labels it must carry
                start = int(round(x[0] * 3 * SR))
                assert start % 160 == 0
                np.testing.assert_array_equal(x, ramp[start:start + 2 * SR])
                np.testing.assert_array_equal(y, long_labels[start // 160: start // 160 + 200])
                seen_long += 1
            else:  # the 1 s item, zero-padded to 2 s; its padding is non-speech
                np.testing.assert_allclose(x[:SR], 0.25, atol=0.02)
                assert not x[SR:].any()
                np.testing.assert_array_equal(y, np.concatenate([short_labels, np.zeros(100, np.float32)]))
                seen_short += 1
    # items are drawn by length: 3 s against 1 s
    assert 0.65 < seen_long / (seen_long + seen_short) < 0.85


def test_a_crop_of_an_item_cut_from_a_longer_file_stops_at_the_item_end(ramp_items):
    items, ramp = ramp_items
    middle = LabelledAudio(items[0].audio_filepath, 1.0, 1.0051, [Segment(0.0, 0.5)])  # 1.0 s to 2.0051 s
    sampler = CropSampler([middle], crop_s=2.0)
    audio, labels = sampler.crop(np.random.default_rng(0))
    end = int(round(1.0051 * SR))
    np.testing.assert_array_equal(audio[:end], ramp[SR:SR + end])  # the item, read from its offset
    assert not audio[end:].any()  # not the rest of the file, which is there but belongs to no label
    assert labels[101:].sum() == 0 and labels[:50].all()


def test_crop_sampler_rejects_bad_input():
    with pytest.raises(ConfigError, match="no items"):
        CropSampler([])
    with pytest.raises(ConfigError, match="crop_s"):
        CropSampler([LabelledAudio("x.wav", 0.0, 1.0, [])], crop_s=0)


def test_window_targets_by_hand():
    frames = torch.zeros(1, 100)
    frames[0, 27:31] = 1  # half of window 0's hop interval [27, 35)
    frames[0, 35:43] = 1  # all of window 1's
    frames[0, 99] = 1
    t = window_targets(frames, 10)
    assert t[0, :3].tolist() == [0.5, 1.0, 0.0]
    # window 9's interval [99, 107) runs past the crop: clamped to the last frame, which is speech
    assert t[0, 9].item() == 1.0


def test_spec_augment_masks_with_the_mean_or_leaves_alone():
    feats = torch.randn(4, 80, 200)
    same = spec_augment(feats, np.random.default_rng(0), p=0.0)
    assert torch.equal(same, feats) and same is not feats
    masked = spec_augment(feats, np.random.default_rng(0), p=1.0, freq_width=20, time_width=30)
    changed = masked != feats
    assert changed.any() and torch.equal(feats, feats.clone())  # the input is untouched
    for i in range(4):
        assert torch.allclose(masked[i][changed[i]], feats[i].mean().expand(int(changed[i].sum())))


class _Constant(torch.nn.Module):
    """Speech logit minus non-speech logit = c everywhere."""

    def __init__(self, c):
        super().__init__()
        self.c = torch.nn.Parameter(torch.tensor(float(c)))

    def forward_features(self, feats):
        return feats

    def frame_logits(self, enc):
        b, _, t = enc.shape
        return torch.stack([torch.zeros(b, t), self.c.expand(b, t)], -1)

    def forward(self, x, lengths):
        return torch.stack([torch.zeros(len(x)), self.c.expand(len(x))], -1)


def test_window_losses_are_cross_entropy_against_hop_fractions():
    c = 0.7
    frames = (torch.rand(2, 400) > 0.5).float()
    fast, exact = window_losses(_Constant(c), torch.zeros(2, 80, 400), frames, np.random.default_rng(1))
    n_windows = (400 - 63) // 8 + 1
    target = window_targets(frames, n_windows)
    expected = (math.log1p(math.exp(c)) - c * target).mean()  # BCE with logit c
    assert fast.item() == pytest.approx(expected.item(), rel=1e-5)
    assert 0 < exact.item() < math.log1p(math.exp(c))


def test_window_losses_train_a_marblenet():
    torch.manual_seed(0)
    model = create_model("marblenet_3x2x64")
    feats = torch.randn(2, 80, 200)
    frames = torch.zeros(2, 200)
    frames[:, 80:150] = 1
    fast, exact = window_losses(model, feats, frames, np.random.default_rng(0))
    (fast + 0.5 * exact).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="too short"):
        window_losses(model, feats[:, :, :70], frames[:, :70], np.random.default_rng(0))
