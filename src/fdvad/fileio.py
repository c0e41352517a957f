"""Writing files all at once: readers see the old file or the new one, never half of one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable

from .errors import ConfigError, OutputExistsError


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], overwrite: bool = True) -> Path:
    """Call `write(tmp)` to fill a hidden temporary file beside `path` (same suffix, so writers that pick a
    format from it still work), fsync it, then move it over `path` in one os.replace.

    The temporary file is removed on any failure, Ctrl-C included. An OSError becomes a one-line ConfigError
    naming `path`; with overwrite=False an existing `path` raises OutputExistsError before anything is written.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ConfigError(f"output directory {path.parent} does not exist; create it or choose another output path")
    if path.is_dir():
        raise ConfigError(f"output path {path} is a directory; give a file name")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it")
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}"
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise ConfigError(f"cannot write {path}: {error.strerror or error}") from error
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "x", encoding="utf-8", newline="") as f:
            f.write(text)

    return atomic_write(path, write, overwrite)
