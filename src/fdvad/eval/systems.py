"""VAD systems behind one call: audio (16 kHz mono float32) -> speech probability per 10 ms frame + segments.

Each system runs as its users run it, with its own defaults: fdvad models with their config's
post-processing, Silero VAD through `get_speech_timestamps`, WebRTC VAD and pocketsphinx's VAD as raw
per-frame decisions (their probability is 0/1, so their AUROC is that of a single operating point).
Only the packages a system needs are imported, when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ConfigError
from ..vad.segment import Segment

SAMPLE_RATE = 16000
FRAME_S = 0.01
FRAME_LEN = 160
KNOWN = ("fdvad", "silero", "webrtc", "pocketsphinx", "tenvad")


@dataclass
class SystemOutput:
    probs: np.ndarray  # speech probability per 10 ms frame, ceil(len(audio) / 160) of them
    segments: list[Segment]


@dataclass
class System:
    name: str
    run: Callable[[np.ndarray], SystemOutput]
    segments_only: Callable[[np.ndarray], list[Segment]] | None = None  # what a user calls: timed for speed
    binary: bool = False  # probabilities are 0/1 decisions

    def __call__(self, audio: np.ndarray) -> SystemOutput:
        return self.run(audio)

    def segments(self, audio: np.ndarray) -> list[Segment]:
        return self.segments_only(audio) if self.segments_only else self.run(audio).segments


def n_frames(n_samples: int) -> int:
    return -(-n_samples // FRAME_LEN)


def _stretch(values: np.ndarray, frames_per_value: float, n: int) -> np.ndarray:
    """Per-step values (one every `frames_per_value` 10 ms frames) -> one per 10 ms frame (the value whose
    step holds the frame's centre), n of them; frames after the last step keep the last value."""
    if len(values) == 0:
        return np.zeros(n, np.float32)
    centres = (np.arange(n) + 0.5) / frames_per_value
    return values[np.minimum(centres.astype(np.int64), len(values) - 1)].astype(np.float32)


def _runs_to_segments(flags: np.ndarray, step_s: float) -> list[Segment]:
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [Segment(round(float(a) * step_s, 4), round(float(b) * step_s, 4)) for a, b in zip(edges[::2], edges[1::2])]


def fdvad_system(model: str = "default", mode: str = "fast", name: str | None = None) -> System:
    from ..vad.detector import load_vad

    vad = load_vad(model, mode=mode)
    per = vad.hop_s / FRAME_S

    def run(audio: np.ndarray) -> SystemOutput:
        probs, _ = vad.speech_probs(audio, SAMPLE_RATE)
        segs = vad.segments_from_probs(probs, len(audio) / SAMPLE_RATE)
        return SystemOutput(_stretch(np.asarray(probs), per, n_frames(len(audio))), segs)

    label = name or ("fdvad" if model == "default" else f"fdvad:{Path(model).stem}")
    return System(label, run, lambda audio: vad(audio, SAMPLE_RATE))


def silero_system() -> System:
    try:
        import torch
        from silero_vad import get_speech_timestamps, load_silero_vad
    except ImportError:
        raise ConfigError("silero is not installed: pip install 'fdvad[compare]' (or silero-vad onnxruntime)") from None
    model = load_silero_vad(onnx=True)

    def segments(audio: np.ndarray) -> list[Segment]:
        stamps = get_speech_timestamps(torch.from_numpy(audio), model, sampling_rate=SAMPLE_RATE, return_seconds=True)
        return [Segment(float(t["start"]), float(t["end"])) for t in stamps]

    def run(audio: np.ndarray) -> SystemOutput:
        model.reset_states()
        chunk = 512  # Silero's 32 ms step at 16 kHz
        x = torch.from_numpy(np.pad(audio, (0, -len(audio) % chunk)))
        with torch.no_grad():
            probs = np.array([float(model(x[i:i + chunk], SAMPLE_RATE)) for i in range(0, len(x), chunk)])
        return SystemOutput(_stretch(probs, chunk / FRAME_LEN, n_frames(len(audio))), segments(audio))

    return System("silero", run, segments)


def webrtc_system(mode: int = 1) -> System:
    try:
        import webrtcvad
    except ImportError:
        raise ConfigError("webrtc is not installed: pip install 'fdvad[compare]' (or webrtcvad-wheels)") from None
    if mode not in (0, 1, 2, 3):
        raise ConfigError(f"webrtc mode must be 0..3, got {mode}")
    detector = webrtcvad.Vad(mode)

    def run(audio: np.ndarray) -> SystemOutput:
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        step = 480  # 30 ms frames
        flags = np.array([detector.is_speech(pcm[i:i + step].tobytes(), SAMPLE_RATE)
                          for i in range(0, len(pcm) - step + 1, step)], bool)
        return SystemOutput(_stretch(flags.astype(np.float32), 3, n_frames(len(audio))),
                            _runs_to_segments(flags, 0.03))

    return System(f"webrtc:{mode}" if mode != 1 else "webrtc", run, binary=True)


def pocketsphinx_system() -> System:
    try:
        from pocketsphinx import Vad
    except ImportError:
        raise ConfigError("pocketsphinx is not installed: pip install 'fdvad[compare]' (or pocketsphinx)") from None
    vad = Vad(sample_rate=SAMPLE_RATE)
    step = vad.frame_bytes // 2

    def run(audio: np.ndarray) -> SystemOutput:
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        flags = np.array([vad.is_speech(pcm[i:i + step].tobytes())
                          for i in range(0, len(pcm) - step + 1, step)], bool)
        return SystemOutput(_stretch(flags.astype(np.float32), step / FRAME_LEN, n_frames(len(audio))),
                            _runs_to_segments(flags, step / SAMPLE_RATE))

    return System("pocketsphinx", run, binary=True)


def tenvad_system() -> System:
    try:
        from ten_vad import TenVad
    except (ImportError, OSError) as e:
        raise ConfigError(f"tenvad is not available ({e}): pip install ten-vad and apt-get install libc++1") from None
    hop = 256
    try:
        TenVad(hop, 0.5)  # its native library loads here: without libc++1 this fails
    except OSError as e:
        raise ConfigError(f"tenvad cannot load its library ({e}): apt-get install libc++1") from None

    def run(audio: np.ndarray) -> SystemOutput:
        detector = TenVad(hop, 0.5)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        out = [detector.process(pcm[i:i + hop]) for i in range(0, len(pcm) - hop + 1, hop)]
        probs = np.array([p for p, _ in out], np.float32)
        flags = np.array([f for _, f in out], bool)
        return SystemOutput(_stretch(probs, hop / FRAME_LEN, n_frames(len(audio))),
                            _runs_to_segments(flags, hop / SAMPLE_RATE))

    return System("tenvad", run)


def make_system(spec: str) -> System:
    """'fdvad' / 'fdvad:MODEL' / 'fdvad:MODEL:exact', 'silero', 'webrtc' / 'webrtc:MODE', 'pocketsphinx', 'tenvad'."""
    kind, _, rest = spec.strip().partition(":")
    if kind == "fdvad":
        model, _, mode = rest.rpartition(":") if rest.endswith((":fast", ":exact")) else (rest, "", "fast")
        return fdvad_system(model or "default", mode, name=spec.strip() if rest else "fdvad")
    if kind == "silero" and not rest:
        return silero_system()
    if kind == "webrtc":
        try:
            return webrtc_system(int(rest) if rest else 1)
        except ValueError:
            raise ConfigError(f"webrtc mode must be 0..3, got {rest!r}") from None
    if kind == "pocketsphinx" and not rest:
        return pocketsphinx_system()
    if kind == "tenvad" and not rest:
        return tenvad_system()
    raise ConfigError(f"unknown system {spec!r}; known: fdvad[:MODEL[:exact]], silero, webrtc[:0-3], pocketsphinx, tenvad")
