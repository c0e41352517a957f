"""Every text-to-speech engine Debian installs here, behind one interface.

Engines (Debian `main`; see docs/voices.md):

- ``espeak``: espeak-ng, ~130 languages and accents, each with the voice variants of `tts.VARIANTS`
  (formant synthesis; rate, pitch and word gap vary freely).
- ``flite``: CMU Flite, US/Scottish English voices recorded from real speakers (slt, rms, awb, kal, kal16).
- ``festival``: Festival with the festvox voice packages (English, Italian, Czech, Finnish, Catalan,
  Russian, Hindi, Marathi, Telugu): diphone, unit-selection and HTS voices built from real recordings.

mbrola voices (and SVOX pico, Open JTalk's voice) are not in Debian `main`, so they are not available.

A `Voice` is an engine voice plus the speaking parameters it is rendered with. `Voice.name` is the stable id of
the *base* voice (``espeak:de+f3``, ``flite:slt``, ``festival:kal_diphone``); `Voice.base_voice` drops the
rate/pitch parameters. For leakage-free splits use `Voice.speaker`: it groups voices built from the same
recordings (flite kal/kal16 and festival kal_diphone; flite slt and festival cmu_us_slt_arctic_hts) and all
espeak languages of one variant (the variant is the timbre).

Audio comes back as mono float32 at 16 kHz (or `sample_rate`), resampled by `fdvad.audio.load_audio`, with the
engine's own leading/trailing silence kept: labels come from `tts.speech_frames` on this clean signal. Output of
the recorded-voice engines (flite, festival) goes through `remove_rumble` first: their DC offsets and hum would
otherwise be labelled speech.
"""

from __future__ import annotations

import functools
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..audio import load_audio
from ..errors import ConfigError, FdvadError
from . import tts

ENGINES = ("espeak", "flite", "festival")
_BINARIES = {"espeak": "espeak-ng", "flite": "flite", "festival": "text2wave"}
ENGINE_PACKAGES = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}

# package -> licence (from /usr/share/doc/PKG/copyright, Debian bookworm). "BSD-like (...)" are the permissive
# CMU/CSTR Festvox-style licences (use, modify and redistribute freely; keep the notice, mark modifications).
LICENCES: dict[str, str] = {
    "espeak-ng": "GPL-3.0-or-later",
    "espeak-ng-data": "GPL-3.0-or-later",
    "flite": "BSD-like (CMU Flite licence)",
    "festival": "BSD-like (CSTR Festival licence)",
    "festlex-cmu": "BSD-like (CSTR/CMU Festival licence)",
    "festlex-poslex": "BSD-like (CSTR Festival licence)",
    "festlex-ifd": "GPL-2.0-or-later",
    "festival-ca": "LGPL-2.1 (with Festvox/BSD-like parts)",
    "festival-czech": "GPL-2.0-or-later",
    "festival-hi": "GPL-2.0-or-later",
    "festival-mr": "GPL-2.0-or-later",
    "festival-te": "GPL-2.0-or-later",
    "festvox-kallpc16k": "BSD-like (CSTR/CMU Festvox licence)",
    "festvox-kdlpc16k": "BSD-like (CSTR/CMU Festvox licence)",
    "festvox-us-slt-hts": "BSD-like (EST/Festvox licence) and BSD-3-Clause",
    "festvox-ca-ona-hts": "LGPL-2.1-or-later",
    "festvox-italp16k": "GPL-2.0-or-later",
    "festvox-itapc16k": "GPL-2.0-or-later",
    "festvox-czech-dita": "GPL-3.0-or-later",
    "festvox-czech-krb": "GPL-3.0-or-later",
    "festvox-czech-machac": "GPL-3.0-or-later",
    "festvox-czech-ph": "GPL-2.0-or-later",
    "festvox-suopuhe-common": "LGPL-2.0-or-later",
    "festvox-suopuhe-lj": "LGPL-2.0-or-later",
    "festvox-suopuhe-mv": "LGPL-2.0-or-later",
    "festvox-hi-nsk": "GPL-2.0-or-later",
    "festvox-mr-nsk": "GPL-2.0-or-later",
    "festvox-te-nsk": "GPL-2.0-or-later",
    "festvox-ru": "BSD-like (Festvox licence)",
}


