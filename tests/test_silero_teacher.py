"""Silero VAD as a distillation teacher: time alignment, whole-item features per crop, their cache, the recipe."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from fdvad.data.corpora import LabelledAudio
from fdvad.distill import FeatureDistiller
from fdvad.distill.fd import FrameGrid, align_to
from fdvad.distill.teacher_cache import TeacherFeatureStore
from fdvad.errors import ConfigError
from fdvad.models import create_model
from fdvad.train.crops import CropDataset, CropSampler

pytest.importorskip("silero_vad")
from fdvad.models.silero import CHUNK, load_silero_v6  # noqa: E402


@pytest.fixture(scope="module")
def silero():
    return load_silero_v6()


@pytest.fixture()
def items(tmp_path):
    """Three 16 kHz files of speech-like noise bursts, 5.3 to 7.1 s long, one read from an offset."""
    rng = np.random.default_rng(0)
    out = []
    for i, seconds in enumerate((5.3, 6.0, 7.1)):
        n = int(seconds * 16000)
        t = np.arange(n) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t) * (np.sin(2 * np.pi * 0.7 * t) > 0)
        audio = (audio + 0.01 * rng.standard_normal(n)).astype(np.float32)
        path = tmp_path / f"item{i}.wav"
        sf.write(path, audio, 16000)
        out.append(LabelledAudio(str(path), offset=0.5 if i == 2 else 0.0, duration=6.0 if i == 2 else None))
    return out


def test_align_to_reads_the_student_at_each_teacher_frame_centre():
    student_grid, teacher_grid = FrameGrid(0.01, 0.0), FrameGrid(0.032, 0.016)
    times = torch.arange(321, dtype=torch.float32) * 0.01  # a student map whose value is its own time
    s_map = torch.stack([times, 2 * times]).unsqueeze(0)  # (1, 2, 321)
    aligned = align_to(s_map, student_grid, teacher_grid, 100)
    expected = 0.016 + 0.032 * torch.arange(100)
    assert torch.allclose(aligned[0, 0], expected, atol=1e-5)
    assert torch.allclose(aligned[0, 1], 2 * expected, atol=1e-5)
    # beyond the student's last frame the last frame is used, not an extrapolation
    assert torch.allclose(align_to(s_map, student_grid, teacher_grid, 120)[0, 0, -1], times[-1])
    # the positions are built where the map lives (a GPU in training): "meta" stands in for it here
    assert align_to(s_map.to("meta"), student_grid, teacher_grid, 100).device.type == "meta"


def test_a_waveform_teacher_teaches_a_log_mel_student(silero):
    from fdvad.features import FeatureExtractor

    torch.manual_seed(0)
    student = create_model("marblenet_3x2x64").eval()
    features = FeatureExtractor()
    wave = 0.1 * torch.randn(2, 51200)
    feats = features(wave)
    grids = {"teacher_frames": FrameGrid(0.032, 0.016), "student_frames": FrameGrid(0.01, 0.0)}
    d = FeatureDistiller(silero, student, example_input=feats, example_teacher_input=wave, **grids)
    assert d.projector.weight.shape == (128, 128, 1)  # student 128 channels -> Silero's 128
    out = d(feats, teacher_inputs=wave)
    assert out.target.shape == (2, 128, 100)  # one target per 32 ms teacher frame
    assert out.prediction.shape == (2, 128, 100)
    # a precomputed map gives the same loss and the teacher is not run
    same = d(feats, teacher_map=silero.forward_features(wave))
    assert torch.allclose(out.loss, same.loss)
    out.loss.backward()
    assert d.projector.weight.grad is not None and all(p.grad is not None for p in student.encoder.parameters())
    assert not any(p.requires_grad for p in silero.parameters())  # the teacher is frozen, never trained
    with pytest.raises(ConfigError, match="both"):
        FeatureDistiller(silero, student, teacher_channels=128, student_channels=128,
                         teacher_frames=FrameGrid(0.032))


def test_crops_get_the_features_silero_gives_on_the_whole_item(silero, items, tmp_path):
    sampler = CropSampler(items, crop_s=1.6, start_grid=16)
    store = TeacherFeatureStore(silero, sampler, key="test", frame_samples=CHUNK, pad_s=1.6, folder=tmp_path / "c")
    dataset = CropDataset(sampler, 12, seed=1, teacher=store)
    for k in range(12):
        audio, labels, teacher_map = dataset[k]
        assert teacher_map.shape == (128, 25600 // CHUNK)
        _, _, item, start = sampler.crop_with_origin(np.random.default_rng([1, 0, k]))
        assert start % (16 * 160) == 0  # on both grids: 5 Silero frames, 16 student frames
        whole = sampler._read(items[item], 0, int(round(sampler.durations[item] * 16000)))
        whole = np.concatenate([whole, np.zeros(25600, np.float32)])
        with torch.no_grad():
            full = silero.forward_features(torch.from_numpy(whole)[None])[0]
        expected = full[:, start // CHUNK: start // CHUNK + 50]
        assert torch.allclose(teacher_map, expected, atol=2e-3)  # float16 storage
        assert np.array_equal(audio.numpy(), whole[start:start + len(audio)])
    assert store.computed == len({sampler.crop_with_origin(np.random.default_rng([1, 0, k]))[2] for k in range(12)})
    # a second store (another run) reads the cache instead of running the teacher
    again = TeacherFeatureStore(silero, sampler, key="test", frame_samples=CHUNK, pad_s=1.6, folder=tmp_path / "c")
    assert torch.equal(again.crop_map(0, 0, 25600), store.crop_map(0, 0, 25600)) and again.computed == 0
    # a damaged cache file (an interrupted copy, a full disk) is recomputed and rewritten, not an error
    damaged = tmp_path / "c" / again._file_name(0)
    damaged.write_bytes(b"")
    third = TeacherFeatureStore(silero, sampler, key="test", frame_samples=CHUNK, pad_s=1.6, folder=tmp_path / "c")
    assert torch.equal(third.crop_map(0, 0, 25600), store.crop_map(0, 0, 25600)) and third.computed == 1
    assert damaged.stat().st_size > 0
    other_key = TeacherFeatureStore(silero, sampler, key="other", frame_samples=CHUNK, pad_s=1.6, folder=tmp_path / "c")
    other_key.crop_map(0, 0, 25600)
    assert other_key.computed == 1  # another teacher never reads this one's features
    with pytest.raises(ValueError, match="grid"):
        store.crop_map(0, 100, 25600)
    with pytest.raises(ConfigError, match="shifted"):
        CropDataset(sampler, 4, teacher=store, max_shift=80)


def test_start_grid_puts_crop_starts_on_the_grid_only_when_asked(items):
    plain, gridded = CropSampler(items, crop_s=1.0), CropSampler(items, crop_s=1.0, start_grid=16)
    plain_starts = [plain.crop_with_origin(np.random.default_rng(k))[3] for k in range(60)]
    grid_starts = [gridded.crop_with_origin(np.random.default_rng(k))[3] for k in range(60)]
    assert all(s % 2560 == 0 for s in grid_starts)
    assert any(s % 2560 for s in plain_starts)  # without a grid any 10 ms frame can start a crop
    with pytest.raises(ConfigError, match="start_grid"):
        CropSampler(items, start_grid=0)


def test_recipe_checks_of_the_silero_options(tmp_path):
    from fdvad.distill.run import unlabelled_items
    from fdvad.train.recipe import load_recipe

    with pytest.raises(ConfigError, match="distill.target"):
        load_recipe(None, ["data.train=x", "distill.target=logits"])
    with pytest.raises(ConfigError, match="silero"):
        load_recipe(None, ["data.train=x", "distill.target=probabilities", "distill.teacher=t.safetensors"])
    with pytest.raises(ConfigError, match="list"):
        load_recipe(None, ["data.train=x", "distill.unlabelled=[1]"])
    with pytest.raises(ConfigError, match="does not exist"):
        unlabelled_items([str(tmp_path / "missing")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no audio"):
        unlabelled_items([str(tmp_path / "empty")])
    sf.write(tmp_path / "empty" / "a.wav", np.zeros(8000, np.float32), 8000)
    (found,) = unlabelled_items([str(tmp_path / "empty")])
    assert found.speech == [] and found.audio_filepath.endswith("a.wav")


@pytest.mark.slow
def test_distill_from_silero_features_and_probabilities(tmp_path):
    import shutil
    import subprocess
    import sys

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from fdvad.data.synth import synthesize_corpus
    from fdvad.models.checkpoint import load_checkpoint

    corpus = tmp_path / "corpus"
    synthesize_corpus(corpus, items=8, seed=5, jobs=1, progress=False)
    real = tmp_path / "real"
    real.mkdir()
    sf.write(real / "extra.wav", 0.05 * np.random.default_rng(0).standard_normal(24000).astype(np.float32), 8000)
    common = [f"data.train={corpus}", f"data.validation={corpus}", "train.steps=4", "train.val_every=2",
              "train.batch_size=2", "data.crop_s=1.6", "train.threads=1", "data.max_validation_items=2",
              "distill.teacher=silero", f"distill.teacher_cache={tmp_path / 'cache'}", f"distill.unlabelled=[{real}]"]

    def run(*args):
        return subprocess.run([sys.executable, "-m", "fdvad.cli", "distill", *common, *args, "--no-progress"],
                              capture_output=True, text=True, timeout=600)

    proc = run(f"out={tmp_path / 'fd'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "val_loss_fd" in proc.stdout
    student, config = load_checkpoint(tmp_path / "fd" / "model.safetensors")
    assert config["distillation"]["projector_parameters"] == 128 * 128 + 128
    assert any((tmp_path / "cache").glob("*.npy"))
    proc = run(f"out={tmp_path / 'kd'}", "distill.target=probabilities")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "val_loss_kd" in proc.stdout
    # crops must cover whole 32 ms teacher frames: one clear line otherwise
    proc = run(f"out={tmp_path / 'bad'}", "data.crop_s=1.5")
    assert proc.returncode != 0 and "0.16" in proc.stderr and "Traceback" not in proc.stderr


def test_a_silero_teacher_refuses_what_it_cannot_teach():
    from fdvad.distill.run import build_distiller
    from fdvad.train.recipe import load_recipe

    def build(*overrides):
        return build_distiller(load_recipe(None, ["data.train=x", "distill.teacher=silero", *overrides]))

    distiller, features, config = build()
    assert distiller.teacher_frames.hop_s == pytest.approx(0.032) and config == {}
    with pytest.raises(ConfigError, match="data.labels must be frame"):
        build("data.labels=segment")
    with pytest.raises(ConfigError, match="teacher_layer"):
        build("distill.teacher_layer=lstm")
    with pytest.raises(ConfigError, match="10 ms frame outputs"):
        build("model.name=vit_vad_tiny")
    # a tapped layer off the 10 ms frame grid would be aligned at the wrong times: refused
    with pytest.raises(ConfigError, match="student_layer=head: its map is"):
        build("distill.student_layer=head")
    assert build("distill.student_layer=encoder.2")[0].student_tap.layer == "encoder.2"  # on the grid: accepted
