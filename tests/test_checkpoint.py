import pytest
import torch

from fdvad.errors import CheckpointError
from fdvad.models.checkpoint import load_checkpoint, save_checkpoint

from conftest import CHECKPOINT_CONFIG, random_marblenet


def test_round_trip_gives_identical_outputs(tmp_path):
    model = random_marblenet(seed=1)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, model, CHECKPOINT_CONFIG)
    loaded, config = load_checkpoint(path)
    x = torch.randn(2, 80, 64)
    assert torch.equal(model(x), loaded(x))
    assert config["window"] == CHECKPOINT_CONFIG["window"]
    assert config["model"]["config"]["channels"] == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "m.yaml"]  # no temp files left


def test_missing_config_and_bad_files(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, random_marblenet(), CHECKPOINT_CONFIG)
    (tmp_path / "m.yaml").unlink()
    with pytest.raises(CheckpointError, match="config"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    (tmp_path / "bad.yaml").write_text("format: fdvad-vad-1\nmodel: {arch: marblenet, config: {}}\n")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(bad)


def test_weights_that_do_not_fit_the_config(tmp_path):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, random_marblenet(), CHECKPOINT_CONFIG)
    text = (tmp_path / "m.yaml").read_text().replace("channels: 64", "channels: 32")
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)