@dataclass(frozen=True)
class _FliteInfo:
    language: str
    speaker: str


# `flite -lv` also lists awb_time, a limited-domain voice that can only say the time: left out.
_FLITE_VOICES = {
    "slt": _FliteInfo("en-us", "cmu-arctic:slt"),
    "rms": _FliteInfo("en-us", "cmu-arctic:rms"),
    "awb": _FliteInfo("en-gb-scotland", "cmu-arctic:awb"),
    "kal": _FliteInfo("en-us", "cmu:kal"),  # 8 kHz diphones
    "kal16": _FliteInfo("en-us", "cmu:kal"),
}


@dataclass(frozen=True)
class _FestivalInfo:
    language: str
    package: str
    encoding: str  # the byte encoding the voice's text front end expects
    hts: bool = False  # HTS voices ignore Duration_Stretch; their rate is hts_engine's "-r"
    speaker: str | None = None


_FESTIVAL_VOICES = {
    "kal_diphone": _FestivalInfo("en-us", "festvox-kallpc16k", "latin-1", speaker="cmu:kal"),
    "ked_diphone": _FestivalInfo("en-us", "festvox-kdlpc16k", "latin-1"),
    "cmu_us_slt_arctic_hts": _FestivalInfo("en-us", "festvox-us-slt-hts", "latin-1", hts=True,
                                           speaker="cmu-arctic:slt"),
    "upc_ca_ona_hts": _FestivalInfo("ca", "festvox-ca-ona-hts", "iso-8859-15", hts=True),
    "lp_diphone": _FestivalInfo("it", "festvox-italp16k", "latin-1"),
    "pc_diphone": _FestivalInfo("it", "festvox-itapc16k", "latin-1"),
    "czech_dita": _FestivalInfo("cs", "festvox-czech-dita", "iso-8859-2"),
    "czech_krb": _FestivalInfo("cs", "festvox-czech-krb", "iso-8859-2"),
    "czech_machac": _FestivalInfo("cs", "festvox-czech-machac", "iso-8859-2"),
    "czech_ph": _FestivalInfo("cs", "festvox-czech-ph", "iso-8859-2"),
    "hy_fi_mv_diphone": _FestivalInfo("fi", "festvox-suopuhe-mv", "latin-1"),
    "suo_fi_lj_diphone": _FestivalInfo("fi", "festvox-suopuhe-lj", "latin-1"),
    "msu_ru_nsh_clunits": _FestivalInfo("ru", "festvox-ru", "utf-8"),
    "hindi_NSK_diphone": _FestivalInfo("hi", "festvox-hi-nsk", "utf-8", speaker="festvox:nsk"),
    "marathi_NSK_diphone": _FestivalInfo("mr", "festvox-mr-nsk", "utf-8", speaker="festvox:nsk"),
    "telugu_NSK_diphone": _FestivalInfo("te", "festvox-te-nsk", "utf-8", speaker="festvox:nsk"),
}
# a voice Festival lists that the table above does not know: loaded with these defaults, language unknown
_FESTIVAL_UNKNOWN = _FestivalInfo("und", "festival", "latin-1")

# One short sentence per language, used to check that a voice really speaks (and in tests).
PROBE_TEXT = {
    "en": "Please call me back when you get this message.",
    "it": "Buongiorno, vorrei un biglietto per Roma.",
    "cs": "Dobrý den, jak se máte?",
    "fi": "Hyvää huomenta, mitä kuuluu?",
    "ca": "Bon dia, com estàs? Demà anirem a la platja.",
    "ru": "Доброе утро, как у вас дела?",
    "hi": "नमस्ते, आप कैसे हैं?",
    "mr": "नमस्कार, तुम्ही कसे आहात?",
    "te": "నమస్కారం, మీరు ఎలా ఉన్నారు?",
}

