"""Speech from espeak-ng (Debian package `espeak-ng`), with exact speech boundaries taken from the clean signal."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

from ..audio import load_audio
from ..errors import ConfigError, FdvadError

# espeak-ng voice variants (files in espeak-ng-data/voices/!v): a spread of male, female, whisper and
# klatt-synthesised voices.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt6", "Alicia", "Andrea", "Annie", "belinda", "benjamin",
    "david", "ed", "edward", "grandma", "grandpa", "iven", "john", "linda", "max", "michel", "norbert",
    "paul", "robert", "steph", "travis", "victor", "whisper", "whisperf", "croak",
)


@dataclass(frozen=True)
class EspeakVoice:
    language: str = "en"
    variant: str | None = None
    rate_wpm: int = 160  # espeak-ng -s
    pitch: int = 50  # espeak-ng -p, 0..99
    word_gap_10ms: int = 0  # espeak-ng -g, extra pause between words in units of 10 ms

    @property
    def name(self) -> str:
        return self.language + (f"+{self.variant}" if self.variant else "")

    def command(self, wav_path: str, text: str) -> list[str]:
        return ["espeak-ng", "-v", self.name, "-s", str(self.rate_wpm), "-p", str(self.pitch),
                "-g", str(self.word_gap_10ms), "-w", wav_path, text]


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, voice: EspeakVoice, sample_rate: int = 16000) -> np.ndarray:
    """Speak `text` with `voice`; mono float32 at `sample_rate`."""
    if not espeak_available():
        raise FdvadError("espeak-ng is not installed: apt-get install espeak-ng")
    fd, wav_path = tempfile.mkstemp(suffix=".wav", prefix="fdvad_tts_")
    os.close(fd)
    try:
        proc = subprocess.run(voice.command(wav_path, text), capture_output=True, text=True, timeout=60)
        if proc.returncode != 0 or os.path.getsize(wav_path) == 0:
            raise ConfigError(f"espeak-ng failed for voice {voice.name!r}: {proc.stderr.strip() or 'no audio'}")
        return load_audio(wav_path, sample_rate)
    finally:
        os.unlink(wav_path)


def frame_energy_db(signal: np.ndarray, frame_len: int) -> np.ndarray:
    """RMS energy in dB of consecutive non-overlapping frames (the last partial frame is zero-padded)."""
    n_frames = -(-len(signal) // frame_len)
    padded = np.zeros(n_frames * frame_len, dtype=np.float64)
    padded[: len(signal)] = signal
    power = (padded.reshape(n_frames, frame_len) ** 2).mean(axis=1)
    return 10.0 * np.log10(power + 1e-20)


def speech_frames(clean: np.ndarray, sample_rate: int = 16000, frame_s: float = 0.01,
                  floor_db: float = -40.0, fill_gap_s: float = 0.15) -> np.ndarray:
    """Boolean speech label per `frame_s` frame of a clean (noise-free) utterance.

    A frame is speech when its energy is within `floor_db` of the loudest frame, which is tight at word onsets
    and offsets (TTS output is digitally silent between phrases). Gaps shorter than `fill_gap_s` inside
    speech are filled, the way annotators mark a phrase rather than single syllables.
    """
    energy = frame_energy_db(clean, int(round(frame_s * sample_rate)))
    active = energy > max(energy.max() + floor_db, -70.0)
    max_gap = int(round(fill_gap_s / frame_s))
    idx = np.flatnonzero(active)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            active[a:b] = True
    return active


def frames_to_spans(frames: np.ndarray, frame_s: float = 0.01) -> list[tuple[float, float]]:
    """(start, end) seconds of each run of True frames."""
    padded = np.concatenate([[False], frames.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(a * frame_s, b * frame_s) for a, b in zip(edges[::2], edges[1::2])]
