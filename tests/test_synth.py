"""The corpus builder (`fdvad data synth`): determinism, parallel = serial, resume, splits, labels, bad input."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fdvad.data import synth
from fdvad.data.corpora import frame_labels, read_nemo_manifest, read_rttm_folder
from fdvad.errors import ConfigError

from conftest import needs_espeak

pytestmark = needs_espeak

N_ITEMS = 10
EFFECTS = {"reverb": 0.3, "bandlimit": 0.2, "resample8k": 0.2, "codec": 0.5, "gain": 0.3, "clip": 0.1}


def _config():
    return synth.SynthConfig(effects=dict(EFFECTS))


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    synth.synthesize_corpus(out, items=N_ITEMS, seed=3, jobs=1, config=_config(), progress=False)
    return out


def test_same_seed_same_bytes_and_jobs_do_not_matter(corpus, tmp_path):
    again = tmp_path / "again"
    synth.synthesize_corpus(again, items=N_ITEMS, seed=3, jobs=2, config=_config(), progress=False)
    first, second = _digest(corpus), _digest(again)
    assert first == second
    assert sum(name.endswith(".wav") for name in first) == N_ITEMS
    assert not any(".tmp" in name for name in first)
    other = tmp_path / "other"
    synth.synthesize_corpus(other, items=N_ITEMS, seed=4, jobs=1, config=_config(), progress=False)
    assert _digest(other)["train/manifest.json"] != first["train/manifest.json"]


def test_interrupted_run_resumes_to_the_same_bytes(corpus, tmp_path):
    out = tmp_path / "resumed"
    synth.synthesize_corpus(out, items=4, seed=3, jobs=1, config=_config(), progress=False)  # "interrupted"
    # a crash between writing an item and recording it: its file is there, the progress file does not list it
    wav = next((out / "train").glob("*.wav"))
    wav.unlink()  # and an item whose audio went missing is made again
    result = synth.synthesize_corpus(out, items=N_ITEMS, seed=3, jobs=2, config=_config(), progress=False)
    assert result["made"] == N_ITEMS - 4 + 1
    assert _digest(out) == _digest(corpus)
    assert synth.synthesize_corpus(out, items=N_ITEMS, seed=3, config=_config(), progress=False)["made"] == 0
    with pytest.raises(ConfigError, match="other settings"):
        synth.synthesize_corpus(out, items=N_ITEMS, seed=5, config=_config(), progress=False)


def test_manifest_reads_back_with_the_written_labels(corpus):
    for split in synth.SPLITS:
        manifest = corpus / split / "manifest.json"
        items = read_nemo_manifest(manifest)  # 20 ms frames: NeMo's default frame length
        lines = manifest.read_text(encoding="utf-8").splitlines()
        assert len(items) == len(lines) > 0
        rttm = {Path(i.audio_filepath).stem: i for i in read_rttm_folder(corpus / split)}
        for item, line in zip(items, lines):
            import json
            entry = json.loads(line)
            written = np.array(entry["label"].split()) == "1"
            assert np.array_equal(frame_labels(item, synth.MANIFEST_FRAME_S), written)
            from_rttm = rttm[Path(item.audio_filepath).stem]
            assert np.array_equal(frame_labels(from_rttm, synth.MANIFEST_FRAME_S, item.duration), written)
            import soundfile as sf
            info = sf.info(item.audio_filepath)
            assert info.samplerate == 16000 and info.subtype == "PCM_16" and info.channels == 1
            assert abs(info.frames / 16000 - item.duration) < 1e-6
            assert 4.0 <= item.duration <= 20.0
            assert item.meta["split"] == split and "noise_package" in item.meta and "codec" in item.meta


def test_window_manifest_holds_the_exact_window_labels(corpus):
    from fdvad.data.corpora import WindowDataset

    for split in synth.SPLITS:
        windows = read_nemo_manifest(corpus / split / synth.WINDOW_MANIFEST, group=False)
        items = read_rttm_folder(corpus / split)  # the exact 10 ms labels
        dataset = WindowDataset(items, label_rule="centre")
        expected = {}
        for index in range(len(dataset)):
            i, k = dataset.item_of(index)
            first = k * 1280 - 4320
            if first >= 0 and first + 10080 <= dataset.item_samples[i]:
                expected[(items[i].audio_filepath, round(first / 16000, 6))] = bool(dataset.labels[index])
        got = {(w.audio_filepath, round(w.offset, 6)): bool(w.speech) for w in windows}
        assert got == expected and len(got) > 100
        assert any(got.values()) and not all(got.values())


def test_no_speaker_sentence_or_noise_in_both_train_and_test(corpus):
    import json

    procedural = {s.name for s in synth.src.list_sources(synth.PROCEDURAL_KINDS)}

    def used(split, key):
        values = set()
        for line in (corpus / split / "manifest.json").read_text(encoding="utf-8").splitlines():
            values |= {v for v in json.loads(line)[key] if ":pseudo:" not in v and v not in procedural}
        return values

    for key in ("speaker", "text_id", "noise"):
        for held in ("validation", "test", "test_unseen_language"):
            assert not used("train", key) & used(held, key), key
    train_languages = {json.loads(l)["language"] for l in (corpus / "train" / "manifest.json").open()}
    unseen = {json.loads(l)["language"] for l in (corpus / "test_unseen_language" / "manifest.json").open()}
    assert unseen <= set(synth.UNSEEN_LANGUAGES) and not unseen & train_languages
    # the pools themselves, not only the few items drawn here
    pools = synth.build_pools(_config())
    speakers = {s: {v.speaker for per in pools.voices[s].values() for vs in per.values() for v in vs}
                for s in synth.SPLITS}
    noises = {f: {n.name for vs in pools.noises[f].values() for n in vs if n.name not in procedural}
              for f in ("train", "validation", "test")}
    for held in ("validation", "test", "test_unseen_language"):
        assert not speakers["train"] & speakers[held]
    assert not noises["train"] & noises["test"] and not noises["train"] & noises["validation"]
    # every split sees every kind of non-speech (recorded ones by their own split, procedural ones shared)
    for f in ("train", "validation", "test"):
        assert set(pools.noises[f]) == set(synth.NOISE_KIND_WEIGHTS), f
    assert not set(pools.voices["train"]) & set(pools.voices["test_unseen_language"])


def test_labels_sit_on_the_placed_speech_within_20ms():
    """Each utterance's labels are its own clean-signal labels (tts.speech_frames) at the place it was put,
    and its labelled onset is within 20 ms of its first sample above 1% of its peak."""
    from fdvad.data.tts import speech_frames

    config = synth.SynthConfig(effects={k: 0.0 for k in synth.DEFAULT_EFFECTS}, engines=("espeak",))
    pools = synth.build_pools(config)
    checked = 0
    for index in range(6):
        item = synth.make_item("train", index, config, pools)
        starts = [int(round(s * 16000)) for s in item.meta["utterance_start_s"]] + [len(item.clean)]
        assert not item.frames[: starts[0] // 160].any()
        for k, (a, b) in enumerate(zip(starts[:-1], starts[1:])):
            assert a % 160 == 0
            labels = item.frames[a // 160: b // 160]
            if item.meta["style"][k] != "shouted":  # clipping changes the clean signal's frame energies
                assert np.array_equal(labels, speech_frames(item.clean[a:b])[: len(labels)])
            region = np.abs(item.clean[a:b])
            loud = np.flatnonzero(region > 0.01 * region.max())
            labelled = np.flatnonzero(labels)
            assert abs(labelled[0] * 0.01 - loud[0] / 16000) <= 0.02
            assert labelled[-1] * 0.01 <= loud[-1] / 16000 + 0.02  # never labelled past the sound
            checked += 1
    assert checked >= 3


def test_codec_round_trip_stays_sample_aligned():
    rng = np.random.default_rng(0)
    x = np.zeros(16000 * 3)
    for a in range(0, len(x), 8000):
        x[a:a + 3000] = rng.standard_normal(3000) * 0.2 * np.sin(np.arange(3000) / 300)
    for name, kbps in (("mp3", 16), ("opus", 12), ("aac", 24)):
        y = synth.codec_round_trip(x, name, kbps)
        assert len(y) == len(x)
        corr = [np.corrcoef(x, np.roll(y, s))[0, 1] for s in (-1, 0, 1)]
        assert int(np.argmax(corr)) == 1 and corr[1] > 0.5, (name, corr)


def _cli(*args, env=None):
    proc = subprocess.run([sys.executable, "-m", "fdvad.cli", "data", "synth", *map(str, args)],
                          capture_output=True, text=True, timeout=120, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def _one_line_error(rc, out, err):
    assert rc != 0 and "Traceback" not in out + err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_cli_makes_a_corpus_and_reports_throughput(tmp_path):
    rc, out, err = _cli("--out", tmp_path / "c", "--items", 4, "--seed", 1)
    assert rc == 0, err
    assert "h of audio per minute" in out
    assert (tmp_path / "c" / "train" / "manifest.json").is_file()


def test_cli_bad_input_gives_one_line(tmp_path):
    assert "does not exist" in _one_line_error(*_cli("--out", tmp_path / "no" / "c", "--hours", 0.01))
    (tmp_path / "file").write_text("x")
    _one_line_error(*_cli("--out", tmp_path / "file" / "c", "--hours", 0.01))
    assert "--hours" in _one_line_error(*_cli("--out", tmp_path / "c", "--hours", 0))
    assert "--hours" in _one_line_error(*_cli("--out", tmp_path / "c", "--hours", -1))
    assert "unknown TTS engine" in _one_line_error(*_cli("--out", tmp_path / "c", "--hours", 0.01,
                                                         "--engines", "nosuch"))
    assert "unknown TTS voice" in _one_line_error(*_cli("--out", tmp_path / "c", "--hours", 0.01,
                                                        "--voices", "espeak:xx-nowhere"))
    assert "unknown effect" in _one_line_error(*_cli("--out", tmp_path / "c", "--hours", 0.01,
                                                     "--effects", "echo=0.5"))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no TTS program on the PATH
    line = _one_line_error(*_cli("--out", tmp_path / "c", "--hours", 0.01, "--engines", "flite", env=env))
    assert "apt-get install flite" in line


def _unwritable_folder(tmp_path) -> Path | None:
    """A folder this process cannot write into: a read-only one, or (as root) one on a read-only file system."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    if not os.access(folder, os.W_OK):
        return folder
    for candidate in (Path("/sys/kernel"), Path("/proc/sys")):
        if candidate.is_dir() and _mkdir_fails(candidate / "fdvad-x"):
            return candidate
    return None


