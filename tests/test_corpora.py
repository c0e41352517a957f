"""Corpus readers: the same speech truth written as a NeMo frame manifest, a NeMo segment manifest, an RTTM
folder, an AVA-Speech CSV and a LibriParty JSON gives the same frame labels; bad input gives one clear error;
WindowDataset windows and labels on a hand-made example."""

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from fdvad.data.corpora import (
    LabelledAudio,
    WindowDataset,
    frame_labels,
    item_duration,
    read_ava_csv,
    read_corpus,
    read_libriparty_json,
    read_nemo_manifest,
    read_rttm_folder,
    write_window_manifest,
)
from fdvad.errors import ConfigError
from fdvad.vad.segment import Segment

SR = 16000
DURATION = 4.0
# speech on a 20 ms grid, so that every format can say it exactly
TRUTH = [(0.52, 1.30), (2.00, 2.84), (3.40, 3.90)]
KINDS = ["CLEAN_SPEECH", "SPEECH_WITH_MUSIC", "SPEECH_WITH_NOISE"]


def expected_frames(frame_s=0.01):
    n = round(DURATION / frame_s)
    labels = np.zeros(n, bool)
    for start, end in TRUTH:
        labels[round(start / frame_s): round(end / frame_s)] = True
    return labels


def write_wav(path, seconds=DURATION, seed=0):
    rng = np.random.default_rng(seed)
    sf.write(path, (rng.standard_normal(round(seconds * SR)) * 0.05).astype(np.float32), SR)


@pytest.fixture
def corpus(tmp_path):
    """The same truth in five formats; returns {format: path to read}."""
    paths = {}
    write_wav(tmp_path / "talk.wav")

    frame_s = 0.02
    labels = expected_frames(frame_s).astype(int)
    frame = tmp_path / "frames.json"
    frame.write_text(json.dumps({"audio_filepath": "talk.wav", "offset": 0, "duration": DURATION,
                                 "label": " ".join(map(str, labels)), "language": "en"}) + "\n")
    paths["nemo_frames"] = frame

    bounds = [0.0] + [t for seg in TRUTH for t in seg] + [DURATION]
    seg_lines = []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        seg_lines.append(json.dumps({"audio_filepath": str(tmp_path / "talk.wav"), "offset": a,
                                     "duration": round(b - a, 6), "label": ["background", "speech"][i % 2]}))
    segments = tmp_path / "segments.jsonl"
    segments.write_text("\n".join(seg_lines) + "\n\n")
    paths["nemo_segments"] = segments

    folder = tmp_path / "rttm_folder"
    (folder / "rttm").mkdir(parents=True)
    shutil.copy(tmp_path / "talk.wav", folder / "talk.flac.wav")  # a second file with its RTTM beside it
    shutil.copy(tmp_path / "talk.wav", folder / "talk.wav")
    rttm = "".join(f"SPEAKER talk 1 {a:.3f} {b - a:.3f} <NA> <NA> spk{i} <NA> <NA>\n" for i, (a, b) in enumerate(TRUTH))
    (folder / "rttm" / "talk.rttm").write_text(rttm)
    (folder / "talk.flac.rttm").write_text(rttm.replace("talk", "other"))
    paths["rttm"] = folder

    ava_dir = tmp_path / "ava"
    ava_dir.mkdir()
    shutil.copy(tmp_path / "talk.wav", ava_dir / "-vid_01.wav")
    rows = []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        rows.append(f"-vid_01,{a:.2f},{b:.2f},{KINDS[i // 2] if i % 2 else 'NO_SPEECH'}")
    (ava_dir / "ava_speech_labels_v1.csv").write_text("\n".join(rows[::-1]) + "\n")  # order does not matter
    paths["ava"] = ava_dir / "ava_speech_labels_v1.csv"

    party = tmp_path / "party"
    (party / "session_0").mkdir(parents=True)
    shutil.copy(tmp_path / "talk.wav", party / "session_0" / "session_0_mixture.wav")
    session = {
        "spk_a": [{"start": 0.52, "stop": 1.30, "words": []}, {"start": 3.40, "stop": 3.90, "words": []}],
        "spk_b": [{"start": 2.00, "stop": 2.50, "words": []}, {"start": 2.40, "stop": 2.84, "words": []}],
        "noises": [{"start": 1.5, "stop": 1.8, "file": "noise.wav"}],
        "background": {"start": 0, "stop": DURATION, "file": None},
    }
    (party / "train.json").write_text(json.dumps({"session_0": session}, indent=4))
    paths["libriparty"] = party / "train.json"
    return paths


