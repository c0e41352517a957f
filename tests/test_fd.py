"""Feature Distillation (fdvad.distill.fd): whitening, frozen teacher, the loss by hand, self-distillation,
other layouts and frame rates, and a Hugging Face ViT distilled with the same API."""

import copy

import pytest
import torch
import torch.nn as nn

from fdvad.distill import FeatureDistiller, smooth_l1, whiten
from fdvad.errors import ConfigError
from fdvad.models import create_model


def test_whitening_is_non_affine_and_normalises_each_position():
    torch.manual_seed(0)
    x = torch.randn(3, 16, 40) * 5 + 2
    w = whiten(x)
    assert torch.allclose(w.mean(dim=1), torch.zeros(3, 40), atol=1e-5)
    assert torch.allclose(w.var(dim=1, unbiased=False), torch.ones(3, 40), atol=1e-3)
    # no scale or bias: scaling and shifting the input per position changes nothing
    assert torch.allclose(whiten(x * 7 - 3), w, atol=1e-4)
    # each position alone: changing one time step leaves the others as they were
    y = x.clone()
    y[:, :, 5] *= 100
    assert torch.allclose(whiten(y)[:, :, :5], w[:, :, :5]) and torch.allclose(whiten(y)[:, :, 6:], w[:, :, 6:])


class Fixed(nn.Module):
    """forward_features returns a fixed map (times a learnable scalar, so that gradients can flow)."""

    def __init__(self, fmap):
        super().__init__()
        self.fmap = fmap
        self.scale = nn.Parameter(torch.ones(()))

    def forward_features(self, x):
        return self.fmap * self.scale


def test_loss_equals_a_hand_computation():
    t_map = torch.tensor([[[1.0, 4.0], [3.0, 0.0]]])  # (B=1, C=2, T=2)
    s_map = torch.tensor([[[0.5, -1.0], [2.0, 1.0]]])
    fd = FeatureDistiller(Fixed(t_map), Fixed(s_map), teacher_channels=2, student_channels=2)
    with torch.no_grad():
        fd.projector.weight.copy_(torch.tensor([[[2.0], [0.0]], [[1.0], [1.0]]]))
        fd.projector.bias.copy_(torch.tensor([0.5, -0.5]))
    out = fd(torch.zeros(1))
    # target: per time step, channels (1, 3) -> mean 2, var 1 -> (-1, 1) / sqrt(1 + 1e-5); (4, 0) -> (1, -1)
    k = 1 / (1 + 1e-5) ** 0.5
    target = torch.tensor([[[-k, k], [k, -k]]])
    # prediction: W @ s + b: t=0: (2*0.5 + 0.5, 0.5 + 2 - 0.5) = (1.5, 2.0); t=1: (-2 + 0.5, -1 + 1 - 0.5) = (-1.5, -0.5)
    prediction = torch.tensor([[[1.5, -1.5], [2.0, -0.5]]])
    d = (prediction - target).abs()
    by_hand = torch.where(d < 2.0, 0.5 * d ** 2 / 2.0, d - 1.0).mean()  # beta = 2
    assert torch.allclose(out.prediction, prediction) and torch.allclose(out.target, target, atol=1e-6)
    assert out.loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert smooth_l1(prediction, target).item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert out.terms["loss_fd"].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_gradients_never_reach_the_teacher_which_stays_in_eval():
    torch.manual_seed(0)
    teacher = create_model("marblenet_3x2x64")
    student = create_model("marblenet_3x2x64", drop_path_rate=0.2)
    x = torch.randn(2, 80, 120)
    fd = FeatureDistiller(teacher, student, example_input=x)
    fd.train()
    assert not teacher.training and student.training and fd.training
    before = copy.deepcopy(teacher.state_dict())
    out = fd(x)
    out.loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(p.grad is not None for p in student.encoder.parameters())
    assert all(p.grad is not None for p in fd.projector.parameters())
    assert all(p.grad is None for p in student.head.parameters())  # the head plays no part in FD
    for k, v in teacher.state_dict().items():  # BatchNorm statistics too: the teacher ran in eval mode
        assert torch.equal(v, before[k]), k
    assert fd.projector_parameters() == 128 * 128 + 128  # MarbleNet's 128-channel encoder output
    assert {id(p) for p in fd.student_parameters()} >= {id(p) for p in fd.projector.parameters()}


def test_distilling_a_model_into_a_copy_of_itself_drives_the_loss_toward_zero():
    torch.manual_seed(0)
    teacher = create_model("marblenet_3x1x64").eval()
    student = copy.deepcopy(teacher)
    x = torch.randn(4, 80, 100)
    fd = FeatureDistiller(teacher, student, example_input=x)
    fd.train()
    opt = torch.optim.AdamW(fd.student_parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        loss = fd(x).loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


class TokenModel(nn.Module):
    """A transformer-like model: tokens (B, N, C) from a hooked block, at half the input's frame rate."""

    def __init__(self, width):
        super().__init__()
        self.embed = nn.Conv1d(80, width, 3, stride=2, padding=1)
        self.block = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, x):
        tokens = self.embed(x).transpose(1, 2)
        return self.norm(self.block(tokens)).mean(1)


