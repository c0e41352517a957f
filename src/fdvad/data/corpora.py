"""Read labelled corpora users already have into one representation, `LabelledAudio`, and turn it into the
same frame labels (for evaluation) or the same 0.63 s training windows (for training), whatever the source.

Sources and their readers (`read_corpus` picks one from the path):
  NeMo manifest (JSON lines)   read_nemo_manifest    segment labels ("speech"/"background"/"1"/"0" per entry),
                                                     frame labels (a string of per-frame 0/1, 20 ms frames) or
                                                     an "rttm_filepath" per entry
  folder of audio + RTTM       read_rttm_folder      X.wav with X.rttm beside it or in rttm/X.rttm
  AVA-Speech label CSV         read_ava_csv          video_id,start,end,label rows; audio found by video_id
  LibriParty metadata JSON     read_libriparty_json  sessions -> speakers' utterances start/stop

Times are seconds. An item covers audio_filepath from `offset` for `duration` seconds (None: to the end of
the file); its speech segments are relative to `offset`. Everything inside the item that is not speech is
non-speech. Relative audio paths are resolved against the folder of the file that names them, as NeMo does.

Frame rule (`frame_labels`): frame k covers [k * frame_s, (k + 1) * frame_s) and is speech when speech covers
strictly more than half of it; the last, partial frame counts only the audio that exists.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
import os
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..audio import TARGET_SAMPLE_RATE, audio_info, load_audio
from ..errors import ConfigError
from ..vad.formats import _read_lines, manifest_segments, read_manifest, read_rttm, rttm_file_id
from ..vad.infer import WindowSpec, num_windows
from ..vad.postprocess import merge_overlapping
from ..vad.segment import Segment

PathLike = str | os.PathLike

NEMO_FRAME_S = 0.02  # NeMo's frame-VAD MarbleNet: one label per 20 ms frame
LABEL_RULES = ("centre", "majority")
AVA_LABELS = {"NO_SPEECH": False, "CLEAN_SPEECH": True, "SPEECH_WITH_MUSIC": True, "SPEECH_WITH_NOISE": True}
# Files with these extensions are never taken for the audio of an item.
NOT_AUDIO = {".rttm", ".json", ".jsonl", ".csv", ".tsv", ".txt", ".lab", ".uem", ".md", ".yaml", ".yml",
             ".frame", ".py", ".png", ".jpg", ".pdf"}
_MANIFEST_CORE = {"audio_filepath", "offset", "duration", "label", "text", "rttm_filepath"}
_SEGMENT_LABELS = {"speech": True, "1": True, "background": False, "0": False}


@dataclass
class LabelledAudio:
    """One labelled stretch of audio: `audio_filepath` (absolute) from `offset` s for `duration` s (None = to
    the end of the file); `speech` segments in seconds relative to `offset`; `meta` holds what the source says
    about the item (language, noise, snr_db, codec, ...)."""

    audio_filepath: str
    offset: float = 0.0
    duration: float | None = None
    speech: list[Segment] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- labels


def item_duration(item: LabelledAudio) -> float:
    """Seconds of audio the item covers: its `duration`, else the file's length after `offset`."""
    if item.duration is not None:
        return float(item.duration)
    total = audio_info(item.audio_filepath).duration_s
    if total is None:  # the container does not say: decode it
        total = len(load_audio(item.audio_filepath)) / TARGET_SAMPLE_RATE
    return max(0.0, total - item.offset)


