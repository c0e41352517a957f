"""Pseudo-labels: another VAD's segments as the labels of your own unlabelled recordings.

    fdvad data pseudo-label recordings/ --out dev/ --labeller silero

A few minutes of real audio labelled this way make a development set for what synthetic labels cannot
decide: which training round to keep (`train.select` with `data.extra_validation`) and which post-processing
settings suit real speech (`fdvad tune`). They are another model's opinion, not human labels, so they choose
and tune; they never score a model you then report.

The output folder is what `read_corpus` reads as an RTTM corpus: OUT/NAME.wav (16 kHz mono, 16-bit) and
OUT/rttm/NAME.rttm per input file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError, OutputExistsError
from ..fileio import atomic_write, atomic_write_text
from ..train.augment import AUDIO_SUFFIXES
from ..vad.segment import Segment

SAMPLE_RATE = 16000


def audio_inputs(paths: list[str]) -> list[Path]:
    """The audio files named, and the audio files in named folders (recursively), in order."""
    files: list[Path] = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise ConfigError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {path}")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"{path} does not exist")
    return files


def labeller_segments(labeller: str) -> Callable[[np.ndarray], list[Segment]]:
    """audio (16 kHz float) -> speech segments: "silero" (the packaged Silero VAD with its own defaults),
    "default" or a path to an fdvad model / .nemo file (its own post-processing)."""
    if labeller == "silero":
        from ..eval.systems import silero_system

        return silero_system().segments
    from ..vad.detector import load_vad

    vad = load_vad(labeller)
    return lambda audio: vad(audio, SAMPLE_RATE)


def pseudo_label(inputs: list[str], out: str | Path, labeller: str = "silero", overwrite: bool = False,
                 progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Label every input file with `labeller` and write OUT/NAME.wav + OUT/rttm/NAME.rttm (each file written
    atomically). Nothing existing is replaced without `overwrite`; all inputs are decoded and labelled before
    any file is written (they are held in memory: meant for minutes of audio, not a corpus).
    Returns {"files": n, "seconds": audio seconds, "speech_seconds": ..., "out": OUT}."""
    import soundfile as sf

    from ..audio import load_audio
    from ..vad.formats import format_segments

    files = audio_inputs(inputs)
    out = Path(out)
    stems: dict[str, Path] = {}
    for f in files:
        if f.stem in stems:
            raise ConfigError(f"two inputs are named {f.stem!r} ({stems[f.stem]} and {f}); the output folder "
                              "keeps one file per name: rename one")
        stems[f.stem] = f
    if not overwrite:
        for stem in stems:
            for target in (out / f"{stem}.wav", out / "rttm" / f"{stem}.rttm"):
                if target.exists():
                    raise OutputExistsError(f"{target} already exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder")
    if not out.parent.is_dir():
        raise ConfigError(f"the folder of --out ({out.parent}) does not exist")
    segments_of = labeller_segments(labeller)
    labelled = []  # every file decoded and labelled before anything is written: a bad file leaves no half set
    for k, (stem, f) in enumerate(stems.items()):
        audio = load_audio(str(f))  # 16 kHz mono; a corrupt or empty file is one clear error
        labelled.append((stem, audio, segments_of(audio)))
        if progress is not None:
            progress(k + 1, len(stems), stem)
    (out / "rttm").mkdir(parents=True, exist_ok=True)
    for stem, audio, segments in labelled:
        wav = out / f"{stem}.wav"
        atomic_write(wav, lambda tmp, audio=audio: sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV"))
        atomic_write_text(out / "rttm" / f"{stem}.rttm", format_segments(segments, "rttm", wav))
    return {"files": len(labelled), "seconds": sum(len(a) for _, a, _ in labelled) / SAMPLE_RATE,
            "speech_seconds": sum(s.end - s.start for _, _, segs in labelled for s in segs), "out": str(out)}
