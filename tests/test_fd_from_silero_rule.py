"""The Silero experiment's decision pieces (experiments/fd_from_silero/run.py): the shipping rule reads the right
numbers, and the candidate's seeds are shared between two processes without training one twice."""

import fcntl
import importlib.util
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "experiments" / "fd_from_silero" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("fd_from_silero_run", RUN)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def row(phone_auroc, phone_deter=0.1, words_deter=0.5, synthetic=0.98, unseen=0.98):
    return {"pyannote (real)": {"auroc": phone_auroc, "deter@0": phone_deter},
            "spoken words (real)": {"deter@0": words_deter},
            "synthetic test": {"auroc": synthetic}, "unseen language": {"auroc": unseen}}


def table(run, recipe_seeds, candidate, others=0.9945):
    t = {name: [row(others), row(others + 0.0002), row(others - 0.0002)] for name in run.TRAINED}
    t[run.LONG] = [row(a) for a in recipe_seeds]
    t[run.CANDIDATE] = [candidate]
    t["current default"] = [row(0.975, phone_deter=0.096, words_deter=0.61, synthetic=0.989, unseen=0.990)]
    return t


def test_the_recipe_mean_not_the_shipped_seed_is_held_against_the_other_students(run):
    # the shipped seed alone trails the others' means, the recipe's mean is above them: it ships
    ships, reasons = run.ship_decision(table(run, [0.9945, 0.9952, 0.9953], row(0.9945, 0.08, 0.43)))
    assert ships, reasons
    # the recipe's mean below one student system's mean: it does not
    ships, reasons = run.ship_decision(table(run, [0.9945, 0.9944, 0.9946], row(0.9950, 0.08, 0.43)))
    assert not ships
    assert sum(r.startswith("fails") for r in reasons) == len(run.TRAINED)


@pytest.mark.parametrize("candidate", [
    row(0.9950, phone_deter=0.097, words_deter=0.43),  # phone call DetER not below the default's
    row(0.9950, phone_deter=0.08, words_deter=0.62),  # spoken words DetER not below the default's
    row(0.9950, phone_deter=0.08, words_deter=0.43, synthetic=0.978),  # synthetic test more than 0.01 below
    row(0.9700, phone_deter=0.08, words_deter=0.43),  # phone call AUROC below the default's
])
def test_the_shipped_model_must_still_beat_the_default_on_its_own(run, candidate):
    ships, reasons = run.ship_decision(table(run, [0.9955, 0.9956, 0.9957], candidate))
    assert not ships
    assert [r for r in reasons if r.startswith("fails")][0].startswith("fails: shipped model")


def test_a_seed_another_process_trains_is_skipped_then_waited_for(run, tmp_path, monkeypatch):
    trained = []

    def fake_train(plan, work, log, seed):
        trained.append(seed)
        return work / f"ship_finetune{run.long_suffix(seed)}" / "model.safetensors"

    monkeypatch.setattr(run, "_train_long_locked", fake_train)
    plan = run.Plan(long_seeds=[0, 1, 2])
    with open(tmp_path / "ship_s1.lock", "w") as held:  # "another process" trains seed 1
        fcntl.flock(held, fcntl.LOCK_EX)
        made = run.train_long_seeds(plan, tmp_path, print, wait=False)
        assert trained == [0, 2]
        assert [p.parent.name for p in made] == ["ship_finetune", "ship_finetune_s2"]
    made = run.train_long_seeds(plan, tmp_path, print)  # the lock is free again: seed 1 is taken up
    assert [p.parent.name for p in made] == ["ship_finetune", "ship_finetune_s1", "ship_finetune_s2"]
