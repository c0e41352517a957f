"""Subtitle files: cues -> SRT, WebVTT, ASS (through pysubs2) or JSON, written atomically, never over an
existing file unless asked."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError
from ..fileio import atomic_write_text
from .layout import Cue

FORMATS = {"srt": ".srt", "vtt": ".vtt", "ass": ".ass", "json": ".json"}


def guess_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ConfigError(f"cannot tell the subtitle format of {path}: use {', '.join(FORMATS.values())} "
                          "or give --format")
    return suffix


def format_cues(cues: list[Cue], fmt: str) -> str:
    """The file's text. JSON keeps the words and their times; the others keep cue times and lines."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown subtitle format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "json":
        return json.dumps([{"start": round(c.start, 3), "end": round(c.end, 3), "lines": c.lines,
                            "words": [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
                                      for w in c.words]} for c in cues], ensure_ascii=False, indent=1) + "\n"
    try:
        import pysubs2
    except ImportError:
        raise ConfigError("writing SRT/VTT/ASS needs pysubs2: pip install 'fdvad[subtitle]'") from None
    subs = pysubs2.SSAFile()
    for c in cues:
        subs.append(pysubs2.SSAEvent(start=round(c.start * 1000), end=round(c.end * 1000),
                                     text=r"\N".join(line.replace("{", "(").replace("}", ")") for line in c.lines)))
    return subs.to_string(fmt)


def write_cues(cues: list[Cue], path: str | os.PathLike, fmt: str | None = None, overwrite: bool = False) -> Path:
    """Write the cues to `path` (format from `fmt` or the extension), atomically; an existing file is kept
    (OutputExistsError) unless `overwrite`."""
    fmt = fmt or guess_format(path)
    text = format_cues(cues, fmt)
    return atomic_write_text(path, text, overwrite=overwrite)
