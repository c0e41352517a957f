import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from fdvad.analysis import (attention_distance, average_attention_map, capture_attention,
                            filter_normalized_direction, head_similarity, landscape_1d, patch_attention)
from fdvad.analysis.attention import positions_1d, positions_2d
from fdvad.analysis.landscape import moved
from fdvad.models import AudioTransformer, AudioTransformerConfig


def test_attention_distance_of_hand_built_maps():
    n, spacing = 6, 30.0
    pos = positions_1d(n, spacing)
    identity = torch.eye(n).expand(2, 3, n, n)
    assert torch.allclose(attention_distance(identity, pos), torch.zeros(3))
    uniform = torch.full((1, 2, n, n), 1.0 / n)
    # mean |i - j| over all pairs of n positions is (n^2 - 1) / (3 n)
    assert torch.allclose(attention_distance(uniform, pos), torch.full((2,), spacing * (n * n - 1) / (3 * n)))
    neighbour = torch.zeros(1, 1, n, n)
    neighbour[0, 0, torch.arange(n), (torch.arange(n) + 1) % n] = 1.0  # each looks one to the right (last: first)
    expected = spacing * ((n - 1) * 1 + (n - 1)) / n
    assert torch.allclose(attention_distance(neighbour, pos), torch.tensor([expected]))
    grid = positions_2d(2, 2, 16.0)  # a 2x2 grid: one diagonal pair per query at 16 * sqrt(2)
    diagonal = torch.zeros(1, 1, 4, 4)
    diagonal[0, 0, [0, 1, 2, 3], [3, 2, 1, 0]] = 1.0
    assert torch.allclose(attention_distance(diagonal, grid), torch.tensor([16.0 * 2 ** 0.5]))


def test_patch_attention_drops_prefix_tokens_and_renormalises():
    attn = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1)
    patches = patch_attention(attn, prefix_tokens=1)
    assert patches.shape == (2, 3, 4, 4)
    assert torch.allclose(patches.sum(-1), torch.ones(2, 3, 4))
    assert torch.allclose(patches, attn[..., 1:, 1:] / attn[..., 1:, 1:].sum(-1, keepdim=True))


def test_head_similarity_and_average_map():
    one = torch.softmax(torch.randn(1, 1, 4, 4), dim=-1)
    assert head_similarity(one.expand(3, 4, 4, 4)) == pytest.approx(1.0)
    disjoint = torch.zeros(1, 2, 4, 4)
    disjoint[0, 0, :, 0] = 1.0
    disjoint[0, 1, :, 1] = 1.0
    assert head_similarity(disjoint) == pytest.approx(0.0)
    assert np.isnan(head_similarity(one))
    assert torch.allclose(average_attention_map(disjoint), torch.tensor([[0.5, 0.5, 0, 0]] * 4))


def test_filter_normalised_direction_matches_each_filters_norm():
    model = nn.Sequential(nn.Conv1d(3, 5, 3), nn.BatchNorm1d(5), nn.Flatten(), nn.Linear(5 * 6, 2))
    with torch.no_grad():
        model[0].weight.mul_(torch.arange(1, 6, dtype=torch.float)[:, None, None])  # filters of unequal norm
    d = filter_normalized_direction(model, torch.Generator().manual_seed(0))
    for name, p in model.named_parameters():
        if p.dim() > 1:
            assert torch.allclose(d[name].flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-5)
            assert not torch.allclose(d[name], p)
        else:
            assert torch.count_nonzero(d[name]) == 0, name  # biases and BatchNorm: not moved
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with moved(model, [(0.5, d)]):
        assert not torch.equal(model[0].weight, before["0.weight"])
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # restored exactly


def test_landscape_centre_is_the_models_own_loss():
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))

    def evaluate(m):
        with torch.no_grad():
            logits = m(x)
        return float(nn.functional.cross_entropy(logits, y)), float((logits.argmax(-1) == y).float().mean())

    curve = landscape_1d(model, evaluate, np.linspace(-1, 1, 5))
    assert curve["loss"][2] == pytest.approx(evaluate(model)[0])
    assert curve["loss"][0] != pytest.approx(curve["loss"][2])


def test_capture_attention_from_our_model_a_hooked_model_and_transformers():
    model = AudioTransformer(AudioTransformerConfig(dim=32, depth=2, num_heads=4)).eval()
    x = torch.randn(2, 80, 64)
    maps = capture_attention(model, x)
    assert len(maps) == 2 and maps[0].shape == (2, 4, 22, 22)
    assert torch.allclose(maps[0].sum(-1), torch.ones(2, 4, 22))

    class FusedAttention(nn.Module):  # the shape of timm's Attention: a fused path that skips attn_drop
        def __init__(self):
            super().__init__()
            self.fused_attn = True
            self.attn_drop = nn.Dropout(0.0)

        def forward(self, t):
            if self.fused_attn:
                return t
            a = self.attn_drop(torch.softmax(t @ t.transpose(1, 2), dim=-1)[:, None])
            return (a[:, 0] @ t)

    hooked = nn.Sequential(FusedAttention(), FusedAttention())
    maps = capture_attention(hooked, torch.randn(3, 5, 4))
    assert len(maps) == 2 and maps[0].shape == (3, 1, 5, 5)
    assert hooked[0].fused_attn is True  # switched back after the call

    transformers = pytest.importorskip("transformers")
    beit = transformers.BeitModel(transformers.BeitConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, use_shared_relative_position_bias=True)).eval()
    maps = capture_attention(beit, {"pixel_values": torch.randn(2, 3, 32, 32)})
    assert len(maps) == 2 and maps[0].shape == (2, 4, 17, 17)


