import numpy as np
import pytest
import torch

from fdvad.errors import ConfigError
from fdvad.models import AudioTransformer, AudioTransformerConfig, create_model
from fdvad.models.transformer import RelativePositionBias


def small(position: str = "shared_relative", **kw) -> AudioTransformer:
    torch.manual_seed(0)
    return AudioTransformer(AudioTransformerConfig(dim=32, depth=3, num_heads=4, max_tokens=8, position=position,
                                                   **kw)).eval()


def randomise_position_tables(model: AudioTransformer) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "rel_pos_bias" in name or "pos_embed" in name:
                p.normal_()


def test_shapes_and_builders():
    x = torch.randn(3, 80, 64)
    for name in ("vit_vad_tiny", "vit_vad_small"):
        model = create_model(name).eval()
        features = model.forward_features(x)
        assert features.shape == (3, model.num_features, 1 + 64 // 3)  # CLS + 21 tokens of 30 ms
        assert model(x).shape == (3, 2)
    assert not hasattr(model, "frame_logits")  # window-only: scored in exact mode


def test_relative_position_index_has_cls_entries_and_clamps_far_pairs():
    rpb = RelativePositionBias(max_tokens=3, num_heads=2)
    idx = rpb.index(5)
    m = 3
    assert idx[0, 0] == 2 * m + 1 and (idx[0, 1:] == 2 * m - 1).all() and (idx[1:, 0] == 2 * m).all()
    assert idx[1, 1] == m - 1  # distance 0 in the middle row
    assert idx[1 + 4, 1 + 0] == idx[1 + 2, 1 + 0] == 2 * (m - 1)  # distances 4 and 2 share the end row
    assert idx.max() == rpb.table.shape[0] - 1


def test_shared_relative_position_bias_is_one_parameter_used_by_every_block():
    model = small("shared_relative")
    tables = [name for name, _ in model.named_parameters() if "rel_pos_bias" in name]
    assert tables == ["rel_pos_bias.table"]
    assert all(block.attn.rel_pos_bias is None for block in model.blocks)
    x = torch.randn(2, 80, 64)
    _, before = model.forward_features(x, return_attention=True)
    randomise_position_tables(model)
    _, after = model.forward_features(x, return_attention=True)
    for a, b in zip(before, after):  # the one table changes the attention of every block
        assert not torch.allclose(a, b, atol=1e-4)
    loss = model(x).sum()
    loss.backward()
    assert model.rel_pos_bias.table.grad is not None and model.rel_pos_bias.table.grad.abs().sum() > 0


def test_unshare_copies_the_shared_table_into_every_block_and_keeps_outputs():
    model = small("shared_relative")
    randomise_position_tables(model)
    x = torch.randn(2, 80, 64)
    expected = model(x)
    shared = model.rel_pos_bias.table.detach().clone()
    model.unshare_relative_position_bias()
    assert model.rel_pos_bias is None and model.config.position == "relative"
    tables = [block.attn.rel_pos_bias.table for block in model.blocks]
    assert all(torch.equal(t, shared) for t in tables)
    assert len({t.data_ptr() for t in tables}) == len(tables)  # copies, not one tensor
    torch.testing.assert_close(model(x), expected)
    with pytest.raises(ConfigError):
        model.unshare_relative_position_bias()


def test_a_shared_table_checkpoint_loads_into_per_block_tables():
    shared = small("shared_relative")
    randomise_position_tables(shared)
    per_block = small("relative")
    per_block.load_state_dict(per_block.adapt_state_dict(shared.state_dict()))
    x = torch.randn(2, 80, 64)
    torch.testing.assert_close(per_block(x), shared(x))


def test_position_encodings_differ_and_absolute_refuses_too_many_tokens():
    x = torch.randn(1, 80, 24)
    outs = {}
    for position in ("absolute", "relative", "shared_relative"):
        model = small(position)
        randomise_position_tables(model)
        outs[position] = model(x)
    assert not torch.allclose(outs["absolute"], outs["relative"])
    with pytest.raises(ValueError, match="absolute position table"):
        small("absolute")(torch.randn(1, 80, 3 * 9))  # 9 tokens > max_tokens 8
    small("relative")(torch.randn(1, 80, 3 * 20))  # relative tables clamp: any length runs
    with pytest.raises(ConfigError, match="position"):
        AudioTransformerConfig(position="rotary").validate()
    with pytest.raises(ConfigError, match="multiple"):
        AudioTransformer(dim=30, num_heads=4)


def test_key_mask_keeps_padding_out_of_the_valid_tokens():
    model = small("relative")
    randomise_position_tables(model)
    x = torch.randn(2, 80, 24)
    lengths = torch.tensor([24, 12])
    batch = model.forward_features(x, lengths)
    alone = model.forward_features(x[1:, :, :12])
    torch.testing.assert_close(batch[1:, :, : 1 + 4], alone, atol=1e-5, rtol=1e-4)


def test_drop_path_is_linear_over_depth_and_only_in_training():
    model = AudioTransformer(depth=4, drop_path_rate=0.3)
    assert [round(b.drop_path_rate, 4) for b in model.blocks] == [0.0, 0.1, 0.2, 0.3]
    model.eval()
    x = torch.randn(2, 80, 64)
    torch.testing.assert_close(model(x), model(x))


def test_checkpoint_round_trip_and_exact_mode_scoring(tmp_path):
    from fdvad.models.checkpoint import load_checkpoint, save_checkpoint
    from fdvad.vad.detector import VAD

    model = small("shared_relative")
    randomise_position_tables(model)
    save_checkpoint(tmp_path / "t.safetensors", model, {"postprocess": {}})
    loaded, config = load_checkpoint(tmp_path / "t.safetensors")
    assert config["model"]["arch"] == "audio_transformer"
    x = torch.randn(2, 80, 64)
    torch.testing.assert_close(loaded(x), model(x))
    vad = VAD(loaded, config)
    assert vad.scorer.mode == "exact"  # asked for fast; a transformer has only exact
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 2).astype(np.float32)
    probs, hop_s = vad.speech_probs(audio, 16000)
    assert hop_s == 0.08 and len(probs) == 25 and np.isfinite(probs).all()