def _mkdir_fails(path: Path) -> bool:
    try:
        path.mkdir()
    except OSError:
        return True
    path.rmdir()
    return False


def test_unwritable_output_folder_gives_one_line(tmp_path):
    folder = _unwritable_folder(tmp_path)
    if folder is None:
        pytest.skip("no unwritable folder can be made here")
    line = _one_line_error(*_cli("--out", folder / "corpus", "--items", 2))
    assert "corpus" in line and ("cannot create" in line or "not writable" in line)


FULL_DISK = """
import errno, sys
import soundfile
real = soundfile.write
calls = []
def write(*args, **kwargs):
    calls.append(1)
    if len(calls) > {ok}:
        raise OSError(errno.ENOSPC, "No space left on device")
    return real(*args, **kwargs)
soundfile.write = write
sys.argv = ["fdvad"] + sys.argv[1:]
from fdvad.cli import main
main()
"""


def test_full_disk_stops_with_one_line_and_the_run_resumes(tmp_path):
    """The disk fills after 3 items: one error line, no partial file; run again (disk freed): the same bytes
    as an uninterrupted run."""
    out = tmp_path / "c"
    args = ["data", "synth", "--out", str(out), "--items", 6, "--seed", 2, "--effects", "codec=0"]
    proc = subprocess.run([sys.executable, "-c", FULL_DISK.format(ok=3), *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    line = _one_line_error(proc.returncode, proc.stdout, proc.stderr)
    assert "No space left on device" in line and ".wav" in line
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in files if ".tmp" in p.name]
    assert sum(p.suffix == ".wav" for p in files) == 3
    rc, _, err = _cli(*args[2:])
    assert rc == 0, err
    fresh = tmp_path / "fresh"
    rc, _, err = _cli(*(args[2:3] + [str(fresh)] + args[4:]))
    assert rc == 0, err
    assert _digest(out) == _digest(fresh)


def test_noise_kinds_restrict_the_background():
    pools = synth.build_pools(synth.SynthConfig(noise_kinds=("generated", "human")))
    for fam in ("train", "validation", "test"):
        assert set(pools.noises[fam]) == {"generated", "human"}
    with pytest.raises(ConfigError, match="unknown noise kind"):
        synth.build_pools(synth.SynthConfig(noise_kinds=("generated", "speech")))
    # corpora made before the option existed keep their fingerprint
    assert synth.SynthConfig().fingerprint() != synth.SynthConfig(noise_kinds=("real",)).fingerprint()
