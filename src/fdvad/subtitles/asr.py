"""Speech recognition engines behind one call: 16 kHz float audio -> timed words (seconds from the audio's start).

  pocketsphinx     the offline default: its PyPI package ships an English (en-us) acoustic model, dictionary
                   and language model; `--asr-model DIR` takes another CMU Sphinx model folder (an acoustic
                   model folder with `mdef`, a `*.dict` and a `*.lm.bin` or `*.lm`);
  faster-whisper   `pip install faster-whisper`, and a local CTranslate2 model folder (`--asr-model DIR`);
  whisper          `pip install openai-whisper`, and a local checkpoint (`--asr-model FILE.pt`);
  vosk             `pip install vosk`, and a local model folder (`--asr-model DIR`).
Nothing is ever downloaded: an engine without its package or model stops with one line saying how to get it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ConfigError
from .layout import Word

ENGINES = ("pocketsphinx", "faster-whisper", "whisper", "vosk")
SAMPLE_RATE = 16000
# pocketsphinx's non-word tokens: sentence marks, silence, noise/filler words such as [NOISE] or ++UH++
_SPHINX_FILLER = re.compile(r"^(<s>|</s>|<sil>|\[.*\]|\+\+.*\+\+|\(null\))$", re.IGNORECASE)


class ASREngine(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray) -> list[Word]:
        ...


def _need(package: str, engine: str, pip_name: str):
    import importlib

    try:
        return importlib.import_module(package)
    except ImportError:
        raise ConfigError(f"ASR engine {engine} needs the {pip_name} package: pip install {pip_name}") from None


def _model_path(model: str | None, engine: str, how: str) -> Path:
    if not model:
        raise ConfigError(f"ASR engine {engine} needs a local model: give --asr-model ({how}); fdvad never "
                          "downloads one")
    path = Path(model)
    if not path.exists():
        raise ConfigError(f"--asr-model {model}: not found ({how})")
    return path


class PocketsphinxASR:
    name = "pocketsphinx"

    def __init__(self, model: str | None = None, language: str | None = None):
        sphinx = _need("pocketsphinx", self.name, "pocketsphinx")
        kwargs = {}
        if model:
            folder = _model_path(model, self.name, "a CMU Sphinx model folder")
            hmm = next((p.parent for p in folder.rglob("mdef")), None)
            dic = next(iter(sorted(folder.rglob("*.dict"))), None)
            lm = next(iter(sorted(folder.rglob("*.lm.bin")) or sorted(folder.rglob("*.lm"))), None)
            if hmm is None or dic is None or lm is None:
                raise ConfigError(f"--asr-model {model}: a Sphinx model folder needs an acoustic model (mdef), a "
                                  "*.dict and a *.lm.bin or *.lm")
            kwargs = {"hmm": str(hmm), "dict": str(dic), "lm": str(lm)}
        elif language and language.lower() not in ("en", "en-us", "english"):
            raise ConfigError(f"pocketsphinx's bundled model is English only; for {language!r} give --asr-model "
                              "with a Sphinx model of that language, or use another --asr engine")
        self.decoder = sphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **kwargs)
        self.frame_s = 1.0 / float(self.decoder.config["frate"])

    def transcribe(self, audio: np.ndarray) -> list[Word]:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        words = []
        for seg in self.decoder.seg():
            token = re.sub(r"\(\d+\)$", "", seg.word)  # alternative pronunciations: "read(2)"
            if not token or _SPHINX_FILLER.match(token):
                continue
            words.append(Word(token, seg.start_frame * self.frame_s, (seg.end_frame + 1) * self.frame_s))
        return words


class FasterWhisperASR:
    name = "faster-whisper"

    def __init__(self, model: str | None = None, language: str | None = None):
        path = _model_path(model, self.name, "a CTranslate2 Whisper model folder, e.g. from "
                                             "`ct2-transformers-converter` on a machine with the weights")
        fw = _need("faster_whisper", self.name, "faster-whisper")
        self.model = fw.WhisperModel(str(path), device="cpu", compute_type="int8")
        self.language = language

    def transcribe(self, audio: np.ndarray) -> list[Word]:
        segments, _ = self.model.transcribe(audio.astype(np.float32), language=self.language, word_timestamps=True,
                                            vad_filter=False, condition_on_previous_text=False)
        return [Word(w.word.strip(), float(w.start), float(w.end)) for s in segments for w in (s.words or [])]


class WhisperASR:
    name = "whisper"

    def __init__(self, model: str | None = None, language: str | None = None):
        path = _model_path(model, self.name, "a Whisper checkpoint file (.pt)")
        whisper = _need("whisper", self.name, "openai-whisper")
        self.model = whisper.load_model(str(path), device="cpu")
        self.language = language

    def transcribe(self, audio: np.ndarray) -> list[Word]:
        result = self.model.transcribe(audio.astype(np.float32), language=self.language, word_timestamps=True,
                                       fp16=False, condition_on_previous_text=False)
        return [Word(w["word"].strip(), float(w["start"]), float(w["end"]))
                for s in result.get("segments", []) for w in s.get("words", [])]


class VoskASR:
    name = "vosk"

    def __init__(self, model: str | None = None, language: str | None = None):
        path = _model_path(model, self.name, "a Vosk model folder from alphacephei.com/vosk/models")
        vosk = _need("vosk", self.name, "vosk")
        vosk.SetLogLevel(-1)
        self.model = vosk.Model(str(path))
        self.vosk = vosk

    def transcribe(self, audio: np.ndarray) -> list[Word]:
        import json

        recognizer = self.vosk.KaldiRecognizer(self.model, SAMPLE_RATE)
        recognizer.SetWords(True)
        recognizer.AcceptWaveform((np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes())
        result = json.loads(recognizer.FinalResult())
        return [Word(w["word"], float(w["start"]), float(w["end"])) for w in result.get("result", [])]


def make_asr(engine: str = "pocketsphinx", model: str | None = None, language: str | None = None) -> ASREngine:
    classes = {"pocketsphinx": PocketsphinxASR, "faster-whisper": FasterWhisperASR, "whisper": WhisperASR,
               "vosk": VoskASR}
    if engine not in classes:
        raise ConfigError(f"unknown ASR engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return classes[engine](model, language)