def test_window_objective_and_layer_decay_for_a_transformer():
    from fdvad.train.module import param_groups
    from fdvad.train.objectives import window_losses

    model = small("shared_relative").train()
    feats = torch.randn(2, 80, 200)
    frames = (torch.rand(2, 200) > 0.5).float()
    loss_fast, loss_exact = window_losses(model, feats, frames, np.random.default_rng(0))
    assert loss_fast is None and torch.isfinite(loss_exact)
    loss_exact.backward()
    assert model.patch_embed.weight.grad is not None

    n = len(model.blocks)
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.5)
    setting = {id(p): (g["lr_scale"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert setting[id(named["patch_embed.weight"])] == (0.5 ** (n + 1), 0.05)  # the stem decays most
    assert setting[id(named["cls_token"])] == (0.5 ** (n + 1), 0.0)  # tokens and tables: no weight decay
    assert setting[id(named["blocks.1.attn.qkv.weight"])] == (0.5 ** (n - 1), 0.05)
    assert setting[id(named["rel_pos_bias.table"])] == (1.0, 0.0)  # the shared table sits with the head
    assert setting[id(named["head.weight"])] == (1.0, 0.05)


def test_feature_distillation_into_a_shared_bias_student_on_windows():
    from fdvad.distill.fd import FeatureDistiller
    from fdvad.distill.module import distill_views

    teacher = small("relative")
    student = small("shared_relative", drop_path_rate=0.1).train()
    crops = torch.randn(2, 80, 200)
    distiller = FeatureDistiller(teacher, student, example_input=crops[:, :, :64])
    views = distill_views(crops, distiller)
    assert views.shape == (2 * 3, 80, 64)  # three whole windows per 2 s crop
    out = distiller(views)
    out.loss.backward()
    assert out.target.shape == (6, 32, 1 + 21)
    assert student.rel_pos_bias.table.grad is not None
    assert all(p.grad is None for p in teacher.parameters())