def _speech_before(item_speech: list[Segment], duration: float):
    """A function x -> seconds of speech in [0, x), x an array, for speech clipped to [0, duration]."""
    segs = [Segment(max(0.0, s.start), min(duration, s.end)) for s in merge_overlapping(item_speech)]
    segs = [s for s in segs if s.end > s.start]
    starts = np.array([s.start for s in segs], dtype=np.float64)
    lengths = np.array([s.end - s.start for s in segs], dtype=np.float64)
    full = np.concatenate([[0.0], np.cumsum(lengths)])  # speech in the first i segments

    def before(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        i = np.searchsorted(starts, x, side="right")  # segments starting at or before x
        last = np.maximum(i - 1, 0)
        partial = np.clip(x - starts[last], 0.0, lengths[last]) if len(segs) else np.zeros_like(x)
        return np.where(i > 0, full[last] + partial, 0.0)

    return before


def frame_labels(item: LabelledAudio, frame_s: float = 0.01, duration_s: float | None = None) -> np.ndarray:
    """Speech (True) per frame of `item`: frame k = [k * frame_s, (k + 1) * frame_s) relative to the item's
    offset is speech when speech covers strictly more than half of it (exactly half is non-speech).

    There are ceil(duration / frame_s) frames; `duration_s` overrides the item's duration (default: its
    `duration`, else the audio file's length after `offset`).
    """
    if not frame_s > 0:
        raise ConfigError(f"frame_s must be > 0 seconds, got {frame_s}")
    duration = item_duration(item) if duration_s is None else float(duration_s)
    n = max(0, math.ceil(duration / frame_s - 1e-9))
    edges = np.arange(n + 1, dtype=np.float64) * frame_s
    covered = np.diff(_speech_before(item.speech, duration)(edges))
    return covered > frame_s * (0.5 + 1e-6)


def frames_to_segments(labels: np.ndarray, frame_s: float, duration_s: float | None = None) -> list[Segment]:
    """Runs of True frames as segments [first * frame_s, (last + 1) * frame_s), ends capped at `duration_s`."""
    padded = np.concatenate([[False], np.asarray(labels, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    cap = math.inf if duration_s is None else duration_s
    segments = [Segment(round(a * frame_s, 9), round(min(b * frame_s, cap), 9))
                for a, b in zip(edges[::2], edges[1::2])]
    return [s for s in segments if s.end > s.start]


# --------------------------------------------------------------------------- helpers


def _resolve(audio: str, base_dir: Path) -> str:
    """An absolute path for `audio`; relative paths are taken from `base_dir`."""
    path = Path(os.path.expanduser(audio))
    return os.path.abspath(path if path.is_absolute() else base_dir / path)


def _audio_candidates(folder: Path, stem: str) -> list[Path]:
    """Files in `folder` named `stem` plus any extension that is not a label/text format."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.stem == stem and p.suffix and p.suffix.lower() not in NOT_AUDIO)


def _one_audio(candidates: list[Path], what: str) -> Path | None:
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise ConfigError(f"{what}: several audio files fit ({names}); keep one of them in the folder")
    return candidates[0] if candidates else None


def _missing(what: str, looked: str) -> ConfigError:
    return ConfigError(f"{what}: no audio file found ({looked}); add it, or pass skip_missing=True "
                       "(--skip-missing) to read only the items that have audio")


def _number(value, name: str, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: \"{name}\" must be a number of seconds, got {value!r}") from None
    if not (number >= 0 and math.isfinite(number)):
        raise ConfigError(f"{where}: \"{name}\" must be >= 0 seconds, got {value!r}")
    return number


def _read_json(path: PathLike):
    text = "\n".join(_read_lines(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}, line {error.lineno}: not valid JSON ({error.msg}); fix the file") from None


# --------------------------------------------------------------------------- NeMo manifests


def _frame_tokens(label) -> list[str] | None:
    """The per-frame 0/1 labels of a frame-manifest label, or None if `label` is not one."""
    if isinstance(label, str):
        tokens = label.split()
    elif isinstance(label, (list, tuple)):
        tokens = [str(int(v)) if isinstance(v, (bool, int, float)) else str(v) for v in label]
    else:
        return None
    if len(tokens) < 2 or any(t not in ("0", "1") for t in tokens):
        return None
    return tokens


def read_nemo_manifest(path: PathLike, frame_s: float = NEMO_FRAME_S, group: bool = True,
                       skip_missing: bool = False) -> list[LabelledAudio]:
    """Labelled items from a NeMo manifest (JSON lines with audio_filepath, offset, duration, label).

    Each entry is one of:
      - a segment entry: label "speech"/"1" or "background"/"0" for [offset, offset + duration];
      - a frame entry: label "0 0 1 1 ..." (or a list), one label per `frame_s` seconds from offset (NeMo's
        frame-VAD uses 20 ms); its duration (default: frames x frame_s) must agree with the frame count
        within 2 frames, else pass the frame length the labels were made with;
      - an entry with "rttm_filepath": the RTTM's speech inside [offset, offset + duration] (preferred over
        its "label" when it has both: `fdvad data synth` writes exact 10 ms RTTMs beside 20 ms labels).
    Frame and RTTM entries become one item each (their labels describe exactly that clip).
    Segment entries: with group=True (default) all entries of one audio file become one item covering the
    whole file, speech = the union of its "speech" entries, everything else non-speech (what `fdvad vad -f
    manifest` writes, and what a manifest of speech and background segments means). With group=False every
    segment entry is its own item, wholly speech or not (NeMo's 0.63 s segment-VAD training clips, where
    the rest of the file is unlabelled).
    Other fields (language, noise, snr_db, codec, ...) go to meta; grouped items keep the fields whose
    value is the same in all the file's entries.
    """
    if not frame_s > 0:
        raise ConfigError(f"frame_s must be > 0 seconds, got {frame_s}")
    path = Path(path)
    base = path.parent
    entries = read_manifest(path)
    # read_manifest skips blank lines only, so entry i is on the i-th non-blank line
    line_of = [n for n, line in enumerate(_read_lines(path), start=1) if line.strip()]
    items: list[LabelledAudio] = []
    grouped: dict[str, list[dict]] = {}  # audio -> its segment entries, labels normalised
    metas: dict[str, list[dict]] = {}
    position: dict[str, int] = {}  # audio -> where its item goes (its first entry's place)
    missing: dict[str, bool] = {}
    for entry, number in zip(entries, line_of):
        where = f"{path}, line {number}"
        if not isinstance(entry["audio_filepath"], str) or not entry["audio_filepath"]:
            raise ConfigError(f"{where}: \"audio_filepath\" must be a non-empty string")
        audio = _resolve(entry["audio_filepath"], base)
        if audio not in missing:
            missing[audio] = not os.path.isfile(audio)
        if missing[audio]:
            if skip_missing:
                continue
            raise _missing(where, f"{audio} does not exist; relative paths are read from the manifest's folder")
        offset = _number(entry.get("offset") or 0.0, "offset", where)
        duration = entry.get("duration")
        duration = None if duration is None else _number(duration, "duration", where)
        meta = {k: v for k, v in entry.items() if k not in _MANIFEST_CORE}
        label = entry.get("label")

        if "rttm_filepath" in entry:  # the RTTM is the finer of the two when an entry has both
            items.append(_rttm_entry(entry, audio, offset, duration, meta, base, where))
            continue
        if label is None or label == "infer":
            raise ConfigError(f"{where}: no speech label; give \"label\" ('speech'/'background'/'1'/'0' or "
                              "per-frame '0 1 ...') or \"rttm_filepath\"")
        key = str(int(label)) if isinstance(label, (bool, int)) else str(label).strip().lower()
        if key in _SEGMENT_LABELS:
            if duration is None:
                raise ConfigError(f"{where}: a segment entry needs \"duration\" in seconds")
            if group:
                if audio not in grouped:
                    position[audio] = len(items)
                    items.append(LabelledAudio(audio))  # a placeholder, filled in below
                grouped.setdefault(audio, []).append(
                    {"audio_filepath": audio, "offset": offset, "duration": duration,
                     "label": "speech" if _SEGMENT_LABELS[key] else "background"})
                metas.setdefault(audio, []).append(meta)
            else:
                speech = [Segment(0.0, duration)] if _SEGMENT_LABELS[key] and duration > 0 else []
                items.append(LabelledAudio(audio, offset, duration, speech, meta))
            continue
        tokens = _frame_tokens(label)
        if tokens is None:
            raise ConfigError(f"{where}: label {label!r} is neither 'speech'/'background'/'1'/'0' nor a string "
                              "of per-frame 0/1 labels")
        labelled_s = len(tokens) * frame_s
        if duration is None:
            duration = labelled_s
        elif abs(labelled_s - duration) > 2 * frame_s + 1e-6:
            raise ConfigError(f"{where}: {len(tokens)} frame labels x {frame_s:g} s = {labelled_s:g} s but "
                              f"\"duration\" is {duration:g} s; pass the frame length the labels were made with "
                              f"(frame_s={duration / len(tokens):.4g} fits)")
        flags = np.array([t == "1" for t in tokens])
        items.append(LabelledAudio(audio, offset, duration, frames_to_segments(flags, frame_s, duration), meta))

    for audio, speech in manifest_segments(e for entries in grouped.values() for e in entries).items():
        items[position[audio]].speech = speech
    for audio, file_metas in metas.items():
        first, rest = file_metas[0], file_metas[1:]
        items[position[audio]].meta = {k: v for k, v in first.items() if all(k in m and m[k] == v for m in rest)}
    return items


def _rttm_entry(entry: dict, audio: str, offset: float, duration: float | None, meta: dict, base: Path,
                where: str) -> LabelledAudio:
    rttm = _resolve(str(entry["rttm_filepath"]), base)
    if not os.path.isfile(rttm):
        raise ConfigError(f"{where}: RTTM file {rttm} does not exist; fix \"rttm_filepath\"")
    per_file = read_rttm(rttm)
    speech = _speech_for(per_file, audio, f"{where} ({rttm})")
    end = math.inf if duration is None else offset + duration
    clipped = [Segment(round(max(s.start, offset) - offset, 9), round(min(s.end, end) - offset, 9)) for s in speech]
    return LabelledAudio(audio, offset, duration, [s for s in clipped if s.end > s.start], meta)


def _speech_for(per_file: dict[str, list[Segment]], audio: PathLike, where: str) -> list[Segment]:
    """The speech an RTTM gives an audio file: all of it when it names one file id (or none), else that
    file's id (its name without extension)."""
    if len(per_file) <= 1:
        return next(iter(per_file.values()), [])
    file_id = rttm_file_id(audio)
    if file_id not in per_file:
        ids = ", ".join(sorted(per_file)[:5])
        raise ConfigError(f"{where}: the RTTM holds several file ids ({ids}) and none is {file_id!r}; "
                          "use one RTTM per audio file or name the file ids after the audio files")
    return per_file[file_id]


# --------------------------------------------------------------------------- RTTM folders


def read_rttm_folder(directory: PathLike, skip_missing: bool = False) -> list[LabelledAudio]:
    """One whole-file item per audio file in `directory` that has an RTTM of the same name beside it
    (X.wav + X.rttm) or in an rttm/ subfolder (rttm/X.rttm); the audio may have any extension.

    An RTTM naming one file id (or none: no speech) labels its audio file whatever the id says; an RTTM
    naming several uses the lines of the audio file's own id. Audio files without an RTTM are not read.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a folder; pass the folder holding the audio and RTTM files")
    rttms: dict[str, Path] = {}
    for folder in (directory, directory / "rttm"):
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            if p.is_file() and p.suffix.lower() == ".rttm":
                if p.stem in rttms:
                    raise ConfigError(f"two RTTM files for {p.stem!r}: {rttms[p.stem]} and {p}; keep one")
                rttms[p.stem] = p
    if not rttms:
        raise ConfigError(f"no .rttm files in {directory} or {directory / 'rttm'}; put one RTTM per audio file "
                          "there, named like the audio file (X.wav -> X.rttm)")
    items = []
    for stem, rttm in sorted(rttms.items()):
        audio = _one_audio(_audio_candidates(directory, stem), str(rttm))
        if audio is None:
            if skip_missing:
                continue
            raise _missing(str(rttm), f"looked for {directory / stem}.*")
        speech = _speech_for(read_rttm(rttm), audio, str(rttm))
        items.append(LabelledAudio(os.path.abspath(audio), 0.0, None, speech, {}))
    return items


# --------------------------------------------------------------------------- AVA-Speech


def read_ava_csv(csv_path: PathLike, audio_dir: PathLike | None = None, time_offset_s: float = 0.0,
                 skip_missing: bool = False) -> list[LabelledAudio]:
    """Items from AVA-Speech style labels: rows `video_id,start,end,label` (no header needed; one is skipped),
    label one of NO_SPEECH, CLEAN_SPEECH, SPEECH_WITH_MUSIC, SPEECH_WITH_NOISE (the last three are speech).

    One item per video_id, its audio the file named `<video_id>.<any extension>` in `audio_dir` (default: the
    CSV's folder). The item covers the labelled span, first start to last end (AVA labels minutes 15-30 of
    each film); unlabelled gaps inside it are non-speech. Times are seconds in the audio file minus
    `time_offset_s` (e.g. 900 when the audio was cut from 15:00 of the film). meta["speech_kinds"] lists
    [start, end, kind] of every speech row, relative to the item's offset.
    """
    csv_path = Path(csv_path)
    audio_dir = csv_path.parent if audio_dir is None else Path(audio_dir)
    if not audio_dir.is_dir():
        raise ConfigError(f"audio folder {audio_dir} does not exist; pass the folder holding the videos' audio")
    rows: dict[str, list[tuple[float, float, str]]] = {}
    first_row = True
    for number, line in enumerate(_read_lines(csv_path), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([line]))]
        where = f"{csv_path}, line {number}"
        if first_row and len(fields) >= 2 and not _is_number(fields[1]):
            first_row = False  # a header
            continue
        first_row = False
        if len(fields) < 4 or not fields[0]:
            raise ConfigError(f"{where}: expected video_id,start,end,label")
        start = _number(fields[1], "start", where) - time_offset_s
        end = _number(fields[2], "end", where) - time_offset_s
        if start < 0:
            raise ConfigError(f"{where}: start {fields[1]} is before the audio starts; check time_offset_s")
        if end < start:
            raise ConfigError(f"{where}: end {fields[2]} is before start {fields[1]}")
        kind = fields[3].upper()
        if kind not in AVA_LABELS:
            raise ConfigError(f"{where}: unknown label {fields[3]!r}; use one of {', '.join(AVA_LABELS)}")
        rows.setdefault(fields[0], []).append((start, end, kind))
    if not rows:
        raise ConfigError(f"{csv_path}: no label rows; expected video_id,start,end,label lines")

    items = []
    for video_id, video_rows in rows.items():
        audio = _one_audio(_audio_candidates(audio_dir, video_id), f"{csv_path}, video {video_id}")
        if audio is None:
            if skip_missing:
                continue
            raise _missing(f"{csv_path}, video {video_id}", f"looked for {audio_dir / video_id}.*")
        offset = min(r[0] for r in video_rows)
        duration = max(r[1] for r in video_rows) - offset
        kinds = sorted([round(s - offset, 9), round(e - offset, 9), k] for s, e, k in video_rows if AVA_LABELS[k])
        speech = merge_overlapping([Segment(s, e) for s, e, _ in kinds if e > s])
        items.append(LabelledAudio(os.path.abspath(audio), round(offset, 9), round(duration, 9), speech,
                                   {"speech_kinds": kinds}))
    return items


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- LibriParty


def read_libriparty_json(json_path: PathLike, audio_dir: PathLike | None = None,
                         skip_missing: bool = False) -> list[LabelledAudio]:
    """Items from LibriParty metadata: {"session_0": {"<speaker>": [{"start", "stop", ...}, ...],
    "noises": [...], "background": {"start", "stop", ...}}, ...}, or one session's own JSON (speakers only,
    the session named after the file).

    Speech = the union of all speakers' utterances; impulsive noises and the background are non-speech.
    The item lasts background.stop seconds when given. Audio, in `audio_dir` (default: the JSON's folder):
    `<session>/<session>_mixture.*`, `<session>_mixture.*` or `<session>.*`.
    """
    json_path = Path(json_path)
    audio_dir = json_path.parent if audio_dir is None else Path(audio_dir)
    data = _read_json(json_path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{json_path}: expected a JSON object of LibriParty sessions")
    if all(isinstance(v, list) for k, v in data.items() if k != "background"):
        sessions = {json_path.stem: data}  # one session's file
    else:
        sessions = data
    items = []
    for name, session in sessions.items():
        where = f"{json_path}, session {name!r}"
        if not isinstance(session, dict):
            raise ConfigError(f"{where}: expected an object of speakers, \"noises\" and \"background\"")
        speech = []
        speakers = [k for k in session if k not in ("noises", "background")]
        for speaker in speakers:
            utterances = session[speaker]
            if not isinstance(utterances, list):
                raise ConfigError(f"{where}, speaker {speaker!r}: expected a list of utterances")
            for i, utt in enumerate(utterances):
                at = f"{where}, speaker {speaker!r}, utterance {i}"
                if not isinstance(utt, dict):
                    raise ConfigError(f"{at}: expected an object with \"start\" and \"stop\"")
                start, stop = _number(utt.get("start"), "start", at), _number(utt.get("stop"), "stop", at)
                if stop < start:
                    raise ConfigError(f"{at}: stop {stop} is before start {start}")
                speech.append(Segment(start, stop))
        background = session.get("background")
        duration = None
        if isinstance(background, dict) and background.get("stop") is not None:
            duration = _number(background["stop"], "stop", f"{where}, background")
        audio = _one_audio(_audio_candidates(audio_dir / name, f"{name}_mixture")
                           or _audio_candidates(audio_dir, f"{name}_mixture")
                           or _audio_candidates(audio_dir, name), where)
        if audio is None:
            if skip_missing:
                continue
            raise _missing(where, f"looked for {audio_dir / name / name}_mixture.*, {audio_dir / name}_mixture.* "
                                  f"and {audio_dir / name}.*")
        meta = {"speakers": len(speakers), "noise_events": len(session.get("noises") or [])}
        if isinstance(background, dict) and background.get("file"):
            meta["background"] = background["file"]
        items.append(LabelledAudio(os.path.abspath(audio), 0.0, duration, merge_overlapping(speech), meta))
    return items


# --------------------------------------------------------------------------- dispatcher


def read_corpus(path: PathLike, audio_dir: PathLike | None = None, skip_missing: bool = False) -> list[LabelledAudio]:
    """Read any supported corpus: a folder (audio + RTTM), a .csv (AVA-Speech labels), a .json/.jsonl/
    .manifest file (a NeMo manifest, or LibriParty metadata when the file is one JSON object of sessions).
    `audio_dir` is where AVA and LibriParty audio lives (default: beside the label file)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist; pass a NeMo manifest, an AVA-Speech CSV, a LibriParty JSON "
                          "or a folder of audio + RTTM files")
    if path.is_dir():
        return read_rttm_folder(path, skip_missing=skip_missing)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_ava_csv(path, audio_dir, skip_missing=skip_missing)
    if suffix in (".json", ".jsonl", ".manifest", ".ndjson"):
        if _is_libriparty(path):
            return read_libriparty_json(path, audio_dir, skip_missing=skip_missing)
        return read_nemo_manifest(path, skip_missing=skip_missing)
    if suffix == ".rttm":
        raise ConfigError(f"{path}: pass the folder holding the audio files and their RTTM files, not one RTTM")
    raise ConfigError(f"cannot tell what corpus {path} is from its extension; pass a NeMo manifest (.json, "
                      ".jsonl), an AVA-Speech CSV (.csv), a LibriParty JSON (.json) or a folder of audio + RTTM")


def _is_libriparty(path: Path) -> bool:
    """One JSON object (possibly over many lines) without audio_filepath: LibriParty; else a manifest.
    A broken file whose first line is not a JSON object by itself is taken for (broken) LibriParty JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False  # the manifest reader reports it
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        first = next((line for line in text.splitlines() if line.strip()), "")
        try:
            json.loads(first)
            return False  # JSON lines
        except json.JSONDecodeError:
            return first.strip().startswith("{")
    return isinstance(data, dict) and "audio_filepath" not in data


# --------------------------------------------------------------------------- training windows


class WindowDataset(torch.utils.data.Dataset):
    """(waveform window, label) for every window of every item: the training data of a window classifier.

    Window k of an item describes [k * shift_s, (k + 1) * shift_s) of it, as fdvad's WindowScorer does
    (vad/infer.py): its window_s window (int(window_s * sample_rate) samples rounded down to 10 ms frames:
    10080 at 0.63 s, 16 kHz) is centred on the middle of that interval, so it starts at
    k * shift - lead (lead = 4320 samples at 0.63/0.08 s), and an item of N samples has ceil(N / shift) windows.
    Audio outside the item (before its offset, after its end) is zeros, as at inference.

    label_rule "centre": speech when the middle of [k * shift_s, (k + 1) * shift_s) lies in speech (for the
    last, partial interval: the middle of its part inside the item);
    "majority": speech when speech covers strictly more than half of the window (zeros count as non-speech).

    Items yield (float32 tensor of shape (window_samples,), float32 0-d tensor 1.0/0.0). Each audio file is
    decoded when first needed and the last `cache_files` decoded files are kept; iterate in item order or use
    `grouped_order` (random shuffle drawn within a few files at a time) so each file is decoded once an epoch.
    """

    def __init__(self, items: list[LabelledAudio], window_s: float = 0.63, shift_s: float = 0.08,
                 label_rule: str = "centre", sample_rate: int = 16000, cache_files: int = 4):
        if label_rule not in LABEL_RULES:
            raise ConfigError(f"label_rule must be one of {', '.join(LABEL_RULES)}, not {label_rule!r}")
        if cache_files < 1:
            raise ConfigError(f"cache_files must be at least 1, got {cache_files}")
        self.spec = WindowSpec(window_s=window_s, shift_s=shift_s, sample_rate=sample_rate,
                               hop_length=sample_rate // 100)
        self.spec.validate()
        self.items = list(items)
        self.label_rule = label_rule
        self.sample_rate = sample_rate
        self.cache_files = cache_files
        self.window_samples = self.spec.window_frames * self.spec.hop_length
        self.lead_samples = self.spec.lead_frames * self.spec.hop_length
        self.item_samples = [round(item_duration(item) * sample_rate) for item in self.items]
        counts = [num_windows(n, self.spec) for n in self.item_samples]
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # first window of each item
        self.labels = np.concatenate([self._item_labels(i, c) for i, c in enumerate(counts)] or
                                     [np.zeros(0, np.float32)]).astype(np.float32)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        i = bisect.bisect_right(self.starts, index) - 1
        k = index - int(self.starts[i])
        clip = self._item_audio(i)
        first = k * self.spec.shift_samples - self.lead_samples
        window = np.zeros(self.window_samples, np.float32)
        lo, hi = max(0, first), min(len(clip), first + self.window_samples)
        if hi > lo:
            window[lo - first: hi - first] = clip[lo:hi]
        return torch.from_numpy(window), torch.tensor(self.labels[index])

    def item_of(self, index: int) -> tuple[int, int]:
        """(item number, window number within the item) of dataset index `index`."""
        i = bisect.bisect_right(self.starts, index) - 1
        return i, index - int(self.starts[i])

    def grouped_order(self, seed: int = 0, files_at_once: int | None = None) -> list[int]:
        """A shuffled order of all windows that visits `files_at_once` (default: cache_files) items at a time,
        their windows mixed together; pass it as a DataLoader's sampler."""
        rng = random.Random(seed)
        group = files_at_once or self.cache_files
        order = list(range(len(self.items)))
        rng.shuffle(order)
        result: list[int] = []
        for g in range(0, len(order), group):
            block = [w for i in order[g: g + group] for w in range(int(self.starts[i]), int(self.starts[i + 1]))]
            rng.shuffle(block)
            result += block
        return result

    def window_entries(self) -> list[dict]:
        """NeMo segment-VAD entries (audio_filepath, offset, duration = window_s, label "speech"/"background")
        for every window that lies wholly inside its item, in dataset order. Windows that reach past an item's
        start or end (zeros there at inference) are left out: a segment entry cannot describe padding."""
        out = []
        width = round(self.window_samples / self.sample_rate, 6)
        for i, item in enumerate(self.items):
            for k in range(int(self.starts[i + 1] - self.starts[i])):
                first = k * self.spec.shift_samples - self.lead_samples
                if first < 0 or first + self.window_samples > self.item_samples[i]:
                    continue
                speech = bool(self.labels[int(self.starts[i]) + k])
                out.append({"audio_filepath": item.audio_filepath,
                            "offset": round(item.offset + first / self.sample_rate, 6), "duration": width,
                            "label": "speech" if speech else "background"})
        return out

    # -- internals -----------------------------------------------------------------------------------
    def _item_labels(self, i: int, count: int) -> np.ndarray:
        duration = self.item_samples[i] / self.sample_rate
        before = _speech_before(self.items[i].speech, duration)
        shift_s = self.spec.shift_samples / self.sample_rate
        k = np.arange(count, dtype=np.float64)
        if self.label_rule == "centre":
            centre = (k * shift_s + np.minimum((k + 1) * shift_s, duration)) / 2  # of the part that exists
            # speech at a point t: speech in [0, t + eps) exceeds speech in [0, t)
            eps = 1e-7
            return (before(centre + eps) - before(centre)) > eps / 2
        start = (k * self.spec.shift_samples - self.lead_samples) / self.sample_rate
        width = self.window_samples / self.sample_rate
        return (before(start + width) - before(start)) > width * (0.5 + 1e-6)

    def _item_audio(self, i: int) -> np.ndarray:
        item = self.items[i]
        path = item.audio_filepath
        if path in self._cache:
            self._cache.move_to_end(path)
            audio = self._cache[path]
        else:
            audio = load_audio(path, self.sample_rate)
            self._cache[path] = audio
            while len(self._cache) > self.cache_files:
                self._cache.popitem(last=False)
        first = round(item.offset * self.sample_rate)
        clip = audio[first: first + self.item_samples[i]]
        if len(clip) < self.item_samples[i]:  # the file is shorter than its label says
            clip = np.concatenate([clip, np.zeros(self.item_samples[i] - len(clip), np.float32)])
        return clip


def write_window_manifest(items: list[LabelledAudio], path: PathLike, label_rule: str = "centre",
                          window_s: float = 0.63, shift_s: float = 0.08, overwrite: bool = False) -> int:
    """Write the 0.63 s window labels of `items` as a NeMo segment-VAD manifest (one JSON line per window,
    `WindowDataset.window_entries`); audio paths relative to the manifest's folder where they lie under it.
    Returns the number of windows written."""
    from ..fileio import atomic_write_text

    path = Path(path)
    entries = WindowDataset(items, window_s=window_s, shift_s=shift_s, label_rule=label_rule).window_entries()
    base = path.parent.resolve()
    lines = []
    for e in entries:
        audio = Path(e["audio_filepath"]).resolve()
        if audio.is_relative_to(base):
            e["audio_filepath"] = audio.relative_to(base).as_posix()
        lines.append(json.dumps(e, ensure_ascii=False) + "\n")
    atomic_write_text(path, "".join(lines), overwrite=overwrite)
    return len(entries)
