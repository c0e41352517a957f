"""scripts/model_card.py: a distilled-then-fine-tuned run is described as two stages; earlier defaults are kept."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_card():
    spec = importlib.util.spec_from_file_location("model_card", ROOT / "scripts" / "model_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recipe(**changes):
    from fdvad.train.recipe import load_recipe

    return load_recipe(None, ["data.train=runs/default-corpus", *changes.get("overrides", [])]).to_dict()


def test_a_fine_tuned_student_is_described_with_its_distillation(model_card, tmp_path):
    student = tmp_path / "distill" / "model.safetensors"
    student.parent.mkdir()
    distill_recipe = _recipe(overrides=["distill.teacher=silero", "distill.unlabelled=[/usr/share/codec2/wav]"])
    student.with_suffix(".yaml").write_text(yaml.safe_dump({"distillation": {"recipe": distill_recipe, "steps": 3000}}))
    config = {"training": {"recipe": _recipe(overrides=[f"model.init={student}", "optim.layer_decay=0.75"]),
                           "steps": 2000, "train_items": 10}}
    assert model_card.stage_one(config)["steps"] == 3000
    summary, commands, steps = model_card.how_made(config, ["recipes/a.yaml", "recipes/b.yaml"])
    assert "Silero VAD v6" in summary
    assert "fdvad distill recipes/a.yaml" in commands and "fdvad finetune recipes/b.yaml" in commands
    assert "stage 1" in steps and "3000 steps" in steps and "codec2" in steps and "layer decay 0.75" in steps
    plain = {"training": {"recipe": _recipe(), "steps": 8000, "train_items": 10}}
    assert model_card.stage_one(plain) is None
    assert "fdvad train recipes/default.yaml" in model_card.how_made(plain, [])[1]


def test_keep_previous_copies_the_default_under_a_name_and_never_overwrites(model_card, tmp_path):
    for suffix, text in ((".safetensors", "weights"), (".yaml", "config"), (".md", "# fdvad default VAD model\nbody")):
        (tmp_path / f"default{suffix}").write_text(text)
    model_card.keep_previous(tmp_path, "synthetic-v1")
    assert (tmp_path / "synthetic-v1.safetensors").read_text() == "weights"
    card = (tmp_path / "synthetic-v1.md").read_text().splitlines()
    assert 'load_vad("synthetic-v1")' in card[0] and card[1] == "body"
    with pytest.raises(SystemExit, match="exists already"):
        model_card.keep_previous(tmp_path, "synthetic-v1")
    with pytest.raises(SystemExit, match="plain name"):
        model_card.keep_previous(tmp_path, "../x")
    (tmp_path / "default.yaml").unlink()
    with pytest.raises(SystemExit, match="no default.yaml"):
        model_card.keep_previous(tmp_path, "synthetic-v2")
    assert not list(tmp_path.glob("synthetic-v2*"))  # nothing half-kept


def test_install_beside_ships_a_named_model_and_leaves_the_default_alone(model_card, tmp_path):
    run, target = tmp_path / "run", tmp_path / "weights"
    run.mkdir()
    target.mkdir()
    (run / "model.safetensors").write_text("new weights")
    (run / "model.yaml").write_text("new config")
    (target / "default.safetensors").write_text("old weights")
    assert model_card.install_beside(run, target, "fd-silero-v1", "# card\n") == 0
    assert (target / "fd-silero-v1.safetensors").read_text() == "new weights"
    assert (target / "fd-silero-v1.yaml").read_text() == "new config"
    assert (target / "default.safetensors").read_text() == "old weights"
    with pytest.raises(SystemExit, match="exists already"):
        model_card.install_beside(run, target, "fd-silero-v1", "# card\n")
    with pytest.raises(SystemExit, match="plain name"):
        model_card.install_beside(run, target, "../x", "# card\n")


def test_an_installed_model_records_its_recipe_with_paths_relative_to_the_repository(model_card, tmp_path):
    run, target = tmp_path / "run", tmp_path / "weights"
    run.mkdir()
    target.mkdir()
    (run / "model.safetensors").write_text("weights")
    (run / "model.yaml").write_text(f"out: {model_card.REPO}/runs/x\ninit: /elsewhere/model.safetensors\n")
    model_card.install_beside(run, target, "named", "# card\n")
    assert (target / "named.yaml").read_text() == "out: runs/x\ninit: /elsewhere/model.safetensors\n"
