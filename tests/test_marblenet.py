import pytest
import torch

from fdvad.errors import ConfigError
from fdvad.models import MarbleNet, create_model, list_models
from fdvad.models.marblenet import drop_path


def test_parameter_counts_match_nemo():
    # NeMo: 91,378 for 80 mel inputs (frame-VAD card "91.5K"), 89,154 for 64 MFCC (paper "88K")
    assert sum(p.numel() for p in create_model("marblenet_3x2x64").parameters()) == 91_378
    assert sum(p.numel() for p in create_model("marblenet_3x2x64", in_features=64).parameters()) == 89_154


def test_shapes_and_head_split():
    m = create_model("marblenet_3x2x64").eval()
    x = torch.randn(3, 80, 64)
    feats = m.forward_features(x)
    assert feats.shape == (3, 128, 64)
    logits = m(x)
    assert logits.shape == (3, 2)
    assert torch.allclose(m.forward_head(feats), logits)
    # the head is linear: mean of per-frame logits == logits of the mean feature
    assert torch.allclose(m.frame_logits(feats).mean(1), logits, atol=1e-5)


def test_masking_ignores_steps_past_length():
    from conftest import random_marblenet

    # random BatchNorm statistics: a fresh model's logits are ~1e-3, too small to tell masked from unmasked
    m = random_marblenet(seed=0)
    x = torch.randn(1, 80, 64, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[..., 63] = 100.0  # garbage in the masked step must not matter
    lengths = torch.tensor([63])
    assert torch.allclose(m(x, lengths), m(y, lengths), atol=1e-5)
    assert not torch.allclose(m(x), m(y), atol=1e-3)


def test_drop_path_rates_grow_linearly_and_only_in_training():
    m = create_model("marblenet_3x2x64", drop_path_rate=0.3)
    rates = [b.drop_path_rate for b in m.encoder if b.residual is not None]
    assert rates == pytest.approx([0.0, 0.15, 0.3])
    x = torch.ones(1000, 4, 5)
    assert torch.equal(drop_path(x, 0.3, training=False), x)
    out = drop_path(x, 0.3, training=True)
    dropped = (out[:, 0, 0] == 0).float().mean().item()
    assert 0.2 < dropped < 0.4
    assert torch.allclose(out[out != 0], torch.full_like(out[out != 0], 1 / 0.7))


def test_registry_and_bad_config():
    assert "marblenet_3x2x64" in list_models()
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("resnet50")
    with pytest.raises(ConfigError):
        MarbleNet(block_kernels=(13, 15))
    with pytest.raises(ConfigError):
        MarbleNet(drop_path_rate=1.5)


def test_fused_batchnorm_gives_the_same_outputs_and_leaves_the_original():
    from conftest import random_marblenet

    m = random_marblenet(seed=2)
    fused = m.fused_for_inference()
    x = torch.randn(2, 80, 64)
    lengths = torch.tensor([63, 40])
    with torch.no_grad():
        assert torch.allclose(fused(x), m(x), atol=1e-4)
        assert torch.allclose(fused(x, lengths), m(x, lengths), atol=1e-4)
        assert torch.allclose(fused.forward_features(x), m.forward_features(x), atol=1e-4)
    assert not any(isinstance(mod, torch.nn.BatchNorm1d) for mod in fused.modules())
    assert sum(isinstance(mod, torch.nn.BatchNorm1d) for mod in m.modules()) == 12