def test_another_architecture_and_frame_rate_can_teach():
    torch.manual_seed(0)
    teacher = TokenModel(48)  # 50 positions of 48 channels, channels last
    student = create_model("marblenet_3x1x64")  # 100 positions of 128 channels
    x = torch.randn(2, 80, 100)
    fd = FeatureDistiller(teacher, student, example_input=x, teacher_layer="block", teacher_channels_dim=-1,
                          teacher_norm="norm")
    out = fd(x)
    assert out.prediction.shape == out.target.shape == (2, 48, 50)
    assert fd.projector.in_channels == 128 and fd.projector.out_channels == 48
    pooled = FeatureDistiller(teacher, student, example_input=x, teacher_layer="block", teacher_channels_dim=-1,
                              pool=True, whiten=False)
    assert pooled(x).target.shape == (2, 48, 1)
    with pytest.raises(ConfigError, match="no module 'blocks'"):
        FeatureDistiller(teacher, student, example_input=x, teacher_layer="blocks")
    with pytest.raises(ConfigError, match="without a projector"):
        FeatureDistiller(teacher, student, example_input=x, teacher_layer="block", teacher_channels_dim=-1,
                         projector=False)
    with pytest.raises(ConfigError, match="example_input"):
        FeatureDistiller(teacher, student)


def test_a_hugging_face_vit_is_distilled_with_the_same_api():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64)
    torch.manual_seed(0)
    teacher, student = transformers.ViTModel(config), transformers.ViTModel(config)
    images = torch.randn(2, 3, 32, 32)
    fd = FeatureDistiller(teacher, student, example_input=images)  # last_hidden_state, channels last
    out = fd(images)
    assert out.target.shape == (2, 32, 17)  # 16 patches + CLS, 32 channels
    out.loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert any(p.grad is not None for p in student.parameters())
    last_block = "layers.1" if hasattr(teacher, "layers") else "encoder.layer.1"  # transformers 5 / 4 names
    hooked = FeatureDistiller(teacher, student, example_input=images, teacher_layer=last_block,
                              student_layer=last_block, teacher_channels_dim=-1, student_channels_dim=-1,
                              teacher_norm="layernorm")
    assert hooked(images).target.shape == (2, 32, 17)


def test_layer_wise_lr_decay_groups():
    from fdvad.train.module import param_groups

    model = create_model("marblenet_3x2x64")
    n = len(model.encoder)
    groups = param_groups(model, weight_decay=0.05, layer_decay=0.5)
    scale = {}
    for g in groups:
        for p in g["params"]:
            scale[id(p)] = (g["lr_scale"], g["weight_decay"])
    for name, p in model.named_parameters():
        s, wd = scale[id(p)]
        if name.startswith("encoder."):
            assert s == 0.5 ** (n - int(name.split(".")[1])), name  # the stem (block 0) decays most
        else:
            assert s == 1.0, name  # the head learns at the full rate
        assert wd == (0.05 if p.dim() > 1 else 0.0), name
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.mark.slow
def test_distill_then_finetune_commands(tmp_path, random_checkpoint):
    import shutil
    import subprocess
    import sys

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from safetensors.torch import load_file

    from fdvad.data.synth import synthesize_corpus
    from fdvad.models.checkpoint import load_checkpoint, read_config

    corpus = tmp_path / "corpus"
    synthesize_corpus(corpus, items=12, seed=3, jobs=1, progress=False)
    common = [f"data.train={corpus}", f"data.validation={corpus}", "train.steps=20", "train.val_every=10",
              "train.batch_size=4", "data.crop_s=2.0", "train.threads=1", "data.max_validation_items=3",
              "optim.name=adamw", "optim.lr=0.001", "optim.min_lr=0.00001"]

    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "fdvad.cli", *args, "--no-progress"], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    teacher_before = load_file(random_checkpoint)
    out = run("distill", *common, f"out={tmp_path / 'fd'}", f"distill.teacher={random_checkpoint}")
    assert "20 steps" in out and "val_loss_fd" in out
    student, config = load_checkpoint(tmp_path / "fd" / "model.safetensors")
    assert config["distillation"]["projector_parameters"] == 128 * 128 + 128
    assert student.config.drop_path_rate == 0.1  # the student's own drop path; the teacher's is 0
    projector = load_file(tmp_path / "fd" / "projector.safetensors")
    assert projector["weight"].shape == (128, 128, 1)
    assert not any("projector" in k for k in load_file(tmp_path / "fd" / "model.safetensors"))
    assert all(torch.equal(v, load_file(random_checkpoint)[k]) for k, v in teacher_before.items())
    out = run("finetune", *common, f"out={tmp_path / 'ft'}", f"model.init={tmp_path / 'fd' / 'model.safetensors'}",
              "optim.layer_decay=0.75")
    assert "val_auroc" in out
    assert read_config(tmp_path / "ft" / "model.safetensors")["training"]["recipe"]["optim"]["layer_decay"] == 0.75
    proc = subprocess.run([sys.executable, "-m", "fdvad.cli", "distill", *common, f"out={tmp_path / 'x'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "distill.teacher" in proc.stderr and "Traceback" not in proc.stderr