# Voices whose energy labels (tts.speech_frames) can run past the speech, measured on 101 sentences over all
# flite/festival voices against the first/last sample above 1% of the peak (docs/voices.md). All others agreed
# within 20 ms except for clicks after the speech and a plosive release (the labels were right there).
LOOSE_LABELS = {
    "flite:rms": "a breath before the first word is labelled speech (about 60 ms early on some sentences)",
    "festival:hindi_NSK_diphone": "its recordings' noise floor sits at the label floor: utterance ends labelled "
                                  "up to ~170 ms long",
    "festival:telugu_NSK_diphone": "noise floor near the label floor: ends up to ~50 ms long",
}
# Left out by random_voice unless include_unreliable=True: labels 130-200 ms long on most utterances.
UNRELIABLE_LABELS = frozenset({"festival:hindi_NSK_diphone"})

# Natural ranges for random_voice. espeak-ng's defaults are 175 wpm and pitch 50.
ESPEAK_RATE_WPM = (120, 240)
ESPEAK_PITCH = (20, 80)
ESPEAK_WORD_GAPS = (0, 0, 0, 1, 3, 6)
DURATION_STRETCH = (0.75, 1.35)  # flite and festival; > 1 is slower
FLITE_F0_SCALE = (0.85, 1.2)  # multiplies the voice's own pitch
_FLITE_FIXED_PITCH = {"rms"}  # f0_shift has no effect on this voice

STYLES = ("normal", "whisper", "fast", "slow")


@dataclass(frozen=True)
class Voice:
    """One TTS voice and the speaking parameters to render it with.

    `voice` is the engine's own id: an espeak-ng language (``de``, ``en-gb``, ``yue-Latn-jyutping``),
    a flite voice (``slt``) or a festival voice (``kal_diphone``). `language` is its BCP-47/ISO 639 code.
    Parameters an engine does not use keep their defaults and are ignored.
    """

    engine: str
    voice: str
    language: str
    variant: str | None = None  # espeak-ng voice variant (tts.VARIANTS), e.g. "f3", "whisper"
    rate_wpm: int = 175  # espeak-ng -s
    pitch: int = 50  # espeak-ng -p, 0..99
    word_gap_10ms: int = 0  # espeak-ng -g
    duration_stretch: float = 1.0  # flite / festival: > 1 speaks slower
    f0_scale: float = 1.0  # flite: multiplies the voice's pitch (flite's f0_shift; rms ignores it)

    @property
    def name(self) -> str:
        """Stable id of the base voice, e.g. ``espeak:de+f3``, ``flite:slt``, ``festival:kal_diphone``."""
        return f"{self.engine}:{self.voice}" + (f"+{self.variant}" if self.variant else "")

    @property
    def base_voice(self) -> Voice:
        """This voice with the engine's default rate and pitch: the identity used for splits."""
        return Voice(self.engine, self.voice, self.language, self.variant)

    @property
    def primary_language(self) -> str:
        """The language subtag: ``en-gb`` -> ``en``, ``cmn`` -> ``cmn``."""
        return self.language.split("-")[0].lower()

    @property
    def speaker(self) -> str:
        """Voices built from the same recordings (or, for espeak-ng, the same variant) share a speaker."""
        if self.engine == "espeak":
            return f"espeak-variant:{self.variant or 'default'}"
        if self.engine == "flite" and self.voice in _FLITE_VOICES:
            return _FLITE_VOICES[self.voice].speaker
        if self.engine == "festival" and self.voice in _FESTIVAL_VOICES:
            return _FESTIVAL_VOICES[self.voice].speaker or self.name
        return self.name

    @property
    def package(self) -> str:
        """The Debian package that provides this voice (for the corpus manifest; see LICENCES)."""
        if self.engine == "festival":
            return _FESTIVAL_VOICES.get(self.voice, _FESTIVAL_UNKNOWN).package
        return ENGINE_PACKAGES.get(self.engine, self.engine)

    @property
    def licence(self) -> str:
        return LICENCES.get(self.package, "unknown")

    def params(self) -> dict[str, float | int]:
        """The speaking parameters this engine uses (for manifests)."""
        if self.engine == "espeak":
            return {"rate_wpm": self.rate_wpm, "pitch": self.pitch, "word_gap_10ms": self.word_gap_10ms}
        if self.engine == "flite":
            return {"duration_stretch": self.duration_stretch, "f0_scale": self.f0_scale}
        return {"duration_stretch": self.duration_stretch}