def test_every_format_gives_the_same_frame_labels(corpus):
    expected = expected_frames(0.01)
    readers = {
        "nemo_frames": lambda p: read_nemo_manifest(p),
        "nemo_segments": lambda p: read_nemo_manifest(p),
        "rttm": lambda p: [i for i in read_rttm_folder(p) if i.audio_filepath.endswith("talk.wav")],
        "ava": lambda p: read_ava_csv(p),
        "libriparty": lambda p: read_libriparty_json(p),
    }
    for name, read in readers.items():
        for reader in (read, read_corpus):
            items = reader(corpus[name])
            if name == "rttm":
                items = [i for i in items if i.audio_filepath.endswith("talk.wav")]
            assert len(items) == 1, name
            item = items[0]
            assert item.audio_filepath.startswith("/") and item.audio_filepath.endswith(".wav"), name
            assert item_duration(item) == pytest.approx(DURATION), name
            labels = frame_labels(item, 0.01)
            assert labels.dtype == bool and len(labels) == 400, name
            np.testing.assert_array_equal(labels, expected, err_msg=name)
            np.testing.assert_array_equal(frame_labels(item, 0.02), expected_frames(0.02), err_msg=name)


def test_sources_keep_what_they_say_about_items(corpus):
    assert read_nemo_manifest(corpus["nemo_frames"])[0].meta == {"language": "en"}
    ava = read_ava_csv(corpus["ava"])[0]
    assert ava.offset == 0 and ava.duration == pytest.approx(DURATION)
    assert [k for _, _, k in ava.meta["speech_kinds"]] == KINDS
    party = read_libriparty_json(corpus["libriparty"])[0]
    assert party.meta["speakers"] == 2 and party.meta["noise_events"] == 1
    # both RTTMs are read; the one beside its audio file names another file id and still labels it
    rttm_items = read_rttm_folder(corpus["rttm"])
    assert sorted(i.audio_filepath.rsplit("/", 1)[1] for i in rttm_items) == ["talk.flac.wav", "talk.wav"]
    assert all(len(i.speech) == 3 for i in rttm_items)


def test_frame_rule_more_than_half_is_speech():
    item = LabelledAudio("/x.wav", duration=0.05,
                         speech=[Segment(0.004, 0.0161), Segment(0.025, 0.035), Segment(0.0449, 0.06)])
    # frame 0 [0, .01): 0.006 s > half -> speech; frame 1: 0.0061 -> speech; frame 2 [.02,.03): 0.005 = half
    # -> not; frame 3: 0.005 -> not; frame 4 [.04,.05): speech from .0449 to the end of the audio (.05): 0.0051
    np.testing.assert_array_equal(frame_labels(item, 0.01), [True, True, False, False, True])
    # a partial last frame counts only the audio that exists: 0.055 s -> 6 frames, the 6th has 0.005 s
    assert frame_labels(item, 0.01, duration_s=0.055).tolist() == [True, True, False, False, True, False]
    with pytest.raises(ConfigError):
        frame_labels(item, 0.0)


def test_segment_manifest_grouping_and_ungrouped_clips(tmp_path):
    write_wav(tmp_path / "a.wav", 2.0)
    lines = [{"audio_filepath": "a.wav", "offset": 0.0, "duration": 0.63, "label": "1", "snr_db": 5},
             {"audio_filepath": "a.wav", "offset": 1.0, "duration": 0.63, "label": 0, "snr_db": 10}]
    manifest = tmp_path / "m.json"
    manifest.write_text("".join(json.dumps(e) + "\n" for e in lines))
    grouped = read_nemo_manifest(manifest)
    assert len(grouped) == 1
    assert grouped[0].offset == 0 and grouped[0].duration is None
    assert grouped[0].speech == [Segment(0.0, 0.63)] and grouped[0].meta == {}  # snr_db differs: dropped
    clips = read_nemo_manifest(manifest, group=False)
    assert [(c.offset, c.duration, c.speech, c.meta["snr_db"]) for c in clips] == [
        (0.0, 0.63, [Segment(0.0, 0.63)], 5), (1.0, 0.63, [], 10)]


def test_frame_manifest_with_offset_and_other_frame_length(tmp_path):
    write_wav(tmp_path / "a.wav", 2.0)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "offset": 0.5, "duration": 0.4,
                                    "label": "0 1 1 0 0 0 0 1 1 1"}) + "\n")
    with pytest.raises(ConfigError, match=r"line 1: 10 frame labels x 0.02 s = 0.2 s .*frame_s=0.04"):
        read_nemo_manifest(manifest)
    item = read_nemo_manifest(manifest, frame_s=0.04)[0]
    assert (item.offset, item.duration) == (0.5, 0.4)
    assert item.speech == [Segment(0.04, 0.12), Segment(0.28, 0.4)]
    assert frame_labels(item, 0.04).astype(int).tolist() == [0, 1, 1, 0, 0, 0, 0, 1, 1, 1]


