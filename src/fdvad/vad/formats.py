"""Write and read speech-segment lists in the formats other tools use: JSON, RTTM, CSV, Audacity labels, NeMo manifests.

Times are seconds. Writers round start and end to 3 decimals (Audacity labels: 6) and compute durations from
the rounded values, so start + duration == end in the text. `write_segments` writes atomically and never
overwrites a file unless asked to.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from fdvad.fileio import atomic_write_text
from fdvad.errors import ConfigError
from fdvad.vad.postprocess import merge_overlapping
from fdvad.vad.segment import Segment

PathLike = str | os.PathLike

FORMATS = ("json", "rttm", "csv", "audacity", "manifest")
EXTENSIONS = {"json": ".json", "rttm": ".rttm", "csv": ".csv", "audacity": ".txt", "manifest": ".jsonl"}


def _times(seg: Segment) -> tuple[float, float, float]:
    """(start, end, duration) in seconds, rounded to milliseconds; duration from the rounded ends."""
    start, end = round(seg.start, 3), round(seg.end, 3)
    return start, end, round(end - start, 3)


def _format_json(segments: Sequence[Segment], audio_path: PathLike | None) -> str:
    """A JSON list, one {"start", "end"[, "score"]} object per line."""
    if not segments:
        return "[]\n"
    return "[\n" + ",\n".join("  " + json.dumps(seg.to_dict()) for seg in segments) + "\n]\n"


def _format_rttm(segments: Sequence[Segment], audio_path: PathLike | None) -> str:
    """NeMo's RTTM lines; the file id is the audio file's name without extension, whitespace -> '_'."""
    file_id = rttm_file_id(_need_audio_path(audio_path, "rttm"))
    lines = []
    for seg in segments:
        start, _, duration = _times(seg)
        lines.append(f"SPEAKER {file_id} 1 {start:.3f} {duration:.3f} <NA> <NA> speech <NA> <NA>\n")
    return "".join(lines)


def _format_csv(segments: Sequence[Segment], audio_path: PathLike | None) -> str:
    """`start,end,duration` header, then one row per segment, seconds with 3 decimals."""
    rows = ["start,end,duration\n"]
    rows += [f"{start:.3f},{end:.3f},{duration:.3f}\n" for start, end, duration in map(_times, segments)]
    return "".join(rows)


def _format_audacity(segments: Sequence[Segment], audio_path: PathLike | None) -> str:
    """Audacity label track: `start<TAB>end<TAB>speech`, seconds with 6 decimals."""
    return "".join(f"{seg.start:.6f}\t{seg.end:.6f}\tspeech\n" for seg in segments)


def _format_manifest(segments: Sequence[Segment], audio_path: PathLike | None) -> str:
    """NeMo manifest, one JSON object per line: absolute audio_filepath, offset, duration, label 'speech'."""
    audio = os.path.abspath(_need_audio_path(audio_path, "manifest"))
    lines = []
    for seg in segments:
        start, _, duration = _times(seg)
        entry = {"audio_filepath": audio, "offset": start, "duration": duration, "label": "speech"}
        lines.append(json.dumps(entry, ensure_ascii=False) + "\n")
    return "".join(lines)


_FORMATTERS: dict[str, Callable[[Sequence[Segment], PathLike | None], str]] = {
    "json": _format_json,
    "rttm": _format_rttm,
    "csv": _format_csv,
    "audacity": _format_audacity,
    "manifest": _format_manifest,
}


def _need_audio_path(audio_path: PathLike | None, fmt: str) -> PathLike:
    if audio_path is None:
        raise ValueError(f"the {fmt} format names the audio file: pass audio_path")
    return audio_path


def _check_format(fmt: str) -> str:
    if fmt not in _FORMATTERS:
        raise ConfigError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return fmt


def rttm_file_id(audio_path: PathLike) -> str:
    """The RTTM file id of an audio file: its name without extension, whitespace replaced by '_'."""
    return re.sub(r"\s+", "_", Path(audio_path).stem) or "audio"


def guess_format(path: PathLike) -> str:
    """The format name for an output path's extension (case-insensitive); ConfigError if unknown."""
    by_extension = {ext: fmt for fmt, ext in EXTENSIONS.items()}
    suffix = Path(path).suffix.lower()
    if suffix not in by_extension:
        known = ", ".join(f"{ext} ({fmt})" for ext, fmt in by_extension.items())
        raise ConfigError(f"cannot tell the format of {path} from its extension; use one of {known} or pass --format")
    return by_extension[suffix]