# ------------------------------------------------------------------------------------------------ discovery


def engine_installed(engine: str) -> bool:
    return engine in _BINARIES and shutil.which(_BINARIES[engine]) is not None


def available_engines() -> list[str]:
    """Engines whose program is installed and that have at least one working voice."""
    return [e for e in ENGINES if engine_installed(e) and _base_voices(e)]


def list_voices(engine: str | None = None, language: str | None = None) -> list[Voice]:
    """Installed base voices (default parameters), optionally of one engine and/or language.

    `language` matches the full code or its primary subtag: ``"en"`` gives en, en-us, en-gb-scotland, ...
    An engine that is not installed contributes no voices; an unknown engine name is a ConfigError.
    """
    if engine is not None and engine not in ENGINES:
        raise ConfigError(f"unknown TTS engine {engine!r}; available: {', '.join(ENGINES)}")
    voices = [v for e in ([engine] if engine else ENGINES) if engine_installed(e) for v in _base_voices(e)]
    if language is not None:
        voices = [v for v in voices if _language_matches(v, language)]
    return voices


def get_voice(name: str) -> Voice:
    """The installed base voice called `name` (``espeak:de+f3``, ``flite:slt``, ``festival:kal_diphone``).

    espeak-ng's language aliases resolve to the voice espeak-ng itself would pick: ``espeak:en`` is
    ``espeak:en-gb``, ``espeak:fr+f2`` is ``espeak:fr-fr+f2``.
    """
    engine = name.split(":", 1)[0] if ":" in name else ""
    if engine not in ENGINES:
        raise ConfigError(f"unknown TTS voice {name!r}: name it ENGINE:VOICE with ENGINE one of "
                          f"{', '.join(ENGINES)}; available: {_available_summary()}")
    _require_engine(engine)
    if engine == "espeak":  # espeak-ng's own aliases: "espeak:en+f3" is en-gb+f3, "espeak:fr" is fr-fr
        ident, plus, variant = name.split(":", 1)[1].partition("+")
        ident = _espeak_languages()[1].get(ident, ident)
        name = f"espeak:{ident}{plus}{variant}"
    for voice in _base_voices(engine):
        if voice.name == name:
            return voice
    raise ConfigError(f"unknown TTS voice {name!r}; available: {_available_summary(engine)}")


def _language_matches(voice: Voice, language: str) -> bool:
    lang = language.lower()
    return voice.language.lower() == lang or voice.primary_language == lang


def _available_summary(engine: str | None = None, n_examples: int = 6) -> str:
    parts = []
    for e in [engine] if engine else ENGINES:
        if not engine_installed(e):
            continue
        voices = _base_voices(e)
        if not voices:
            continue
        if e == "espeak":
            languages = [i for i, _ in _espeak_languages()[0]]
            variants = _espeak_installed_variants()
            parts.append(f"espeak:LANGUAGE[+VARIANT] with LANGUAGE one of {', '.join(languages[:8])}, ... "
                         f"({len(languages)} in all) and VARIANT one of {', '.join(variants[:6])}, ... "
                         f"({len(variants)} in all)")
            continue
        examples = ", ".join(v.name for v in voices[:n_examples])
        more = f", ... ({len(voices)} in all)" if len(voices) > n_examples else ""
        parts.append(examples + more)
    return "; ".join(parts) or "none (install espeak-ng, flite or festival)"