def test_nemo_manifest_with_rttm_filepath(tmp_path):
    write_wav(tmp_path / "a.wav", 3.0)
    (tmp_path / "a.rttm").write_text("SPEAKER a 1 0.5 1.0 <NA> <NA> s1 <NA> <NA>\n"
                                     "SPEAKER a 1 2.0 0.5 <NA> <NA> s2 <NA> <NA>\n")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"audio_filepath": "a.wav", "offset": 1.0, "duration": 1.2,
                                    "rttm_filepath": "a.rttm"}) + "\n")
    item = read_nemo_manifest(manifest)[0]
    assert item.speech == [Segment(0.0, 0.5), Segment(1.0, 1.2)]


@pytest.mark.parametrize("lines, message", [
    (['{"audio_filepath": "a.wav", "duration": 1, "label": "speech"}', "", "{not json"], r"line 3: not valid JSON"),
    (['{"audio_filepath": "a.wav", "duration": 1, "label": "maybe"}'], r"line 1: label 'maybe'"),
    (["", '{"audio_filepath": "a.wav", "duration": "long", "label": "speech"}'], r"line 2: \"duration\" must be"),
    (['{"audio_filepath": "a.wav", "duration": 1, "label": "speech"}',
      '{"audio_filepath": "a.wav", "offset": -1, "duration": 1, "label": "speech"}'], r"line 2: \"offset\" must be"),
    (['{"audio_filepath": "a.wav", "duration": 1}'], r"line 1: no speech label"),
    (['{"audio_filepath": "nowhere.wav", "duration": 1, "label": "1"}'], r"line 1: no audio file found"),
    (['{"audio_filepath": "a.wav", "label": "speech"}'], r"line 1: a segment entry needs \"duration\""),
])
def test_bad_manifests_name_file_and_line(tmp_path, lines, message):
    write_wav(tmp_path / "a.wav", 1.0)
    manifest = tmp_path / "bad.json"
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=message) as info:
        read_nemo_manifest(manifest)
    assert str(manifest) in str(info.value) and "\n" not in str(info.value)


def test_missing_audio_can_be_skipped(tmp_path):
    write_wav(tmp_path / "a.wav", 1.0)
    manifest = tmp_path / "m.json"
    manifest.write_text('{"audio_filepath": "a.wav", "duration": 1, "label": "1"}\n'
                        '{"audio_filepath": "gone.wav", "duration": 1, "label": "1"}\n')
    with pytest.raises(ConfigError, match="skip_missing"):
        read_nemo_manifest(manifest)
    assert len(read_nemo_manifest(manifest, skip_missing=True)) == 1
    (tmp_path / "labels.csv").write_text("a,0,1,CLEAN_SPEECH\nb,0,1,NO_SPEECH\n")
    with pytest.raises(ConfigError, match="video b: no audio file found"):
        read_ava_csv(tmp_path / "labels.csv")
    assert [i.audio_filepath for i in read_ava_csv(tmp_path / "labels.csv", skip_missing=True)] == [
        str(tmp_path / "a.wav")]


@pytest.mark.parametrize("text, message", [
    ("video_id,start,end,label\nv,0,1,SPEECH\n", r"line 2: unknown label 'SPEECH'"),
    ("v,0,1,NO_SPEECH\nv,zero,1,NO_SPEECH\n", r"line 2: \"start\" must be a number"),
    ("v,0,1,NO_SPEECH\n\nv,2,1,NO_SPEECH\n", r"line 3: end 1 is before start 2"),
    ("v,0,1\n", r"line 1: expected video_id,start,end,label"),
])
def test_bad_ava_csv_names_line(tmp_path, text, message):
    write_wav(tmp_path / "v.wav", 1.0)
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_ava_csv(path)


def test_ava_time_offset_and_labelled_span(tmp_path):
    write_wav(tmp_path / "v.wav", 1.0)
    (tmp_path / "v.wav").rename(tmp_path / "v.opus")  # any extension; only the name is looked at here
    (tmp_path / "v.txt").write_text("notes, not audio")
    path = tmp_path / "labels.csv"
    path.write_text("v,900.2,900.5,NO_SPEECH\nv,900.5,900.9,SPEECH_WITH_NOISE\n")
    item = read_ava_csv(path, time_offset_s=900)[0]
    assert item.audio_filepath == str(tmp_path / "v.opus")
    assert item.offset == pytest.approx(0.2) and item.duration == pytest.approx(0.7)
    assert item.speech == [Segment(0.3, 0.7)]
    (tmp_path / "v.mp4").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"several audio files fit \(v.mp4, v.opus\)"):
        read_ava_csv(path, time_offset_s=900)


