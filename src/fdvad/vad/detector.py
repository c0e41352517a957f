"""The public VAD object: `vad = load_vad(); segments = vad("talk.mp4")`."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Iterator, Union

import numpy as np
import torch

from ..audio import TARGET_SAMPLE_RATE, iter_audio, prepare_audio
from ..errors import CheckpointError, ConfigError
from ..features import FeatureConfig, FeatureExtractor
from ..models.checkpoint import load_model_file
from .infer import MODES, make_scorer
from .postprocess import PostprocessConfig, postprocess
from .segment import Segment

AudioInput = Union[str, os.PathLike, np.ndarray, torch.Tensor]
# how much decoded audio is held at once when reading a file
READ_CHUNK_S = 60.0


def shipped_model_path(name: str) -> Path:
    """Where the shipped model `name` lives (fdvad/weights/NAME.safetensors, beside NAME.yaml and NAME.md)."""
    return Path(str(resources.files("fdvad") / "weights" / f"{name}.safetensors"))


def default_model_path() -> Path:
    return shipped_model_path("default")


def shipped_models() -> list[str]:
    """Names `load_vad` takes besides paths: "default" and every earlier default kept in the package."""
    folder = default_model_path().parent
    return sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []


class VAD:
    """A speech detector: a model, its front end, its window geometry and its post-processing defaults.

    `vad(audio)` returns speech `Segment`s in seconds; `vad.speech_probs(audio)` returns the raw
    probabilities. Audio is a path to any media file, or samples (numpy/torch, mono or multi-channel) with
    their `sample_rate` (16 kHz when not given).
    """

    def __init__(self, model: torch.nn.Module, config: dict, mode: str = "fast", name: str = ""):
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.name = name
        self.mode = mode
        self.config = config
        self.model = model.eval()
        self.features = FeatureExtractor(FeatureConfig.from_dict(config.get("features", {}))).eval()
        self.sample_rate = self.features.config.sample_rate
        self.scorer = make_scorer(self.model, self.features, config, mode)
        self.postprocess = PostprocessConfig.from_options(**config.get("postprocess", {}))

    @property
    def threshold(self) -> float:
        """The default onset: speech starts where the probability rises above it."""
        return self.postprocess.onset

    @property
    def hop_s(self) -> float:
        return self.scorer.hop_s

    def __repr__(self) -> str:
        return f"VAD(name={self.name!r}, mode={self.mode!r}, hop_s={self.hop_s}, threshold={self.threshold})"

    # -- probabilities ---------------------------------------------------------------------------
    def speech_probs(self, audio: AudioInput, sample_rate: int | None = None,
                     progress: Callable[[float], None] | None = None) -> tuple[np.ndarray, float]:
        """(probs, hop_s): probs[k] is the speech probability of [k * hop_s, (k + 1) * hop_s) of the input.

        `progress`, if given, is called with the seconds of audio done so far.
        """
        probs, _ = self.probs_and_duration(audio, sample_rate, progress)
        return probs, self.hop_s

    def probs_and_duration(self, audio: AudioInput, sample_rate: int | None = None,
                           progress: Callable[[float], None] | None = None) -> tuple[np.ndarray, float]:
        """(probs, duration of the input in seconds); see `speech_probs`."""
        blocks, counter = self._blocks(audio, sample_rate)
        done = 0.0
        out = []
        with torch.inference_mode():
            for p in self.scorer.iter_probs(blocks):
                out.append(p)
                done += len(p) * self.hop_s
                if progress is not None:
                    progress(done)
        probs = np.concatenate(out) if out else np.zeros(0, np.float32)
        return probs, counter[0] / self.sample_rate

    def _blocks(self, audio: AudioInput, sample_rate: int | None) -> tuple[Iterator[np.ndarray], list[int]]:
        """Audio as consecutive 16 kHz blocks (files are streamed), and a counter of samples seen."""
        counter = [0]
        if isinstance(audio, (str, os.PathLike)):
            if sample_rate is not None:
                raise ConfigError("sample_rate is only for in-memory audio; files carry their own rate")
            source: Iterable[np.ndarray] = iter_audio(audio, self.sample_rate, READ_CHUNK_S)
        else:
            source = [prepare_audio(audio, sample_rate or TARGET_SAMPLE_RATE, self.sample_rate)]

        def counted():
            for block in source:
                counter[0] += len(block)
                yield block

        return counted(), counter

    # -- segments --------------------------------------------------------------------------------
    def __call__(self, audio: AudioInput, sample_rate: int | None = None,
                 progress: Callable[[float], None] | None = None, **options) -> list[Segment]:
        """Speech segments of `audio`. `options` override post-processing defaults for this call:
        onset/threshold, offset/neg_threshold, pad_onset, pad_offset, speech_pad_ms, min_duration_on,
        min_speech_duration_ms, min_duration_off, min_silence_duration_ms, filter_speech_first,
        max_speech_duration_s."""
        probs, duration_s = self.probs_and_duration(audio, sample_rate, progress)
        return self.segments_from_probs(probs, duration_s, **options)

    def segments_from_probs(self, probs: np.ndarray, duration_s: float | None = None, **options) -> list[Segment]:
        """Speech segments from probabilities `speech_probs` gave, with this VAD's post-processing (`options`
        override it as in `__call__`): scoring once and post-processing many times is how tuning works."""
        config = self.postprocess.replace(**options) if options else self.postprocess
        return postprocess(probs, self.hop_s, config, duration_s=duration_s)


def load_vad(model: str | os.PathLike = "default", mode: str = "fast") -> VAD:
    """Load a VAD: "default" (the model shipped with fdvad) or the name of another shipped model
    (`shipped_models()`), a path to an fdvad checkpoint (`NAME.safetensors` beside `NAME.yaml`) or a NeMo
    `.nemo` file (MarbleNet segment or frame VAD).

    mode: "fast" (encoder once over the whole file, windows pooled from it) or "exact" (every 0.63 s window
    classified on its own, as NeMo does; about 4x slower, see docs/inference.md).
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if str(model) == "default":
        path = default_model_path()
        if not path.is_file():
            raise CheckpointError(f"the default model is missing from the installation ({path}); "
                                  "reinstall fdvad or run `make model`")
    elif _is_name(str(model)) and shipped_model_path(str(model)).is_file():
        path = shipped_model_path(str(model))
    else:
        path = Path(model)
        if not path.is_file():
            names = ", ".join(repr(n) for n in shipped_models()) or "'default'"
            raise CheckpointError(f"model file not found: {path} (give a shipped model: {names}; or a .safetensors "
                                  "or .nemo file)")
    net, config = load_model_file(path)
    return VAD(net, config, mode=mode, name=str(model))


def _is_name(text: str) -> bool:
    """A bare model name (no folder, no suffix), as opposed to a path."""
    return bool(text) and "/" not in text and "\\" not in text and "." not in text
