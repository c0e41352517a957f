"""fdvad: voice activity detection improved by Feature Distillation.

    import fdvad
    vad = fdvad.load_vad()                 # the shipped default model, fast mode
    segments = vad("talk.mp4")             # [Segment(start=1.23, end=4.56, score=0.97), ...]
    probs, hop_s = vad.speech_probs(samples, sample_rate=16000)
    result = fdvad.subtitle_file("episode.mkv")   # cues (result.cues) for fdvad.write_cues(result.cues, "ep.srt")
"""

from __future__ import annotations

__version__ = "0.1.0"

# Public names are imported on first use, so that `import fdvad.audio` or the CLI's `--help` does not pay
# for importing torch.
_EXPORTS = {
    "VAD": "fdvad.vad.detector",
    "load_vad": "fdvad.vad.detector",
    "PostprocessConfig": "fdvad.vad.postprocess",
    "Segment": "fdvad.vad.segment",
    "FdvadError": "fdvad.errors",
    "subtitle_file": "fdvad.subtitles.pipeline",
    "SubtitleOptions": "fdvad.subtitles.pipeline",
    "write_cues": "fdvad.subtitles.formats",
}
__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fdvad' has no attribute {name!r}")
