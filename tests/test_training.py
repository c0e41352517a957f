"""fdvad train: recipes (keys and types checked), schedules, augmentation, init checkpoints, and real runs:
a short run that is killed and resumed, and 2-process DDP on CPU."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from fdvad.errors import CheckpointError, ConfigError
from fdvad.train.augment import Augmenter
from fdvad.train.recipe import load_recipe
from fdvad.train.schedules import warmup_cosine, warmup_hold_poly

pytest.importorskip("lightning")


def test_recipe_keys_and_types_are_checked(tmp_path):
    r = load_recipe(None, ["data.train=/c", "optim.lr=0.001", "train.devices=2", "data.snr_db=[5, 15]"])
    assert r.optim.lr == 0.001 and r.train.devices == 2 and r.data.snr_db == [5, 15]
    assert r.optim.name == "sgd" and r.optim.momentum == 0.9 and r.optim.weight_decay == 0.001  # NeMo's recipe
    assert (r.data.freq_masks, r.data.freq_width, r.data.time_masks, r.data.time_width) == (2, 15, 2, 25)
    bad = {
        "optim.lrr=1": "'optim.lrr'",
        "train.steps=1.5": "'train.steps' must be integer",
        "train.steps=true": "'train.steps' must be integer",
        "optim.lr=fast": "'optim.lr' must be number",
        "data.labels=words": "data.labels",
        "optim.schedule=step": "optim.schedule",
        "data.snr_db=[30, 0]": "data.snr_db",
        "data.noise_prob=0.5": "data.noise",
        "nosection.key=1": "'nosection'",
    }
    for override, message in bad.items():
        with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
            load_recipe(None, ["data.train=/c", override])
    with pytest.raises(ConfigError, match="data.train"):
        load_recipe(None)
    path = tmp_path / "r.yaml"
    path.write_text("train:\n  stepz: 10\n")
    with pytest.raises(ConfigError, match="'train.stepz'"):
        load_recipe(path, ["data.train=/c"])
    path.write_text("corpus:\n  out: c\n")
    with pytest.raises(ConfigError, match="corpus.hours or corpus.items"):
        load_recipe(path)
    path.write_text("corpus:\n  out: c\n  items: 10\n")
    r = load_recipe(path)
    assert r.data.train == "c" and r.data.validation == "c"


def test_schedules_by_hand():
    f = warmup_hold_poly(100, 0.05, 0.45, 0.1, power=2.0)
    assert f(0) == pytest.approx(0.2) and f(4) == pytest.approx(1.0)
    assert f(5) == f(49) == 1.0  # hold until 5 + 45 steps
    assert f(75) == pytest.approx(0.9 * 0.5 ** 2 + 0.1)  # half way through the decay
    assert f(100) == pytest.approx(0.1) and f(200) == pytest.approx(0.1)
    g = warmup_cosine(100, 0.1, 0.0)
    assert g(9) == 1.0 and g(55) == pytest.approx(0.5) and g(100) == pytest.approx(0.0)


def test_augmenter_levels(tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    x = np.sin(np.arange(32000) * 0.05).astype(np.float32) * 0.1
    white = Augmenter(white_noise_prob=1.0, white_noise_db=(-40.0, -40.0))(np.zeros(32000, np.float32), rng)
    assert 20 * math.log10(np.sqrt(np.mean(white ** 2))) == pytest.approx(-40, abs=0.2)
    gain = Augmenter(white_noise_prob=0.0, gain_prob=1.0, gain_db=(6.0, 6.0))(x, rng)
    np.testing.assert_allclose(gain, x * 10 ** (6 / 20), rtol=1e-5)
    sf.write(tmp_path / "noise.wav", rng.standard_normal(48000).astype(np.float32) * 0.05, 16000)
    mixed = Augmenter(noise=[str(tmp_path / "noise.wav")], noise_prob=1.0, snr_db=(10.0, 10.0),
                      white_noise_prob=0.0)(x, rng)
    noise = mixed - x
    snr = 10 * math.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.05)
    silent = Augmenter(noise=[str(tmp_path / "noise.wav")], noise_prob=1.0, white_noise_prob=0.0)
    assert not silent(np.zeros(1000, np.float32), rng).any()  # no SNR for a silent crop: nothing mixed in


def test_init_from_checkpoint_and_from_another_architecture(random_checkpoint, tmp_path):
    from fdvad.models.checkpoint import load_checkpoint
    from fdvad.train.run import build_model

    model, config = build_model(load_recipe(None, ["data.train=/c", f"model.init={random_checkpoint}"]))
    reference, _ = load_checkpoint(random_checkpoint)
    for (k, a), b in zip(model.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), k
    assert config["format"] == "fdvad-vad-1"
    with pytest.raises(CheckpointError, match="another architecture than marblenet_5x2x64"):
        build_model(load_recipe(None, ["data.train=/c", "model.name=marblenet_5x2x64",
                                       f"model.init={random_checkpoint}"]))
    with pytest.raises(CheckpointError, match="model.init: file not found"):
        build_model(load_recipe(None, ["data.train=/c", f"model.init={tmp_path / 'x.pt'}"]))
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="neither"):  # and never unpickled
        build_model(load_recipe(None, ["data.train=/c", f"model.init={tmp_path / 'x.pt'}"]))


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from fdvad.data.synth import synthesize_corpus

    out = tmp_path_factory.mktemp("train") / "corpus"
    synthesize_corpus(out, items=40, seed=7, jobs=1, progress=False)
    return out


def _train_cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "fdvad.cli", "train", *map(str, args), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


RUN = ["optim.name=adamw", "optim.lr=0.003", "optim.schedule=cosine", "optim.min_lr=0.0001",
       "optim.weight_decay=0.01", "train.batch_size=8", "data.crop_s=2.0", "train.threads=1",
       "data.max_validation_items=6", "train.grad_clip=3.0"]


@pytest.mark.slow
def test_train_is_killed_and_resumed_and_learns(small_corpus, tmp_path):
    out = tmp_path / "run"
    args = [f"data.train={small_corpus}", f"data.validation={small_corpus}", f"out={out}", "train.steps=160",
            "train.val_every=40", *RUN]
    proc = _train_cli(*args)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 600
    while not last.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert last.is_file(), proc.communicate()[1]
    proc.send_signal(signal.SIGKILL)  # killed after its first checkpoint
    proc.wait()
    assert not (out / "model.safetensors").exists()
    again = _train_cli(*args)
    stdout, stderr = again.communicate(timeout=900)
    assert again.returncode != 0 and "--resume" in stderr  # a second run never overwrites the first
    resumed = _train_cli(*args, "--resume")
    stdout, stderr = resumed.communicate(timeout=900)
    assert resumed.returncode == 0, stderr
    assert "trained 160 steps" in stdout
    history = json.loads((out / "metrics.json").read_text())
    assert [row["step"] for row in history] == [40, 80, 120, 160]
    assert history[-1]["val_auroc"] > 0.75  # far above chance (0.5) after 160 small steps
    import fdvad

    vad = fdvad.load_vad(str(out / "model.safetensors"))
    assert vad.config["training"]["steps"] == 160


DDP_SCRIPT = """
import sys
import torch
import lightning as L
from safetensors.torch import save_file
from fdvad.train.recipe import load_recipe
from fdvad.train.run import train

