"""Segment writers and readers: exact text of every format, round trips, safe and atomic writing."""

import json
import os

import pytest

from fdvad.errors import ConfigError, FdvadError, OutputExistsError
from fdvad.vad import formats
from fdvad.vad.formats import (
    EXTENSIONS,
    FORMATS,
    format_segments,
    guess_format,
    manifest_segments,
    read_manifest,
    read_rttm,
    write_segments,
)
from fdvad.vad.segment import Segment

SEGMENTS = [Segment(0.5, 1.25, 0.91234), Segment(2.0, 3.1234)]
AUDIO = "/data/talk.wav"

EXPECTED = {
    "json": '[\n  {"start": 0.5, "end": 1.25, "score": 0.9123},\n  {"start": 2.0, "end": 3.123}\n]\n',
    "rttm": (
        "SPEAKER talk 1 0.500 0.750 <NA> <NA> speech <NA> <NA>\n"
        "SPEAKER talk 1 2.000 1.123 <NA> <NA> speech <NA> <NA>\n"
    ),
    "csv": "start,end,duration\n0.500,1.250,0.750\n2.000,3.123,1.123\n",
    "audacity": "0.500000\t1.250000\tspeech\n2.000000\t3.123400\tspeech\n",
    "manifest": (
        '{"audio_filepath": "/data/talk.wav", "offset": 0.5, "duration": 0.75, "label": "speech"}\n'
        '{"audio_filepath": "/data/talk.wav", "offset": 2.0, "duration": 1.123, "label": "speech"}\n'
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_exact_text(fmt):
    assert format_segments(SEGMENTS, fmt, AUDIO) == EXPECTED[fmt]


def test_every_format_has_expected_text_and_extension():
    assert set(EXPECTED) == set(FORMATS) == set(EXTENSIONS)
    assert EXTENSIONS == {"json": ".json", "rttm": ".rttm", "csv": ".csv", "audacity": ".txt", "manifest": ".jsonl"}


def test_empty_segment_list():
    assert format_segments([], "json") == "[]\n"
    assert format_segments([], "csv") == "start,end,duration\n"
    assert format_segments([], "rttm", AUDIO) == ""
    assert json.loads(format_segments([], "json")) == []


def test_duration_is_computed_from_rounded_times():
    # raw duration 0.1002 would print 0.100; from the printed times it is 0.224 - 0.123 = 0.101
    seg = [Segment(0.1234, 0.2236)]
    assert format_segments(seg, "csv") == "start,end,duration\n0.123,0.224,0.101\n"
    assert format_segments(seg, "rttm", AUDIO).split()[3:5] == ["0.123", "0.101"]


def test_manifest_keeps_non_ascii_paths_readable():
    line = format_segments([Segment(0.0, 1.0)], "manifest", "/data/café.wav")
    assert '"/data/café.wav"' in line


def test_json_output_is_valid_json():
    assert json.loads(EXPECTED["json"]) == [{"start": 0.5, "end": 1.25, "score": 0.9123}, {"start": 2.0, "end": 3.123}]


def test_rttm_file_id_has_no_spaces():
    text = format_segments([Segment(0.0, 1.0)], "rttm", "/x/my talk.final.mp4")
    assert text.split()[1] == "my_talk.final"


def test_manifest_path_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = format_segments([Segment(0.0, 1.0)], "manifest", "clip.wav")
    assert json.loads(line)["audio_filepath"] == str(tmp_path / "clip.wav")


def test_unknown_format():
    with pytest.raises(ConfigError, match="unknown output format 'srtx'.*json, rttm, csv, audacity, manifest"):
        format_segments(SEGMENTS, "srtx", AUDIO)


def test_unknown_format_writes_nothing(tmp_path):
    with pytest.raises(ConfigError):
        write_segments(tmp_path / "out.x", SEGMENTS, "srtx", AUDIO)
    assert list(tmp_path.iterdir()) == []


def test_guess_format():
    assert guess_format("a/b.RTTM") == "rttm"
    assert guess_format("labels.txt") == "audacity"
    assert guess_format("m.jsonl") == "manifest"
    assert guess_format("s.json") == "json"
    with pytest.raises(ConfigError, match="--format"):
        guess_format("out.srt")


# ---------------------------------------------------------------- round trips


def test_rttm_round_trip(tmp_path):
    path = write_segments(tmp_path / "talk.rttm", SEGMENTS, "rttm", AUDIO)
    result = read_rttm(path)
    assert list(result) == ["talk"]
    assert [(s.start, s.end) for s in result["talk"]] == [pytest.approx((0.5, 1.25)), pytest.approx((2.0, 3.123))]


def test_read_rttm_merges_sorts_and_skips_other_lines(tmp_path):
    path = tmp_path / "ref.rttm"
    path.write_text(
        "# a comment\n"
        ";; another\n"
        "\n"
        "SPKR-INFO a 1 <NA> <NA> <NA> unknown alice <NA> <NA>\n"
        "SPEAKER a 1 5.0 1.0 <NA> <NA> bob <NA> <NA>\n"
        "SPEAKER a 1 0.0 2.0 <NA> <NA> alice <NA> <NA>\n"
        "SPEAKER b 1 1.0 1.0 <NA> <NA> x <NA> <NA>\n"
        "SPEAKER a 1 1.5 1.0 <NA> <NA> bob <NA> <NA>\n"
        "SPEAKER a 1 2.5 0.5 <NA> <NA> carol <NA> <NA>\n"
    )
    result = read_rttm(path)
    assert {k: [(s.start, s.end) for s in v] for k, v in result.items()} == {
        "a": [(0.0, 3.0), (5.0, 6.0)],
        "b": [(1.0, 2.0)],
    }


def test_read_rttm_bad_line(tmp_path):
    path = tmp_path / "bad.rttm"
    path.write_text("SPEAKER a 1 0.0 1.0 <NA> <NA> speech <NA> <NA>\nSPEAKER a 1 zero 1.0\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_rttm(path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_rttm(tmp_path / "missing.rttm")


def test_manifest_round_trip(tmp_path):
    path = write_segments(tmp_path / "talk.jsonl", SEGMENTS, "manifest", AUDIO)
    entries = read_manifest(path)
    assert [e["label"] for e in entries] == ["speech", "speech"]
    result = manifest_segments(entries)
    assert list(result) == [AUDIO]
    assert [(s.start, s.end) for s in result[AUDIO]] == [pytest.approx((0.5, 1.25)), pytest.approx((2.0, 3.123))]


def test_read_manifest_skips_blank_lines_and_reports_line_numbers(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"audio_filepath": "a.wav", "duration": 2.0}\n\n   \n{"audio_filepath": "b.wav"}\n')
    assert [e["audio_filepath"] for e in read_manifest(path)] == ["a.wav", "b.wav"]
    path.write_text('{"audio_filepath": "a.wav"}\n\n{"audio_filepath": "b.wav",\n')
    with pytest.raises(ConfigError, match="line 3.*not valid JSON"):
        read_manifest(path)
    path.write_text('{"audio_filepath": "a.wav"}\n{"duration": 1.0}\n')
    with pytest.raises(ConfigError, match="line 2.*audio_filepath"):
        read_manifest(path)


def test_manifest_segments_labels_offsets_and_merging():
    entries = [
        {"audio_filepath": "a.wav", "offset": 3.0, "duration": 1.0, "label": "speech"},
        {"audio_filepath": "a.wav", "duration": 1.0},  # no offset: from 0, no label: speech
        {"audio_filepath": "a.wav", "offset": 0.5, "duration": 1.0, "label": "speech"},  # overlaps the one above
        {"audio_filepath": "a.wav", "offset": 10.0, "duration": 1.0, "label": "background"},  # skipped
    ]
    result = manifest_segments(entries)
    assert [(s.start, s.end) for s in result["a.wav"]] == [(0.0, 1.5), (3.0, 4.0)]
    with pytest.raises(ConfigError, match="entry 1.*label"):
        manifest_segments([{"audio_filepath": "a.wav", "duration": 1.0, "label": "0 1 1 0"}])
    with pytest.raises(ConfigError, match="entry 1.*duration"):
        manifest_segments([{"audio_filepath": "a.wav", "offset": 1.0}])


# ---------------------------------------------------------------- writing safely


def test_refuses_to_overwrite_and_leaves_original(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("precious\n")
    with pytest.raises(OutputExistsError) as info:
        write_segments(path, SEGMENTS, "csv")
    assert "--overwrite" in str(info.value) and "\n" not in str(info.value)
    assert path.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_overwrite_true_replaces(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("precious\n")
    write_segments(path, SEGMENTS, "csv", overwrite=True)
    assert path.read_text() == EXPECTED["csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_new_file_has_exact_bytes(tmp_path):
    path = write_segments(tmp_path / "labels.txt", SEGMENTS, "audacity")
    assert path.read_bytes() == EXPECTED["audacity"].encode()


def test_missing_output_directory(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        write_segments(tmp_path / "nope" / "out.json", SEGMENTS, "json")
    assert not (tmp_path / "nope").exists()


def test_output_path_is_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="directory"):
        write_segments(tmp_path, SEGMENTS, "json", overwrite=True)


def _fail(*args, **kwargs):
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("where", ["fsync", "replace"])
@pytest.mark.parametrize("existing", [False, True])
def test_failure_during_write_leaves_no_temp_and_original_intact(tmp_path, monkeypatch, where, existing):
    path = tmp_path / "out.rttm"
    if existing:
        path.write_text("original\n")
    monkeypatch.setattr(formats.os, where, _fail)
    with pytest.raises(FdvadError, match="cannot write.*No space left"):
        write_segments(path, SEGMENTS, "rttm", AUDIO, overwrite=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == (["out.rttm"] if existing else [])
    if existing:
        assert path.read_text() == "original\n"


def test_interrupt_during_write_removes_temp_and_propagates(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(formats.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_segments(tmp_path / "out.json", SEGMENTS, "json")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_serialiser_failure_touches_nothing(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text("original\n")

    def broken(segments, audio_path):
        raise RuntimeError("serialiser bug")

    monkeypatch.setitem(formats._FORMATTERS, "json", broken)
    with pytest.raises(RuntimeError):
        write_segments(path, SEGMENTS, "json", overwrite=True)
    assert path.read_text() == "original\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_written_file_respects_umask(tmp_path):
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    old = os.umask(0o022)
    try:
        path = write_segments(tmp_path / "out.json", SEGMENTS, "json")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