def test_bad_rttm_and_libriparty_inputs(tmp_path):
    (tmp_path / "x.rttm").write_text("SPEAKER x 1 0.5 <NA> <NA> <NA> s <NA> <NA>\n")
    write_wav(tmp_path / "x.wav", 1.0)
    with pytest.raises(ConfigError, match=r"x.rttm, line 1"):
        read_rttm_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no .rttm files"):
        read_rttm_folder(tmp_path / "empty")
    bad = tmp_path / "party.json"
    bad.write_text('{\n  "session_0": {\n    "s": [{"start": 1, }]\n  }\n}\n')
    for reader in (read_libriparty_json, read_corpus):
        with pytest.raises(ConfigError, match=r"party.json, line 3: not valid JSON"):
            reader(bad)
    bad.write_text(json.dumps({"session_0": {"s": [{"start": 1.0, "stop": "late"}], "background": {"stop": 2}}}))
    with pytest.raises(ConfigError, match=r"session 'session_0', speaker 's', utterance 0: \"stop\""):
        read_libriparty_json(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        read_corpus(tmp_path / "nothing.json")
    with pytest.raises(ConfigError, match="cannot tell"):
        read_corpus(tmp_path / "x.wav")


def test_libriparty_single_session_file(tmp_path):
    write_wav(tmp_path / "session_3_mixture.wav", 2.0)
    path = tmp_path / "session_3.json"
    path.write_text(json.dumps({"1089": [{"start": 0.25, "stop": 1.0}], "121": [{"start": 0.75, "stop": 1.5}]}))
    item = read_corpus(path)[0]
    assert item.audio_filepath.endswith("session_3_mixture.wav") and item.duration is None
    assert item.speech == [Segment(0.25, 1.5)]


# --------------------------------------------------------------------------- WindowDataset

def test_window_dataset_windows_and_labels_by_hand(tmp_path):
    # a ramp, so that every sample says where it came from
    ramp = (np.arange(2 * SR) / (2 * SR)).astype(np.float32)
    sf.write(tmp_path / "ramp.wav", ramp, SR, subtype="FLOAT")
    path = str(tmp_path / "ramp.wav")
    items = [LabelledAudio(path, 0.0, 1.0, [Segment(0.40, 0.60)]),  # 0.2 s: centre yes, majority never
             LabelledAudio(path, 1.0, None, [Segment(0.0, 1.0)])]  # all speech, the file's second second

    centre = WindowDataset(items, label_rule="centre")
    majority = WindowDataset(items, label_rule="majority")
    # 1 s = 16000 samples / 1280 per shift = 12.5 -> 13 windows per item
    assert len(centre) == len(majority) == 26
    # centre of window k: (k + 0.5) * 0.08 s = 0.04, 0.12, ..., 0.44 (k=5), 0.52 (k=6), 0.60 (k=7: end, excluded);
    # the last, partial interval [0.96, 1.04) of item 1 has its centre inside the audio: 0.98 s -> speech
    assert centre.labels.tolist() == [0] * 5 + [1, 1] + [0] * 6 + [1] * 13
    # majority: window k spans [0.08 k - 0.27, 0.08 k + 0.36) s, 0.63 s; more than 0.315 s of speech needed.
    # item 0 has 0.2 s of speech in all. Item 1: k=0 has 0.36 s (yes) ... k=11 [0.61, 1.24) has 0.39 s (yes),
    # k=12 [0.69, 1.32) has 0.31 s (no).
    assert majority.labels.tolist() == [0] * 13 + [1] * 12 + [0]

    x, y = centre[5]
    assert x.dtype == torch.float32 and x.shape == (10080,) and y.item() == 1.0
    # window k starts at k * 1280 - 4320 samples: window 5 = ramp[2080:12160]
    np.testing.assert_array_equal(x.numpy(), ramp[2080:12160])
    x0, y0 = centre[0]  # 4320 zeros, then ramp[0:5760]
    np.testing.assert_array_equal(x0.numpy(), np.concatenate([np.zeros(4320, np.float32), ramp[:5760]]))
    assert y0.item() == 0.0
    # the last window of item 0 stops at the item's end (1 s) even though the file goes on: zeros after it
    x12, _ = centre[12]
    np.testing.assert_array_equal(x12.numpy(), np.concatenate([ramp[11040:16000], np.zeros(5120, np.float32)]))
    # item 1 starts at its offset (1 s)
    x13, y13 = centre[13]
    np.testing.assert_array_equal(x13.numpy(), np.concatenate([np.zeros(4320, np.float32), ramp[16000:21760]]))
    assert y13.item() == 1.0 and centre.item_of(13) == (1, 0)
    np.testing.assert_array_equal(centre[-1][0].numpy(), centre[25][0].numpy())
    with pytest.raises(IndexError):
        centre[26]

    batch_x, batch_y = next(iter(torch.utils.data.DataLoader(centre, batch_size=8, sampler=list(range(3, 11)))))
    assert batch_x.shape == (8, 10080) and batch_y.dtype == torch.float32
    assert batch_y.tolist() == [0, 0, 1, 1, 0, 0, 0, 0]

    order = centre.grouped_order(seed=1, files_at_once=1)
    assert sorted(order) == list(range(26))
    # one item at a time: the first 13 windows all belong to one item
    assert len({centre.item_of(i)[0] for i in order[:13]}) == 1


def test_window_manifest_writes_nemo_segment_entries_by_hand(tmp_path):
    ramp = (np.arange(2 * SR) / (2 * SR)).astype(np.float32)
    sf.write(tmp_path / "ramp.wav", ramp, SR, subtype="FLOAT")
    path = str(tmp_path / "ramp.wav")
    items = [LabelledAudio(path, 0.0, 1.0, [Segment(0.40, 0.60)]), LabelledAudio(path, 1.0, None, [Segment(0.0, 1.0)])]
    # window k of a 1 s item starts at k * 1280 - 4320 samples; it lies inside the item for k = 4..8 only
    starts = [(k * 1280 - 4320) / SR for k in range(4, 9)]  # 0.05, 0.13, 0.21, 0.29, 0.37 s
    expected = {"centre": [0, 1, 1, 0, 0] + [1] * 5, "majority": [0] * 5 + [1] * 5}
    for rule, labels in expected.items():
        out = tmp_path / f"windows-{rule}.json"
        assert write_window_manifest(items, out, label_rule=rule) == 10
        entries = [json.loads(line) for line in out.read_text().splitlines()]
        assert [e["audio_filepath"] for e in entries] == ["ramp.wav"] * 10  # relative to the manifest
        assert [e["offset"] for e in entries] == pytest.approx(starts + [1 + s for s in starts])
        assert {e["duration"] for e in entries} == {0.63}
        assert [e["label"] for e in entries] == ["speech" if v else "background" for v in labels]
        # NeMo segment clips read back one item each, wholly speech or not
        clips = read_nemo_manifest(out, group=False)
        assert [bool(c.speech) for c in clips] == [bool(v) for v in labels]
        assert all(c.speech in ([], [Segment(0.0, 0.63)]) and c.duration == 0.63 for c in clips)  # item time
        with pytest.raises(Exception, match="exists"):
            write_window_manifest(items, out, label_rule=rule)


def test_window_dataset_rejects_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="label_rule"):
        WindowDataset([], label_rule="middle")
    with pytest.raises(ConfigError, match="shift_s"):
        WindowDataset([], shift_s=0.085)
    assert len(WindowDataset([])) == 0


def test_data_windows_command_writes_the_same_labels_for_every_format(corpus, tmp_path):
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-m", "fdvad.cli", "data", "windows", *map(str, args)],
                              capture_output=True, text=True, timeout=120)

    labels = {}
    for name in ("nemo_frames", "ava"):
        out = tmp_path / f"windows-{name}.json"
        proc = run(corpus[name], "--out", out, "--rule", "majority")
        assert proc.returncode == 0, proc.stderr
        entries = [json.loads(line) for line in out.read_text().splitlines()]
        assert f"{len(entries)} windows" in proc.stdout and {e["duration"] for e in entries} == {0.63}
        labels[name] = [e["label"] for e in entries]
    assert labels["nemo_frames"] == labels["ava"] and "speech" in labels["ava"] and "background" in labels["ava"]
    for args, message in (((corpus["ava"], "--out", tmp_path / "windows-ava.json"), "--overwrite"),
                          ((corpus["ava"], "--out", tmp_path / "w.json", "--rule", "middle"), "label_rule"),
                          ((corpus["ava"], "--out", tmp_path / "no" / "w.json"), "does not exist")):
        proc = run(*args)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode != 0 and len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