class SaveRankWeights(L.Callback):
    def on_train_end(self, trainer, module):
        params = {{k: v.detach().clone().contiguous() for k, v in module.model.named_parameters()}}
        save_file(params, "{out}/rank%d.safetensors" % trainer.global_rank)

recipe = load_recipe(None, sys.argv[1:])
train(recipe, callbacks=[SaveRankWeights()], progress=False)
"""


@pytest.mark.slow
def test_two_process_ddp_on_cpu_ends_with_identical_weights(small_corpus, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "ddp"
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(out=out))
    args = [f"data.train={small_corpus}", "data.validation=null", f"out={out}", "train.steps=6",
            "train.val_every=3", "train.accelerator=cpu", "train.devices=2", "train.strategy=ddp", *RUN]
    env = {**os.environ, "PL_DISABLE_FORK": "1"}
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    assert rank0.keys() == rank1.keys() and len(rank0) > 10
    from fdvad.models import create_model

    torch.manual_seed(0)  # train() seeds everything with train.seed (0) right before it builds the model
    initial = create_model("marblenet_3x2x64")
    moved = 0
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k
        moved += not torch.equal(rank0[k], dict(initial.named_parameters())[k].detach())
    assert moved > 10  # the weights trained (they are not both still at their initial values)
    assert (out / "model.safetensors").is_file()


def test_train_cli_bad_input_gives_one_line(tmp_path, random_checkpoint):
    def run(*args):
        proc = subprocess.run([sys.executable, "-m", "fdvad.cli", *map(str, args)], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode != 0 and "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
        return lines[0]

    assert "recipe not found" in run("train", tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n")
    assert "not valid YAML" in run("train", tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    assert "mapping" in run("train", tmp_path / "list.yaml")
    (tmp_path / "unknown.yaml").write_text("data:\n  train: x\n  augment: 3\n")
    assert "'data.augment'" in run("train", tmp_path / "unknown.yaml")
    assert "'train.batch_size' must be integer" in run("train", "data.train=x", "train.batch_size=big")
    assert "data.train" in run("train", "train.steps=3")
    assert "nowhere does not exist" in run("train", f"data.train={tmp_path / 'nowhere'}", f"out={tmp_path / 'o1'}")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert "--resume" in run("train", "data.train=x", f"out={tmp_path / 'run'}")
    assert "there is no" in run("train", "data.train=x", f"out={tmp_path / 'other'}", "--resume")
    line = run("train", "data.train=x", "model.name=marblenet_5x2x64", f"model.init={random_checkpoint}",
               f"out={tmp_path / 'o2'}")
    assert "another architecture than marblenet_5x2x64" in line and "it holds MarbleNet-3x2x64" in line


def test_resume_refuses_a_checkpoint_of_another_recipe(tmp_path):
    from fdvad.train.module import VADTrainingModule
    from fdvad.train.run import _check_resumable
    from fdvad.features import FeatureExtractor, FeatureConfig
    from fdvad.models import create_model

    recipe = load_recipe(None, ["data.train=/c"])
    module = VADTrainingModule(create_model("marblenet_3x2x64"), FeatureExtractor(FeatureConfig()), recipe)
    path = tmp_path / "last.ckpt"
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        _check_resumable(module, path)
    other = VADTrainingModule(create_model("marblenet_3x1x64"), FeatureExtractor(FeatureConfig()), recipe)
    torch.save({"state_dict": other.state_dict(), "optimizer_states": []}, path)
    with pytest.raises(CheckpointError, match="another model"):
        _check_resumable(module, path)
    opt = module.configure_optimizers()["optimizer"].state_dict()
    torch.save({"state_dict": module.state_dict(), "optimizer_states": [opt]}, path)
    _check_resumable(module, path)  # fits
    decayed = VADTrainingModule(module.model, module.features, load_recipe(None, ["data.train=/c",
                                                                                  "optim.layer_decay=0.7"]))
    with pytest.raises(CheckpointError, match="parameter groups"):
        _check_resumable(decayed, path)


def test_extra_validation_and_select_are_checked():
    r = load_recipe(None, ["data.train=/c", "data.validation=/c", "data.extra_validation={real: /r.json}",
                           "train.select=val_real_auroc"])
    assert r.data.extra_validation == {"real": "/r.json"} and r.train.select == "val_real_auroc"
    bad = {
        ("train.select=val_real_auroc",): "train.select must be one of val_auroc, val_f1",
        ("data.extra_validation={Real: /r}",): "lower-case",
        ("data.extra_validation={real: ''}",): "data.extra_validation.real",
        ("data.validation=null", "train.select=val_auroc"): "needs data.validation",
    }
    for overrides, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_recipe(None, ["data.train=/c", "data.validation=/c", *overrides])
    from fdvad.distill.run import distill

    with pytest.raises(ConfigError, match="not distillation"):  # FD has no labels to choose by
        distill(r)


def test_best_weights_keeps_the_best_round_and_survives_a_restart(tmp_path):
    from fdvad.train.run import BestWeights

    model = torch.nn.Linear(3, 1)
    best = BestWeights(tmp_path, "val_real_auroc", resume=False)
    assert best.restore(model) is None  # nothing kept yet: the caller keeps the last weights
    rounds = [(0.7, 1.0), (0.9, 2.0), (0.8, 3.0)]
    for step, (auroc, fill) in enumerate(rounds, 1):
        with torch.no_grad():
            model.weight.fill_(fill)
        best.consider({"step": step, "val_real_auroc": auroc}, model)
        best.consider({"step": step, "val_auroc": 0.99}, model)  # a row without the metric changes nothing
    again = BestWeights(tmp_path, "val_real_auroc", resume=True)  # a resumed run reads what the file holds
    assert again.best == {"step": 2, "val_real_auroc": 0.9}
    assert again.restore(model)["step"] == 2 and torch.all(model.weight == 2.0)
    fresh = BestWeights(tmp_path, "val_real_auroc", resume=False)  # a new run ignores an old file
    assert fresh.best is None


@pytest.mark.slow
def test_train_scores_extra_validation_and_exports_the_selected_round(small_corpus, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "sel"
    held = small_corpus / "test" / "manifest.json"
    proc = _train_cli(f"data.train={small_corpus}", f"data.validation={small_corpus}", f"out={out}",
                      "train.steps=12", "train.val_every=4", f"data.extra_validation={{held: {held}}}",
                      "train.select=val_held_auroc", *RUN)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr
    history = json.loads((out / "metrics.json").read_text())
    assert [row["step"] for row in history] == [4, 8, 12]
    assert all({"val_auroc", "val_f1", "val_held_auroc", "val_held_f1"} <= set(row) for row in history)
    chosen = max(history, key=lambda r: r["val_held_auroc"])
    import fdvad

    vad = fdvad.load_vad(str(out / "model.safetensors"))
    assert vad.config["training"]["selected"] == {"metric": "val_held_auroc", "step": chosen["step"],
                                                  "value": chosen["val_held_auroc"]}
    exported = {k: v for k, v in vad.model.state_dict().items()}
    kept = load_file(out / "best.safetensors")
    assert all(torch.equal(exported[k], kept[k]) for k in kept)


def test_best_weights_kept_for_another_metric_are_not_trusted(tmp_path):
    from fdvad.train.run import BestWeights

    model = torch.nn.Linear(3, 1)
    BestWeights(tmp_path, "val_auroc", resume=False).consider({"step": 1, "val_auroc": 0.9}, model)
    assert BestWeights(tmp_path, "val_real_auroc", resume=True).best is None  # the recipe's select changed
    assert BestWeights(tmp_path, "val_auroc", resume=True).best == {"step": 1, "val_auroc": 0.9}
