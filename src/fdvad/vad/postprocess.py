"""Turn per-frame speech probabilities into speech segments: binarize -> pad -> merge -> filter -> split -> score.

`probs[k]` is the speech probability of the interval [k * hop_s, (k + 1) * hop_s) seconds. Every step is a
small pure function on a list of `Segment`s (seconds); `postprocess` chains them in NeMo's order. Option
names follow NeMo (`onset`, `offset`, `pad_onset`, ...) and `from_options` also accepts the faster-whisper /
Silero names (`threshold`, `neg_threshold`, `speech_pad_ms`, ...).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fdvad.errors import ConfigError
from fdvad.vad.segment import Segment

EPS_S = 1e-9
"""Tolerance (seconds) when comparing times: frame times are k * hop_s and carry float rounding error."""

# faster-whisper / Silero name -> our field (same unit)
_ALIASES = {"threshold": "onset", "neg_threshold": "offset"}
# faster-whisper / Silero name in milliseconds -> our fields in seconds
_MS_ALIASES = {
    "speech_pad_ms": ("pad_onset", "pad_offset"),
    "min_speech_duration_ms": ("min_duration_on",),
    "min_silence_duration_ms": ("min_duration_off",),
}


@dataclass
class PostprocessConfig:
    """Post-processing knobs. Probabilities are in [0, 1]; every duration is in seconds.

    onset: speech starts on a frame with probability > onset.
    offset: speech ends on a frame with probability < offset (between the two, the state holds).
    pad_onset / pad_offset: widen each segment by this much before / after (clipped to the audio).
    min_duration_on: drop speech segments shorter than this (0 = off).
    min_duration_off: fill silences shorter than this (0 = off).
    filter_speech_first: drop short speech before filling short gaps (True, NeMo's default) or after.
    max_speech_duration_s: split longer segments at their least speech-like frame (inf or 0 = off).
    """

    onset: float = 0.5
    offset: float = 0.35
    pad_onset: float = 0.03
    pad_offset: float = 0.03
    min_duration_on: float = 0.1
    min_duration_off: float = 0.25
    filter_speech_first: bool = True
    max_speech_duration_s: float = math.inf

    @classmethod
    def from_options(cls, **options: object) -> PostprocessConfig:
        """Build a validated config from our names or the faster-whisper / Silero aliases.

        Aliases: threshold -> onset, neg_threshold -> offset, speech_pad_ms -> pad_onset and pad_offset,
        min_speech_duration_ms -> min_duration_on, min_silence_duration_ms -> min_duration_off (ms -> s).
        A value of None means "not given". When offset is not given but onset is, offset follows Silero's
        rule max(onset - 0.15, 0.01) (capped at onset); the default 0.35 is that rule applied to 0.5.
        """
        values: dict[str, object] = {}
        for key, value in options.items():
            targets, scale = _resolve_option(key)
            if value is None:
                continue
            for name in targets:
                converted = _convert(name, key, value, scale)
                if name in values and values[name] != converted:
                    raise ConfigError(f"options {key} and {name} disagree; give only one of them")
                values[name] = converted
        if "onset" in values and "offset" not in values:
            onset = float(values["onset"])  # type: ignore[arg-type]
            values["offset"] = min(onset, max(onset - 0.15, 0.01))
        config = cls(**values)  # type: ignore[arg-type]
        config.validate()
        return config

    def validate(self) -> PostprocessConfig:
        """Raise ConfigError on a value that cannot work; return self so calls chain."""
        numbers = [f.name for f in dataclasses.fields(self) if f.name != "filter_speech_first"]
        for name in numbers:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise ConfigError(f"post-processing option {name} must be a number, got {value!r}")
        for name in ("onset", "offset"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.offset > self.onset:
            raise ConfigError(
                f"offset ({self.offset}) must not exceed onset ({self.onset}); "
                "lower offset/neg_threshold or raise onset/threshold"
            )
        for name in ("pad_onset", "pad_offset", "min_duration_on", "min_duration_off", "max_speech_duration_s"):
            value = getattr(self, name)
            if value < 0 or (math.isinf(value) and name != "max_speech_duration_s"):
                raise ConfigError(f"{name} must be a finite duration >= 0 seconds, got {value}")
        if not isinstance(self.filter_speech_first, bool):
            raise ConfigError(f"filter_speech_first must be true or false, got {self.filter_speech_first!r}")
        return self

    def to_dict(self) -> dict[str, object]:
        """Plain dict of the fields (our names, seconds)."""
        return dataclasses.asdict(self)

    def replace(self, **options: object) -> PostprocessConfig:
        """A validated copy with some options changed (our names or aliases); the other fields stay as they are,
        except that a new onset without an offset gets the offset from_options would give it."""
        current = self.to_dict()
        changed = {name for key in options for name in _resolve_option(key)[0]}
        if "onset" in changed and "offset" not in changed:
            changed.add("offset")  # a new onset brings its own offset, as in from_options
        for name in changed:
            current.pop(name, None)
        return PostprocessConfig.from_options(**current, **options)


def _resolve_option(key: str) -> tuple[tuple[str, ...], float]:
    """(field names, divisor to seconds) for an option name; ConfigError listing the valid names."""
    names = tuple(f.name for f in dataclasses.fields(PostprocessConfig))
    if key in names:
        return (key,), 1.0
    if key in _ALIASES:
        return (_ALIASES[key],), 1.0
    if key in _MS_ALIASES:
        return _MS_ALIASES[key], 1000.0
    valid = ", ".join(names + tuple(_ALIASES) + tuple(_MS_ALIASES))
    raise ConfigError(f"unknown post-processing option {key!r}; valid names: {valid}")


def _convert(name: str, key: str, value: object, divisor: float) -> object:
    """Coerce an option value (number, bool or CLI string) to the field's type."""
    if name == "filter_speech_first":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if isinstance(value, bool):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    try:
        return float(value) / divisor  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number, got {value!r}") from None


def _as_probs(probs: Sequence[float] | np.ndarray, hop_s: float) -> np.ndarray:
    """Check and convert the inputs every step shares: a 1-D float array without NaN, hop_s > 0 seconds."""
    array = np.asarray(probs, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"probs must be 1-D (one probability per frame), got shape {array.shape}")
    if np.isnan(array).any():
        raise ValueError("probs contain NaN")
    if not (hop_s > 0 and math.isfinite(hop_s)):
        raise ValueError(f"hop_s must be a positive number of seconds, got {hop_s}")
    return array


def binarize(probs: Sequence[float] | np.ndarray, hop_s: float, onset: float, offset: float) -> list[Segment]:
    """Hysteresis thresholding of frame probabilities into segments (seconds).

    Outside speech, a frame with p > onset (strict) starts speech at its start time k * hop_s. Inside speech,
    a frame with p < offset (strict) ends it at k * hop_s. Any other frame keeps the previous state. A segment
    still open after the last frame ends at len(probs) * hop_s.
    """
    array = _as_probs(probs, hop_s)
    segments: list[Segment] = []
    start: int | None = None
    for k, p in enumerate(array.tolist()):
        if start is None and p > onset:
            start = k
        elif start is not None and p < offset:
            segments.append(Segment(start * hop_s, k * hop_s))
            start = None
    if start is not None:
        segments.append(Segment(start * hop_s, len(array) * hop_s))
    return segments


def pad(segments: Sequence[Segment], pad_onset: float, pad_offset: float, duration_s: float) -> list[Segment]:
    """Widen each segment by pad_onset seconds before and pad_offset after, clipped to [0, duration_s].

    Segments may overlap afterwards (see `merge_overlapping`); one left with no length is dropped.
    """
    padded = []
    for seg in segments:
        start, end = max(0.0, seg.start - pad_onset), min(duration_s, seg.end + pad_offset)
        if end > start:
            padded.append(Segment(start, end, seg.score))
    return padded


def merge_overlapping(segments: Sequence[Segment]) -> list[Segment]:
    """Sort by start and merge segments that overlap or touch (within EPS_S seconds); merged ones lose score."""
    merged: list[Segment] = []
    for seg in sorted(segments, key=lambda s: (s.start, s.end)):
        if merged and seg.start <= merged[-1].end + EPS_S:
            merged[-1] = Segment(merged[-1].start, max(merged[-1].end, seg.end))
        else:
            merged.append(seg)
    return merged


def fill_short_gaps(segments: Sequence[Segment], min_duration_off: float) -> list[Segment]:
    """Merge neighbours whose silence gap is shorter than min_duration_off seconds (a gap of exactly that stays)."""
    filled: list[Segment] = []
    for seg in sorted(segments, key=lambda s: (s.start, s.end)):
        if filled and seg.start - filled[-1].end < min_duration_off - EPS_S:
            filled[-1] = Segment(filled[-1].start, max(filled[-1].end, seg.end))
        else:
            filled.append(seg)
    return filled


def drop_short(segments: Sequence[Segment], min_duration_on: float) -> list[Segment]:
    """Keep segments lasting at least min_duration_on seconds (as NeMo: keep if duration >= threshold)."""
    return [seg for seg in segments if seg.duration >= min_duration_on - EPS_S]


def split_long(
    segments: Sequence[Segment], probs: Sequence[float] | np.ndarray, hop_s: float, max_speech_duration_s: float
) -> list[Segment]:
    """Split every segment longer than max_speech_duration_s seconds into touching pieces, none longer than it.

    Rule, applied again to each piece until all are short enough (M = max_speech_duration_s, [s, e] a
    segment longer than M): the cut candidates are the frame boundaries t = k * hop_s with
    s + M/2 <= t <= e - M/2 and k < len(probs); the cut goes at the start of the candidate frame k with the
    lowest probs[k] (ties: the boundary nearest the segment's middle, then the earlier). With no candidate
    (a window narrower than a frame) the cut goes at the middle (s + e) / 2. So every piece is at least
    M/2 long and at most M. A value of 0 or inf turns the step off; 0 < M < hop_s raises ConfigError.
    """
    array = _as_probs(probs, hop_s)
    if not 0 < max_speech_duration_s < math.inf:
        return list(segments)
    if max_speech_duration_s < hop_s:
        raise ConfigError(
            f"max_speech_duration_s ({max_speech_duration_s}) is shorter than one frame ({hop_s} s); "
            "raise it or set it to 0 to turn splitting off"
        )
    pieces: list[Segment] = []
    for seg in segments:
        pending = [(seg.start, seg.end)]
        while pending:  # depth-first, left piece first: pieces come out in time order
            start, end = pending.pop()
            if end - start <= max_speech_duration_s + EPS_S:
                pieces.append(Segment(start, end, seg.score if (start, end) == (seg.start, seg.end) else None))
                continue
            cut = _cut_point(start, end, array, hop_s, max_speech_duration_s)
            pending += [(cut, end), (start, cut)]
    return pieces


def _cut_point(start: float, end: float, probs: np.ndarray, hop_s: float, max_s: float) -> float:
    """Where `split_long` cuts [start, end] seconds: see its docstring for the rule."""
    margin = max_s / 2
    first = max(0, math.ceil((start + margin) / hop_s - EPS_S))
    last = min(len(probs) - 1, math.floor((end - margin) / hop_s + EPS_S))
    if first > last:
        return (start + end) / 2
    window = probs[first : last + 1]
    candidates = first + np.flatnonzero(window == window.min())
    middle = (start + end) / 2
    best = float(candidates[np.argmin(np.abs(candidates * hop_s - middle))]) * hop_s  # earlier on ties
    return best if start < best < end else middle


def score_segments(segments: Sequence[Segment], probs: Sequence[float] | np.ndarray, hop_s: float) -> list[Segment]:
    """Set each segment's score to the mean probability of the frames it overlaps, rounded to 4 decimals.

    A segment overlapping no frame (e.g. padding past the last frame) gets score None.
    """
    array = _as_probs(probs, hop_s)
    scored = []
    for seg in segments:
        first = max(0, math.floor(seg.start / hop_s + EPS_S))
        stop = min(len(array), math.ceil(seg.end / hop_s - EPS_S))
        score = round(float(array[first:stop].mean()), 4) if stop > first else None
        scored.append(Segment(seg.start, seg.end, score))
    return scored


def postprocess(
    probs: Sequence[float] | np.ndarray,
    hop_s: float,
    config: PostprocessConfig | None = None,
    duration_s: float | None = None,
) -> list[Segment]:
    """Frame probabilities -> scored speech segments (seconds), in NeMo's order.

    binarize -> pad (and clip to [0, duration_s]) -> merge_overlapping -> drop_short then fill_short_gaps
    (or the reverse when filter_speech_first is False) -> split_long -> score_segments. A step whose
    parameter is 0 is skipped. duration_s (seconds) defaults to len(probs) * hop_s.
    """
    config = (config or PostprocessConfig()).validate()
    array = _as_probs(probs, hop_s)
    if duration_s is None:
        duration_s = len(array) * hop_s
    segments = binarize(array, hop_s, config.onset, config.offset)
    segments = merge_overlapping(pad(segments, config.pad_onset, config.pad_offset, duration_s))
    drop = (lambda s: drop_short(s, config.min_duration_on)) if config.min_duration_on > 0 else list
    fill = (lambda s: fill_short_gaps(s, config.min_duration_off)) if config.min_duration_off > 0 else list
    segments = fill(drop(segments)) if config.filter_speech_first else drop(fill(segments))
    segments = split_long(segments, array, hop_s, config.max_speech_duration_s)
    return score_segments(segments, array, hop_s)