@functools.cache
def _base_voices(engine: str) -> tuple[Voice, ...]:
    """Callers check engine_installed first, so that an engine installed later is not cached as empty."""
    if engine == "espeak":
        return _espeak_voices()
    if engine == "flite":
        return _flite_voices()
    return _festival_voices()


def _espeak_voices() -> tuple[Voice, ...]:
    variants = _espeak_installed_variants()
    return tuple(Voice("espeak", ident, language, variant)
                 for ident, language in _espeak_languages()[0] for variant in (None, *variants))


@functools.cache
def _espeak_languages() -> tuple[tuple[tuple[str, str], ...], dict[str, str]]:
    """((voice id, language), ...) from `espeak-ng --voices`, and the aliases it lists ("en" -> "en-gb")."""
    proc = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, timeout=60)
    found: list[tuple[str, str]] = []
    aliases: dict[str, tuple[int, str]] = {}
    for line in proc.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 5:
            continue
        language, file = fields[1], fields[4]
        # two voices can share a language code (yue, yue-Latn-jyutping): -v takes the file's base name then
        ident = language if all(language != i for i, _ in found) else file.rsplit("/", 1)[-1]
        if any(ident == i for i, _ in found):
            continue
        found.append((ident, language))
        for alias, priority in re.findall(r"\(([\w-]+) (\d+)\)", " ".join(fields[5:])):
            if alias not in aliases or int(priority) < aliases[alias][0]:
                aliases[alias] = (int(priority), ident)
    known = {i for i, _ in found}
    return tuple(found), {a: i for a, (_, i) in aliases.items() if a not in known}


@functools.cache
def _espeak_installed_variants() -> tuple[str, ...]:
    """tts.VARIANTS that this espeak-ng installation has (all of them when the data folder is not found)."""
    proc = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, timeout=60)
    installed = {line.split()[4].split("/", 1)[-1].lower() for line in proc.stdout.splitlines()[1:]
                 if len(line.split()) >= 5}
    if not installed:
        return tts.VARIANTS
    return tuple(v for v in tts.VARIANTS if v.lower() in installed)


def _flite_voices() -> tuple[Voice, ...]:
    proc = subprocess.run(["flite", "-lv"], capture_output=True, text=True, timeout=60)
    listed = proc.stdout.split(":", 1)[-1].split()
    return tuple(Voice("flite", v, _FLITE_VOICES[v].language) for v in listed if v in _FLITE_VOICES)


def _festival_voices() -> tuple[Voice, ...]:
    """Festival voices that load and synthesise their probe sentence, checked in one festival process."""
    festival = shutil.which("festival")
    if festival is None:
        return ()
    listed = subprocess.run([festival, "-b", "(print (voice.list))"], capture_output=True, text=True,
                            timeout=60).stdout
    names = [n for n in re.findall(r"[A-Za-z0-9_.\-]+", listed) if n != "nil"]
    script = bytearray()
    for name in names:
        info = _FESTIVAL_VOICES.get(name, _FESTIVAL_UNKNOWN)
        text = PROBE_TEXT.get(info.language.split("-")[0], "hello").encode(info.encoding)
        script += (b'(unwind-protect (begin (voice_%s) (utt.synth (Utterance Text "%s")) '
                   b'(format t "FDVAD_OK %s\\n")) (format t "FDVAD_FAIL %s\\n"))\n'
                   % (name.encode(), text, name.encode(), name.encode()))
    with tempfile.NamedTemporaryFile(suffix=".scm", prefix="fdvad_festival_probe_", delete=False) as f:
        f.write(bytes(script))
    try:
        out = subprocess.run([festival, "-b", f.name], capture_output=True, timeout=300).stdout.decode("latin-1")
    except subprocess.TimeoutExpired:
        out = ""
    finally:
        os.unlink(f.name)
    working = set(re.findall(r"FDVAD_OK (\S+)", out))
    return tuple(Voice("festival", n, _FESTIVAL_VOICES.get(n, _FESTIVAL_UNKNOWN).language)
                 for n in sorted(working))


