"""Shared fixtures: a small random-weights checkpoint (no training needed) and generated speech."""

import shutil

import numpy as np
import pytest
import torch

from fdvad.features import FeatureConfig
from fdvad.models import create_model
from fdvad.models.checkpoint import save_checkpoint

# pytest-xdist runs one worker per core; more torch threads per worker only oversubscribe the CPU.
torch.set_num_threads(1)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def random_marblenet(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    model = create_model("marblenet_3x2x64", **overrides)
    # random BatchNorm statistics, so that eval-mode outputs are not trivially similar
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    return model.eval()


CHECKPOINT_CONFIG = {
    "features": FeatureConfig().to_dict(),
    "window": {"window_s": 0.63, "shift_s": 0.08},
    "postprocess": {"onset": 0.5, "offset": 0.35, "pad_onset": 0.0, "pad_offset": 0.0,
                    "min_duration_on": 0.0, "min_duration_off": 0.0},
}


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "random.safetensors"
    save_checkpoint(path, random_marblenet(), CHECKPOINT_CONFIG)
    return path


@pytest.fixture(scope="session")
def speech_recording():
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from fdvad.data.scenes import make_test_recording

    return make_test_recording(seed=3, n_utterances=4, snr_db=10.0, min_gap_s=1.0, max_gap_s=2.0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