def _labelled_audio(folder):
    """12 s of noise with two loud bursts labelled speech, as a manifest with an RTTM."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.01, 16000 * 12).astype(np.float32)
    t = np.arange(16000 * 3) / 16000
    for start in (2, 7):
        audio[start * 16000: (start + 3) * 16000] += (0.3 * np.sin(2 * np.pi * 220 * t)
                                                       * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    sf.write(folder / "a.wav", audio, 16000)
    (folder / "a.rttm").write_text("SPEAKER a 1 2.000 3.000 <NA> <NA> s <NA> <NA>\n"
                                   "SPEAKER a 1 7.000 3.000 <NA> <NA> s <NA> <NA>\n")
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps({"audio_filepath": str(folder / "a.wav"), "offset": 0, "duration": 12.0,
                                    "rttm_filepath": str(folder / "a.rttm")}) + "\n")
    return manifest


def _run(*args):
    return subprocess.run([sys.executable, "-m", "fdvad.cli", *args], capture_output=True, text=True, timeout=300)


def test_analyze_command_on_two_of_our_transformers(tmp_path):
    from fdvad.models.checkpoint import save_checkpoint

    manifest = _labelled_audio(tmp_path)
    for seed, position in ((0, "relative"), (1, "shared_relative")):
        torch.manual_seed(seed)
        model = AudioTransformer(AudioTransformerConfig(dim=32, depth=2, num_heads=4, position=position))
        save_checkpoint(tmp_path / f"m{seed}.safetensors", model, {"postprocess": {}})
    out = tmp_path / "out"
    r = _run("analyze", str(tmp_path / "m0.safetensors"), str(tmp_path / "m1.safetensors"), "--data", str(manifest),
             "--out", str(out), "--inputs", "40", "--points", "5", "--grid", "3")
    assert r.returncode == 0, r.stderr
    result = json.loads((out / "analysis.json").read_text())
    assert set(result["models"]) == {"m0", "m1"}
    for entry in result["models"].values():
        assert len(entry["attention"]["layers"]) == 2 and entry["attention"]["unit"] == "ms"
        assert len(entry["attention"]["layers"][0]["distance"]) == 4
        assert len(entry["landscape_1d"]["loss"]) == 5 and len(entry["landscape_2d"]["loss"]) == 3
    for name in ("attention_distance", "head_similarity", "attention_maps", "landscape_1d", "landscape_2d"):
        assert (out / f"{name}.png").stat().st_size > 5000, name
    again = _run("analyze", str(tmp_path / "m0.safetensors"), "--data", str(manifest), "--out", str(out))
    assert again.returncode != 0 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


def test_analyze_command_on_a_transformers_beit_with_shared_relative_position_bias(tmp_path):
    transformers = pytest.importorskip("transformers")
    from PIL import Image

    beit = transformers.BeitModel(transformers.BeitConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, use_shared_relative_position_bias=True))
    beit.save_pretrained(tmp_path / "beit")
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{i}.png")
    out = tmp_path / "out"
    r = _run("analyze", str(tmp_path / "beit"), "--data", str(tmp_path / "images"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    entry = json.loads((out / "analysis.json").read_text())["models"]["beit"]
    assert entry["attention"]["unit"] == "px" and entry["attention"]["prefix_tokens"] == 1
    assert "classification head" in entry["no_landscape"]
    distances = [np.mean(layer["distance"]) for layer in entry["attention"]["layers"]]
    assert all(0 < d < 32 * 2 ** 0.5 for d in distances)  # within the 32-pixel image
    for name in ("attention_distance", "head_similarity", "attention_maps"):
        assert (out / f"{name}.png").is_file()
    assert not (out / "landscape_1d.png").exists()


def test_analyze_command_bad_input(tmp_path):
    r = _run("analyze", str(tmp_path / "missing.safetensors"), "--data", str(tmp_path))
    assert r.returncode != 0 and r.stderr.startswith("error:") and "Traceback" not in r.stderr
    r = _run("analyze", "default", "--data", str(tmp_path), "--landscape", "3d")
    assert r.returncode != 0 and "--landscape" in r.stderr and "Traceback" not in r.stderr