def _require_engine(engine: str) -> None:
    if not engine_installed(engine):
        raise FdvadError(f"TTS engine {engine} ({_BINARIES[engine]}) is not installed: "
                         f"apt-get install {ENGINE_PACKAGES[engine]}")


def _check_voice(voice: Voice) -> None:
    if voice.engine not in ENGINES:
        raise ConfigError(f"unknown TTS engine {voice.engine!r} in voice {voice.name!r}; "
                          f"available: {', '.join(ENGINES)}")
    _require_engine(voice.engine)
    if voice.base_voice not in _base_voice_set(voice.engine):
        raise ConfigError(f"unknown TTS voice {voice.name!r} (language {voice.language!r}); "
                          f"available: {_available_summary(voice.engine)}")


@functools.cache
def _base_voice_set(engine: str) -> frozenset[Voice]:
    return frozenset(_base_voices(engine))


# ------------------------------------------------------------------------------------------------ synthesis


def synthesize(text: str, voice: Voice, sample_rate: int = 16000) -> np.ndarray:
    """Speak `text` with `voice`: mono float32 at `sample_rate`, the engine's edge silences kept.

    ConfigError for an unknown voice or text the voice cannot speak (empty, wrong script for its encoding,
    or no audible output); FdvadError when the engine's program is not installed.
    """
    _check_voice(voice)
    if not text or not text.strip():
        raise ConfigError(f"TTS voice {voice.name}: nothing to say (empty text)")
    if voice.engine == "espeak":
        audio = _espeak(text, voice, sample_rate)
    elif voice.engine == "flite":
        if not re.search("[A-Za-z0-9]", text):
            raise ConfigError(f"TTS voice {voice.name} speaks English only and cannot speak {text[:40]!r}")
        audio = _run_to_wav(voice, sample_rate, text.encode("utf-8"), lambda txt, wav: [
            "flite", "-voice", voice.voice, "--setf", f"duration_stretch={voice.duration_stretch:g}",
            *(["--setf", f"f0_shift={voice.f0_scale:g}"] if voice.f0_scale != 1.0 else []),
            "-f", txt, "-o", wav])
    else:
        audio = _festival(text, voice, sample_rate)
    if voice.engine != "espeak":
        audio = remove_rumble(audio, sample_rate)
    if not np.isfinite(audio).all():
        raise ConfigError(f"TTS voice {voice.name} produced invalid samples for {text[:40]!r}")
    if len(audio) == 0 or float(np.abs(audio).max()) < 1e-2:
        raise ConfigError(f"TTS voice {voice.name} ({voice.language}) produced no audible speech for "
                          f"{text[:40]!r}; give it text in its language")
    return audio