def format_segments(segments: Sequence[Segment], fmt: str, audio_path: PathLike | None = None) -> str:
    """The text of `segments` in format `fmt` (one of FORMATS). rttm and manifest need audio_path."""
    return _FORMATTERS[_check_format(fmt)](segments, audio_path)


def write_segments(
    path: PathLike,
    segments: Sequence[Segment],
    fmt: str,
    audio_path: PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `segments` to `path` in format `fmt`, atomically; return the path.

    The text goes to a hidden temporary file in the same directory, which then replaces `path` in one
    os.replace, so readers see the old file or the new one, never half of one. The temporary file is removed
    on any failure. An existing `path` raises OutputExistsError unless overwrite=True.
    """
    text = format_segments(segments, fmt, audio_path)
    return atomic_write_text(path, text, overwrite=overwrite)


def _read_lines(path: PathLike) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or error
        raise ConfigError(f"cannot read {path}: {reason}") from error


def read_rttm(path: PathLike) -> dict[str, list[Segment]]:
    """Speech per file id from an RTTM file: {file_id: sorted, merged segments in seconds}.

    Only SPEAKER lines count (speaker labels are ignored, so overlapping speakers merge into one speech
    region); blank lines, comments ('#' or ';') and other record types are skipped.
    """
    speech: dict[str, list[Segment]] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
        except (IndexError, ValueError):
            raise ConfigError(f"{path}, line {number}: a SPEAKER line needs numeric start and duration") from None
        if not (start >= 0 and duration >= 0):
            raise ConfigError(f"{path}, line {number}: start and duration must be >= 0 seconds")
        speech.setdefault(fields[1], []).append(Segment(round(start, 9), round(start + duration, 9)))
    return {file_id: merge_overlapping(segments) for file_id, segments in speech.items()}


def read_manifest(path: PathLike) -> list[dict]:
    """The entries of a NeMo manifest (JSON lines), blank lines skipped; each must be an object with audio_filepath."""
    entries = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{path}, line {number}: not valid JSON ({error.msg}); fix or remove the line") from None
        if not isinstance(entry, dict) or "audio_filepath" not in entry:
            raise ConfigError(f"{path}, line {number}: a manifest entry needs an \"audio_filepath\" field")
        entries.append(entry)
    return entries


def manifest_segments(entries: Iterable[dict]) -> dict[str, list[Segment]]:
    """Speech per audio file from segment-manifest entries: {audio_filepath: sorted, merged segments}.

    Each entry is one segment from `offset` (default 0) lasting `duration` seconds. Entries labelled
    "background" (NeMo's non-speech label) are skipped; a label other than "speech"/"background" (e.g. a
    frame-label string or "infer") means this is not a segment manifest and raises ConfigError.
    """
    speech: dict[str, list[Segment]] = {}
    for number, entry in enumerate(entries, start=1):
        label = entry.get("label", "speech")
        if label == "background":
            continue
        if label != "speech":
            raise ConfigError(f"manifest entry {number}: label {label!r} is not 'speech' or 'background'")
        try:
            offset = float(entry.get("offset") or 0.0)
            duration = float(entry["duration"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"manifest entry {number}: needs a numeric \"duration\" in seconds") from None
        if not (offset >= 0 and duration >= 0):
            raise ConfigError(f"manifest entry {number}: offset and duration must be >= 0 seconds")
        segment = Segment(round(offset, 9), round(offset + duration, 9))
        speech.setdefault(entry["audio_filepath"], []).append(segment)
    return {audio: merge_overlapping(segments) for audio, segments in speech.items()}