def remove_rumble(audio: np.ndarray, sample_rate: int = 16000, low_hz: float = 40.0, high_hz: float = 100.0,
                  fade_s: float = 0.005) -> np.ndarray:
    """Remove DC offset and rumble below ~70 Hz from the sounding part of `audio`, fading its edges over 5 ms.

    Voices made from recordings (flite, festival) carry their recordings' DC offset and hum: several festival
    voices end on a constant offset as loud as -19 dB below the speech peak, which energy labels would call
    speech, and others have hum right at the label floor. Digital silence before and after stays exact zeros;
    the edges are extended by reflection before filtering, so the cut to silence does not ring.
    """
    sounding = np.flatnonzero(audio)
    if len(sounding) < 2:
        return audio
    i0, i1 = int(sounding[0]), int(sounding[-1]) + 1
    seg = audio[i0:i1].astype(np.float64)
    pad = min(len(seg) - 1, int(0.1 * sample_rate))
    ext = np.pad(seg, pad, mode="reflect")
    n_fft = 1 << int(np.ceil(np.log2(2 * len(ext))))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    ramp = np.clip((freqs - low_hz) / (high_hz - low_hz), 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * ramp)
    out_seg = np.fft.irfft(np.fft.rfft(ext, n_fft) * gain, n_fft)[pad:pad + len(seg)]
    k = min(int(fade_s * sample_rate), len(out_seg) // 2)
    if k:
        fade = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
        out_seg[:k] *= fade
        out_seg[-k:] *= fade[::-1]
    out = np.zeros(len(audio), np.float32)
    out[i0:i1] = out_seg
    return out


def _espeak(text: str, voice: Voice, sample_rate: int) -> np.ndarray:
    # a leading '-' would be read as an option
    return tts.synthesize(" " + text if text.startswith("-") else text,
                          tts.EspeakVoice(voice.voice, voice.variant, voice.rate_wpm, voice.pitch,
                                          voice.word_gap_10ms), sample_rate)


def _festival(text: str, voice: Voice, sample_rate: int) -> np.ndarray:
    info = _FESTIVAL_VOICES.get(voice.voice, _FESTIVAL_UNKNOWN)
    try:
        data = text.encode(info.encoding)
    except UnicodeEncodeError:
        raise ConfigError(f"TTS voice {voice.name} ({voice.language}) cannot speak {text[:40]!r}: "
                          f"its text must fit {info.encoding}") from None
    stretch = float(voice.duration_stretch)
    if info.hts or voice.voice.endswith("_hts"):
        rate = f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {1.0 / stretch:.4f}))))'
    else:  # relative to the voice's own setting (some voices set 1.4)
        rate = (f"(let ((d (Parameter.get 'Duration_Stretch))) "
                f"(Parameter.set 'Duration_Stretch (* {stretch:.4f} (if d d 1.0))))")
    scheme = f"(begin (voice_{voice.voice}) {rate})"
    return _run_to_wav(voice, sample_rate, data, lambda txt, wav: ["text2wave", "-eval", scheme, "-o", wav, txt])


def _run_to_wav(voice: Voice, sample_rate: int, text_bytes: bytes, command) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="fdvad_tts_") as tmp:
        txt, wav = str(Path(tmp) / "text.txt"), str(Path(tmp) / "out.wav")
        Path(txt).write_bytes(text_bytes + b"\n")
        try:
            proc = subprocess.run(command(txt, wav), capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"TTS voice {voice.name} took over 120 s; give it shorter text") from None
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0 or "SIOD ERROR" in err or not os.path.exists(wav) or os.path.getsize(wav) <= 44:
            reason = " ".join(err.split())[:200] or "no audio"
            raise ConfigError(f"TTS voice {voice.name} failed to speak {text_bytes[:40]!r}: {reason}")
        return load_audio(wav, sample_rate)


# ------------------------------------------------------------------------------------------ random + styles


def random_voice(rng: random.Random, languages: Iterable[str] | None = None, engines: Iterable[str] | None = None,
                 exclude_base: Iterable[Voice | str] = (), include_unreliable: bool = False) -> Voice:
    """A random installed voice with random natural speaking parameters.

    The engine is drawn uniformly among the usable ones, then a language of that engine, then a base voice,
    so that the few natural-sounding flite/festival voices are not drowned by espeak-ng's thousands.
    `languages` filters by code or primary subtag; `exclude_base` holds base voices (or their names) to avoid.
    Voices in UNRELIABLE_LABELS are skipped unless `include_unreliable`.
    """
    excluded = {v.name if isinstance(v, Voice) else str(v) for v in exclude_base}
    if not include_unreliable:
        excluded |= UNRELIABLE_LABELS
    wanted = list(languages) if languages is not None else None
    engine_list = list(engines) if engines is not None else list(ENGINES)
    for e in engine_list:
        if e not in ENGINES:
            raise ConfigError(f"unknown TTS engine {e!r}; available: {', '.join(ENGINES)}")
    by_engine: dict[str, dict[str, list[Voice]]] = {}
    for e in engine_list:
        for v in list_voices(e):
            if v.name in excluded or (wanted is not None and not any(_language_matches(v, w) for w in wanted)):
                continue
            by_engine.setdefault(e, {}).setdefault(v.language, []).append(v)
    if not by_engine:
        installed = [e for e in engine_list if engine_installed(e)]
        if not installed:
            missing = " ".join(ENGINE_PACKAGES[e] for e in engine_list)
            raise FdvadError(f"no TTS engine is installed: apt-get install {missing}")
        raise ConfigError(f"no TTS voice for languages {wanted} with engines {engine_list} once "
                          f"{len(excluded)} excluded voices are removed; available: {_available_summary()}")
    engine = rng.choice(sorted(by_engine))
    language = rng.choice(sorted(by_engine[engine]))
    base = rng.choice(by_engine[engine][language])
    return randomize(base, rng)


def randomize(voice: Voice, rng: random.Random) -> Voice:
    """`voice` with random rate/pitch parameters within its engine's natural range."""
    if voice.engine == "espeak":
        return replace(voice, rate_wpm=rng.randint(*ESPEAK_RATE_WPM), pitch=rng.randint(*ESPEAK_PITCH),
                       word_gap_10ms=rng.choice(ESPEAK_WORD_GAPS))
    stretch = round(rng.uniform(*DURATION_STRETCH), 3)
    if voice.engine == "flite":
        f0 = 1.0 if voice.voice in _FLITE_FIXED_PITCH else round(rng.uniform(*FLITE_F0_SCALE), 3)
        return replace(voice, duration_stretch=stretch, f0_scale=f0)
    return replace(voice, duration_stretch=stretch)


def styled(voice: Voice, style: str) -> Voice:
    """`voice` in a speaking style.

    - ``normal``: unchanged.
    - ``whisper``: espeak-ng's whisper variants (whisperf for female variants); other engines cannot whisper
      (ConfigError). Quiet speech is the mixer's job: a low gain on any voice.
    - ``fast`` / ``slow``: for quick dialogue turns or careful speech (~1.45x / ~0.7x the speaking rate).
    Shouting is also the mixer's job (high gain into clipping): no engine here changes vocal effort.
    """
    if style == "normal":
        return voice
    if style == "whisper":
        if voice.engine != "espeak":
            raise ConfigError(f"style 'whisper' needs an espeak voice, not {voice.name}")
        female = voice.variant is not None and (voice.variant.startswith("f") or voice.variant in _FEMALE_VARIANTS)
        return replace(voice, variant="whisperf" if female else "whisper")
    if style in ("fast", "slow"):
        factor = 1.45 if style == "fast" else 0.7
        if voice.engine == "espeak":
            return replace(voice, rate_wpm=int(min(450, max(80, round(voice.rate_wpm * factor)))))
        return replace(voice, duration_stretch=round(voice.duration_stretch / factor, 3))
    raise ConfigError(f"unknown speaking style {style!r}; available: {', '.join(STYLES)}")


_FEMALE_VARIANTS = {"Alicia", "Andrea", "Annie", "belinda", "grandma", "linda", "steph", "whisperf", "aunty"}


def speak(text: str, voice: Voice, style: str = "normal", sample_rate: int = 16000) -> np.ndarray:
    """`synthesize` in a speaking style (see `styled`)."""
    return synthesize(text, styled(voice, style), sample_rate)


def voice_counts(voices: Sequence[Voice] | None = None) -> dict[str, dict[str, int]]:
    """Base voices per engine and primary language."""
    counts: dict[str, dict[str, int]] = {}
    for v in list_voices() if voices is None else voices:
        per = counts.setdefault(v.engine, {})
        per[v.primary_language] = per.get(v.primary_language, 0) + 1
    return counts
