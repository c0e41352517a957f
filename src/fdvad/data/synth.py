"""The synthetic VAD corpus builder behind `fdvad data synth` (see docs/data.md).

Every item is planned from its own random generator, seeded from (seed, split, item index) alone, so the same
seed gives the same corpus byte for byte whatever the number of worker processes or the order items are made
in, and a run that was interrupted resumes by making only the missing items.

An item (4-20 s, 16 kHz mono PCM_16 WAV) holds 0-4 TTS utterances (`voices.py`; short words, sentences and
pseudo-sentences from `texts.py`; monologue or fast dialogue turns; quiet and shouted variants) over one or two
non-speech backgrounds (`sources.py`: real recordings, music, generated noise, human non-speech, distant babble)
at -5..30 dB SNR, human non-speech events placed next to the speech, then channel effects (reverb,
band-limiting, 8 kHz round trip, codec round trip, gain, clipping), each with a configurable probability.
Labels are 10 ms frames of the clean speech before mixing (`tts.speech_frames`): written as an RTTM per item
(10 ms resolution) and as 20 ms NeMo frame labels (`corpora.NEMO_FRAME_S`) in the split's manifest.

Splits: train / validation / test never share a speaker (`Voice.speaker`), a sentence or a noise source name;
`test_unseen_language` uses only languages (`UNSEEN_LANGUAGES`) that no other split has.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import multiprocessing
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, FdvadError
from ..fileio import atomic_write, atomic_write_text
from . import sources as src
from .corpora import LABEL_RULES, LabelledAudio, write_window_manifest
from . import texts, voices
from ..vad.formats import format_segments, read_rttm
from ..vad.segment import Segment
from .tts import frames_to_spans, speech_frames

SAMPLE_RATE = 16000
FRAME_S = 0.01
FRAME_LEN = 160
MANIFEST_FRAME_S = 0.02  # labels in the manifest: NeMo's frame-VAD 20 ms frames
SPLITS = ("train", "validation", "test", "test_unseen_language")
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.07, "test": 0.07, "test_unseen_language": 0.06}
UNSEEN_LANGUAGES = ("sw", "id", "ro")
# espeak-ng speakers are its voice variants (the timbre): these go to validation / test, the rest to train
VALIDATION_VARIANTS = ("m6", "f5", "klatt4", "Andrea", "max")
TEST_VARIANTS = ("m7", "f4", "klatt3", "Annie", "john", "victor")  # as scenes.TEST_VARIANTS
MEAN_ITEM_S = 12.0
PROGRESS_FILE = "progress.json"
WINDOW_MANIFEST = "windows.json"
FORMAT_VERSION = 2  # 2: procedural noise kinds in every split

DEFAULT_EFFECTS = {"reverb": 0.2, "bandlimit": 0.12, "resample8k": 0.1, "codec": 0.2, "gain": 0.3, "clip": 0.05}
CODECS = {"mp3": ("mp3", "libmp3lame", (16, 24, 32)), "opus": ("ogg", "libopus", (12, 16, 24)),
          "aac": ("adts", "aac", (24, 32))}
NOISE_KIND_WEIGHTS = {"real": 0.35, "music": 0.2, "generated": 0.2, "human": 0.1, "babble": 0.15}
KINDS_ALL = tuple(NOISE_KIND_WEIGHTS)
HUMAN_NEAR_SPEECH = ("breath_in", "breath_out", "lip_smack", "tongue_click", "cough", "laughter", "sniff")


@dataclass
class SynthConfig:
    seed: int = 0
    effects: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EFFECTS))
    engines: tuple[str, ...] | None = None  # None: every installed engine
    voice_names: tuple[str, ...] | None = None  # restrict to these base voices
    noise_kinds: tuple[str, ...] | None = None  # restrict the non-speech to these kinds (None: all five)
    min_s: float = 4.0
    max_s: float = 20.0

    def fingerprint(self) -> str:
        """What decides the bytes of an item (not how many items there are)."""
        fields = asdict(self)
        if fields["noise_kinds"] is None:  # corpora made before the option existed keep their fingerprint
            del fields["noise_kinds"]
        data = json.dumps({"v": FORMAT_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(data.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ splits


def _unit(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2 ** 64


def _hash_split(key: str) -> str:
    u = _unit("split:" + key)
    return "train" if u < 0.8 else "validation" if u < 0.9 else "test"


def _split_family(split: str) -> str:
    """test_unseen_language draws speakers and noises from the test pool."""
    return "test" if split == "test_unseen_language" else split


def speaker_split(voice: voices.Voice) -> str:
    if voice.engine == "espeak":
        return ("validation" if voice.variant in VALIDATION_VARIANTS else
                "test" if voice.variant in TEST_VARIANTS else "train")
    return _hash_split("speaker:" + voice.speaker)


# Procedural sources are generators, not recordings: every excerpt is a fresh random draw from the item's own
# generator, so no two splits can share one. They serve every split (babble's talkers already exclude the test
# speakers); splitting their ~20 names by hash left the held-out splits without whole kinds.
PROCEDURAL_KINDS = ("generated", "human", "babble")


def noise_split(source: src.NoiseSource) -> str:
    """The split family of a recorded source (by a hash of its name), or "all" for a procedural one."""
    if source.kind in PROCEDURAL_KINDS:
        return "all"
    return _hash_split("noise:" + source.name)


def sentence_split(index: int, n: int) -> str:
    """The last sentence of a language is test, the one before validation (as scenes.split_sentences)."""
    return "test" if index == n - 1 else "validation" if index == n - 2 and n >= 3 else "train"


def split_languages(split: str) -> list[str]:
    langs = sorted(texts.SENTENCES)
    if split == "test_unseen_language":
        return [lang for lang in langs if lang in UNSEEN_LANGUAGES]
    return [lang for lang in langs if lang not in UNSEEN_LANGUAGES]


def _texts_for(split: str, language: str) -> list[tuple[str, str]]:
    """(text id, text) of the sentences and short words a split may use in `language`."""
    fam = _split_family(split)
    out = []
    sents = texts.SENTENCES[language]
    for i, s in enumerate(sents):
        if split == "test_unseen_language" or sentence_split(i, len(sents)) == fam:
            out.append((f"{language}:s{i}", s))
    return out


def _words_for(split: str, language: str) -> list[tuple[str, str]]:
    words = texts._SHORT_WORDS.get(language, [])
    fam = _split_family(split)
    return [(f"{language}:w:{w}", w) for i, w in enumerate(words)
            if split == "test_unseen_language" or sentence_split(i, len(words)) == fam]


# ------------------------------------------------------------------------------------------------ pools


@dataclass
class Pools:
    voices: dict[str, dict[str, dict[str, list[voices.Voice]]]]  # split -> language -> engine -> base voices
    noises: dict[str, dict[str, list[src.NoiseSource]]]  # split family -> kind -> sources


def build_pools(config: SynthConfig) -> Pools:
    """Voices and noise sources per split; FdvadError/ConfigError for unknown or missing engines and voices."""
    engines = list(config.engines) if config.engines else None
    if engines is not None:
        for e in engines:
            if e not in voices.ENGINES:
                raise ConfigError(f"unknown TTS engine {e!r}; available: {', '.join(voices.ENGINES)}")
            voices._require_engine(e)
    if config.voice_names:
        base = [voices.get_voice(n) for n in config.voice_names]
    else:
        base = [v for e in (engines or voices.available_engines()) for v in voices.list_voices(e)
                if v.name not in voices.UNRELIABLE_LABELS]
    if not base:
        raise FdvadError("no TTS voice is installed: apt-get install espeak-ng")
    pools_v: dict = {}
    for split in SPLITS:
        fam = _split_family(split)
        per: dict = {}
        for lang in split_languages(split):
            for v in base:
                if voices._language_matches(v, lang) and speaker_split(v) == fam:
                    per.setdefault(lang, {}).setdefault(v.engine, []).append(v)
        if not per:
            raise ConfigError(f"no TTS voice for split {split} (languages {', '.join(split_languages(split))}) "
                              "among the chosen voices; choose voices of more speakers and languages")
        pools_v[split] = per
    pools_n: dict = {}
    if config.noise_kinds is not None:
        unknown = set(config.noise_kinds) - set(NOISE_KIND_WEIGHTS)
        if unknown or not config.noise_kinds:
            raise ConfigError(f"unknown noise kind(s) {sorted(unknown)}; known: {', '.join(NOISE_KIND_WEIGHTS)}")
    all_sources = src.list_sources(config.noise_kinds)
    for fam in ("train", "validation", "test"):
        per_kind: dict = {}
        for s in all_sources:
            if noise_split(s) in (fam, "all"):
                per_kind.setdefault(s.kind, []).append(s)
        if not per_kind:
            raise ConfigError(f"no non-speech source of the kinds {', '.join(config.noise_kinds or KINDS_ALL)} "
                              f"is installed for the {fam} split; `make data-deps` installs the packages")
        pools_n[fam] = per_kind
    return Pools(pools_v, pools_n)


# ------------------------------------------------------------------------------------------------ items


def item_rngs(seed: int, split: str, index: int) -> tuple[random.Random, np.random.Generator]:
    digest = hashlib.sha256(f"fdvad-synth:{seed}:{split}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big")), np.random.default_rng(list(digest[16:32]))


def item_id(split: str, index: int) -> str:
    return f"{split}-{index:06d}"


@dataclass
class Item:
    audio: np.ndarray  # float32 in [-1, 1], length a multiple of FRAME_LEN
    frames: np.ndarray  # bool per 10 ms
    meta: dict
    clean: np.ndarray | None = None  # the placed speech alone (before human sounds, noise and effects)


def _pick_voice(rng: random.Random, pools: Pools, split: str, language: str) -> voices.Voice:
    per = pools.voices[split][language]
    engine = rng.choice(sorted(per))
    return voices.randomize(rng.choice(per[engine]), rng)


def _pick_text(rng: random.Random, split: str, language: str) -> tuple[str, str]:
    r = rng.random()
    words = _words_for(split, language)
    if r < 0.2 and words:
        return rng.choice(words)
    if r < 0.5:
        text = texts.pseudo_sentence(language, rng)
        return f"{language}:pseudo:{hashlib.sha256(text.encode()).hexdigest()[:10]}", text
    sents = _texts_for(split, language)
    return rng.choice(sents) if sents else (f"{language}:pseudo:x", texts.pseudo_sentence(language, rng))


def _speak(rng: random.Random, pools: Pools, split: str, language: str, voice: voices.Voice | None):
    """(voice, text id, audio); a voice that cannot speak the text is replaced by another (3 tries)."""
    last: Exception | None = None
    for _ in range(4):
        v = voice if voice is not None else _pick_voice(rng, pools, split, language)
        tid, text = _pick_text(rng, split, language)
        try:
            return v, tid, voices.synthesize(text, v, SAMPLE_RATE)
        except ConfigError as e:  # e.g. a festival voice that cannot spell a pseudo-word
            last, voice = e, None
    raise ConfigError(f"no voice could speak {language} text for split {split}: {last}")


def make_item(split: str, index: int, config: SynthConfig, pools: Pools) -> Item:
    rng, nrng = item_rngs(config.seed, split, index)
    target_frames = int(round(rng.uniform(config.min_s, config.max_s) / FRAME_S))
    max_frames = int(round(config.max_s / FRAME_S))
    language = rng.choice(sorted(pools.voices[split]))
    n_utt = rng.choices([0, 1, 2, 3, 4], weights=[0.12, 0.33, 0.25, 0.18, 0.12])[0]
    dialogue = n_utt >= 2 and rng.random() < 0.3
    turn_voices = [_pick_voice(rng, pools, split, language) for _ in range(2)] if dialogue else []

    utts = []  # (start frame, audio, frames, voice, text id, style, gain)
    pos = int(round(rng.uniform(0.0, 1.5) / FRAME_S))
    for k in range(n_utt):
        voice, tid, audio = _speak(rng, pools, split, language, turn_voices[k % 2] if dialogue else None)
        fr = speech_frames(audio, SAMPLE_RATE, FRAME_S)
        if pos + len(fr) + 20 > max_frames:
            break
        r = rng.random()
        style = "quiet" if r < 0.1 else "shouted" if r < 0.17 else "normal"
        gain_db = rng.uniform(-30, -18) if style == "quiet" else rng.uniform(8, 16) if style == "shouted" \
            else rng.uniform(-6, 0)
        utts.append((pos, audio, fr, voice, tid, style, gain_db))
        gap = rng.uniform(0.05, 0.4) if dialogue else rng.uniform(0.3, 3.0)
        pos += len(fr) + int(round(gap / FRAME_S))
    n_frames = min(max_frames, max(target_frames, pos + int(round(rng.uniform(0.2, 1.0) / FRAME_S)))) \
        if utts else target_frames
    n = n_frames * FRAME_LEN
    speech = np.zeros(n, np.float32)
    frames = np.zeros(n_frames, bool)
    for start, audio, fr, _, _, style, gain_db in utts:
        x = audio / max(float(np.abs(audio).max()), 1e-6) * 0.5 * 10 ** (gain_db / 20)
        if style == "shouted":
            x = np.clip(x, -0.5, 0.5)  # vocal effort beyond the channel: clipped before the noise
        a = start * FRAME_LEN
        m = min(len(x), n - a)
        speech[a:a + m] += x[:m].astype(np.float32)
        f = min(len(fr), n_frames - start)
        frames[start:start + f] |= fr[:f]

    clean = speech.copy()
    fam = _split_family(split)
    noises: list[src.NoiseSource] = []
    # human non-speech right next to the speech (labelled non-speech)
    human_events = []
    humans = [s for s in pools.noises[fam].get("human", []) if s.name.split("human-", 1)[1] in HUMAN_NEAR_SPEECH]
    if utts and humans and rng.random() < 0.35:
        for start, _, fr, *_ in utts:
            if rng.random() < 0.6:
                continue
            s = rng.choice(humans)
            ev = src.human_sound(s.name.split("human-", 1)[1], nrng, SAMPLE_RATE)
            idx = np.flatnonzero(fr)
            if not len(idx):
                continue
            before = rng.random() < 0.5
            gap = int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
            a = (start + idx[0]) * FRAME_LEN - gap - len(ev) if before else (start + idx[-1] + 1) * FRAME_LEN + gap
            a0, a1 = a // FRAME_LEN, -(-(a + len(ev)) // FRAME_LEN)
            if a < 0 or a + len(ev) > n or frames[a0:a1].any():
                continue
            level = 10 ** (rng.uniform(-26, -8) / 20) * 0.5
            speech[a:a + len(ev)] += (ev * level).astype(np.float32)
            human_events.append({"source": s.name, "start_s": round(a / SAMPLE_RATE, 3)})
            if s not in noises:
                noises.append(s)

    # background
    kinds = [k for k in NOISE_KIND_WEIGHTS if pools.noises[fam].get(k)]
    background = np.zeros(n, np.float64)
    babble_db = None
    n_bg = 1 + int(rng.random() < 0.3)
    bg_sources = []
    for _ in range(n_bg):
        kind = rng.choices(kinds, weights=[NOISE_KIND_WEIGHTS[k] for k in kinds])[0]
        s = rng.choice(pools.noises[fam][kind])
        x = src.load_excerpt(s, n, nrng, SAMPLE_RATE).astype(np.float64)
        if kind == "babble":  # far below the foreground (sources.BABBLE_DEFAULT): mixed on its own
            bg_sources.append((s, x, True))
        else:
            background += x * rng.uniform(0.4, 1.0)
            bg_sources.append((s, x, False))
        noises.append(s)
    snr_db = round(rng.uniform(-5.0, 30.0), 2)
    mask = np.repeat(frames, FRAME_LEN)
    p_speech = float(np.mean(speech[mask].astype(np.float64) ** 2)) if mask.any() else 0.0
    mix = speech.astype(np.float64)
    p_bg = float(np.mean(background ** 2))
    if p_speech > 0:
        if p_bg > 0:
            mix += background * math.sqrt(p_speech / (p_bg * 10 ** (snr_db / 10)))
        for s, x, is_babble in bg_sources:
            if is_babble:
                babble_db = round(rng.uniform(src.BABBLE_DEFAULT["min_db_below_foreground"], 35.0), 2)
                mix += x * math.sqrt(p_speech / (float(np.mean(x ** 2)) * 10 ** (babble_db / 10)))
        if p_bg == 0 and babble_db is not None:
            snr_db = babble_db  # babble was the only background
    else:
        snr_db = None
        level = 10 ** (rng.uniform(-45, -12) / 20)
        total = background + sum(x for _, x, b in bg_sources if b)
        rms = math.sqrt(float(np.mean(total ** 2))) or 1.0
        mix += total * level / rms

    mix, effects, codec = _channel(mix, rng, nrng, config.effects)
    peak = float(np.abs(mix).max())
    if "gain" not in effects and "clip" not in effects and peak > 0:
        mix *= 10 ** (rng.uniform(-12, -1) / 20) / peak  # a normal recording level
    mix = np.clip(mix, -1.0, 1.0).astype(np.float32)

    meta = {
        "split": split, "item": item_id(split, index), "language": language,
        "voice": [u[3].name for u in utts], "speaker": [u[3].speaker for u in utts],
        "engine": [u[3].engine for u in utts], "voice_params": [u[3].params() for u in utts],
        "voice_package": [u[3].package for u in utts], "voice_licence": [u[3].licence for u in utts],
        "text_id": [u[4] for u in utts], "style": [u[5] for u in utts],
        "utterance_start_s": [round(u[0] * FRAME_S, 2) for u in utts],
        "dialogue": dialogue,
        "noise": [s.name for s in noises], "noise_kind": [s.kind for s in noises],
        "noise_category": [s.category for s in noises], "noise_package": [s.package for s in noises],
        "noise_licence": [s.licence for s in noises], "human_events": human_events,
        "snr_db": snr_db, "babble_db_below_speech": babble_db,
        "babble_label": src.BABBLE_DEFAULT["label"] if babble_db is not None else None,
        "effects": effects, "codec": codec,
    }
    return Item(mix, frames, meta, clean)


# ------------------------------------------------------------------------------------------------ channel


def _channel(x: np.ndarray, rng: random.Random, nrng: np.random.Generator, probs: dict[str, float]):
    effects: dict[str, dict] = {}
    codec = "none"
    n = len(x)
    if rng.random() < probs.get("reverb", 0.0):
        rt60 = round(rng.uniform(0.15, 0.9), 3)
        x = reverb(x, rt60, nrng)
        effects["reverb"] = {"rt60_s": rt60}
    if rng.random() < probs.get("bandlimit", 0.0):
        low, high = rng.choice([(300.0, 3400.0), (100.0, 4000.0), (50.0, 5500.0), (200.0, 7000.0)])
        spec = np.fft.rfft(x)
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        spec[(f < low) | (f > high)] = 0
        x = np.fft.irfft(spec, n)
        effects["bandlimit"] = {"low_hz": low, "high_hz": high}
    if rng.random() < probs.get("resample8k", 0.0):
        from scipy.signal import resample_poly
        x = resample_poly(resample_poly(x, 1, 2), 2, 1)[:n]
        effects["resample8k"] = {}
    peak = float(np.abs(x).max())
    if peak > 0:
        x = x * (0.5 / peak)
    if rng.random() < probs.get("codec", 0.0):
        name = rng.choice(sorted(CODECS))
        kbps = rng.choice(CODECS[name][2])
        x = codec_round_trip(x, name, kbps)
        codec = f"{name}@{kbps}k"
        effects["codec"] = {"codec": name, "kbps": kbps}
    if rng.random() < probs.get("gain", 0.0):
        db = round(rng.uniform(-30.0, 12.0), 2)
        x = x * 10 ** (db / 20)
        effects["gain"] = {"db": db}
    if rng.random() < probs.get("clip", 0.0):
        frac = round(rng.uniform(0.1, 0.6), 3)
        limit = float(np.abs(x).max()) * frac
        x = np.clip(x, -limit, limit) * (0.9 / max(limit, 1e-9))
        effects["clip"] = {"at_fraction_of_peak": frac}
    return x, effects, codec


def reverb(x: np.ndarray, rt60_s: float, rng: np.random.Generator) -> np.ndarray:
    """Convolution with an exponentially decaying noise impulse response (direct path at 0: no shift)."""
    length = int(min(rt60_s, 1.0) * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    rir = rng.standard_normal(length) * np.exp(-6.9 * t / rt60_s) * 0.3
    rir[0] = 1.0
    rir[1:int(0.002 * SAMPLE_RATE)] = 0.0  # the first reflections arrive after 2 ms
    from scipy.signal import fftconvolve
    return fftconvolve(x, rir)[: len(x)]


def codec_round_trip(x: np.ndarray, name: str, kbps: int) -> np.ndarray:
    """Encode with PyAV and decode back, re-aligned to `x` sample for sample (codec delay removed by
    cross-correlation) and cut or zero-padded to its length."""
    import av

    fmt, codec_name, _ = CODECS[name]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec_name, rate=SAMPLE_RATE)
        stream.bit_rate = kbps * 1000
        stream.layout = "mono"
        frame_size = stream.codec_context.frame_size or 1024
        pcm = np.clip(x, -1, 1).astype(np.float32)
        fmt_name = stream.codec_context.format.name if stream.codec_context.format else "fltp"
        for i in range(0, len(pcm), frame_size):
            chunk = pcm[i:i + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            arr = chunk[None, :]
            if fmt_name.startswith("s16"):
                arr = np.round(arr * 32767).astype(np.int16)
            elif fmt_name.startswith("s32"):
                arr = np.round(arr.astype(np.float64) * 2147483647).astype(np.int32)
            elif fmt_name.startswith("dbl"):
                arr = arr.astype(np.float64)
            frame = av.AudioFrame.from_ndarray(arr, format=fmt_name, layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    buf.seek(0)
    pieces = []
    with av.open(buf, "r") as inp:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in inp.decode(audio=0):
            for f in resampler.resample(frame):
                pieces.append(f.to_ndarray().reshape(-1))
        for f in resampler.resample(None):
            pieces.append(f.to_ndarray().reshape(-1))
    y = np.concatenate(pieces).astype(np.float64) if pieces else np.zeros(0)
    lag = _delay(x, y, max_lag=4096)
    y = y[lag:lag + len(x)] if lag >= 0 else np.concatenate([np.zeros(-lag), y])[: len(x)]
    return np.pad(y, (0, len(x) - len(y)))


def _delay(x: np.ndarray, y: np.ndarray, max_lag: int) -> int:
    """The lag (samples) by which y trails x, within [-max_lag, max_lag], from FFT cross-correlation."""
    m = min(len(x), len(y))
    if m == 0:
        return 0
    size = 1 << int(math.ceil(math.log2(len(x) + len(y))))
    c = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    vals = np.concatenate([c[: max_lag + 1], c[-max_lag:]])
    return int(lags[int(np.argmax(vals))])


# ------------------------------------------------------------------------------------------------ writing


def manifest_labels(frames: np.ndarray) -> list[int]:
    """20 ms labels from 10 ms frames by corpora.frame_labels' rule (speech covers more than half a frame)."""
    from .corpora import LabelledAudio, frame_labels, frames_to_segments

    duration = len(frames) * FRAME_S
    item = LabelledAudio("", 0.0, duration, frames_to_segments(frames, FRAME_S, duration))
    return [int(v) for v in frame_labels(item, MANIFEST_FRAME_S)]


def write_item(out: Path, split: str, index: int, item: Item) -> dict:
    import soundfile as sf

    ident = item_id(split, index)
    folder = out / split
    wav = folder / f"{ident}.wav"
    rttm = folder / "rttm" / f"{ident}.rttm"
    pcm = np.round(item.audio * 32767).astype(np.int16)
    atomic_write(wav, lambda tmp: sf.write(str(tmp), pcm, SAMPLE_RATE, subtype="PCM_16", format="WAV"))
    speech = [Segment(a, b) for a, b in frames_to_spans(item.frames, FRAME_S)]
    atomic_write_text(rttm, format_segments(speech, "rttm", wav))
    entry = {"audio_filepath": f"{ident}.wav", "offset": 0, "duration": round(len(pcm) / SAMPLE_RATE, 2),
             "label": " ".join(map(str, manifest_labels(item.frames))), "rttm_filepath": f"rttm/{ident}.rttm",
             "frame_s": MANIFEST_FRAME_S, **item.meta}
    return entry


# ------------------------------------------------------------------------------------------------ driver


def plan_counts(hours: float | None, items: int | None) -> dict[str, int]:
    if items is None:
        if hours is None or not hours > 0:
            raise ConfigError(f"--hours must be > 0, got {hours}")
        items = max(len(SPLITS), int(math.ceil(hours * 3600 / MEAN_ITEM_S)))
    if items < 1:
        raise ConfigError(f"--items must be >= 1, got {items}")
    counts = {s: max(1, int(round(items * SPLIT_FRACTIONS[s]))) for s in SPLITS}
    counts["train"] = max(1, items - sum(v for k, v in counts.items() if k != "train"))
    return counts


_WORKER: dict = {}


def _init_worker(out: str, config: SynthConfig, pools: Pools) -> None:
    _WORKER.update(out=Path(out), config=config, pools=pools)


def _work(task: tuple[str, int]) -> tuple[str, int, dict]:
    split, index = task
    item = make_item(split, index, _WORKER["config"], _WORKER["pools"])
    return split, index, write_item(_WORKER["out"], split, index, item)


def _load_progress(path: Path, fingerprint: str, seed: int) -> dict[int, dict]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} is unreadable ({e}); delete it to rebuild that split") from None
    if data.get("fingerprint") != fingerprint:
        raise ConfigError(f"{path.parent.parent} was made with other settings (seed {data.get('seed')}); "
                          f"choose another --out or the same settings (seed {seed})")
    return {int(k): v for k, v in data.get("items", {}).items()}


def _save_progress(path: Path, fingerprint: str, seed: int, done: dict[int, dict]) -> None:
    data = {"fingerprint": fingerprint, "seed": seed, "items": {str(k): done[k] for k in sorted(done)}}
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")


def _labelled_items(folder: Path, entries: list[dict]) -> list[LabelledAudio]:
    items = []
    for e in entries:
        audio = str((folder / e["audio_filepath"]).resolve())
        speech = [seg for segs in read_rttm(folder / e["rttm_filepath"]).values() for seg in segs]
        items.append(LabelledAudio(audio, 0.0, e["duration"], speech, {}))
    return items


def synthesize_corpus(out: str | os.PathLike, hours: float | None = None, seed: int = 0, jobs: int = 1,
                      items: int | None = None, config: SynthConfig | None = None, progress: bool | None = None,
                      log=None, window_labels: str = "centre") -> dict:
    """Make (or complete) the corpus in `out`; returns {"items", "hours", "seconds", "manifests"}.

    `window_labels` ("centre" or "majority", corpora.WindowDataset) only decides the labels written to each
    split's windows.json; the items do not depend on it."""
    counts = plan_counts(hours, items)
    if window_labels not in LABEL_RULES:
        raise ConfigError(f"--window-labels must be one of {', '.join(LABEL_RULES)}, not {window_labels!r}")
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    config = config or SynthConfig()
    config.seed = seed
    for name, p in config.effects.items():
        if name not in DEFAULT_EFFECTS:
            raise ConfigError(f"unknown effect {name!r}; known: {', '.join(DEFAULT_EFFECTS)}")
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"effect probability {name}={p} must be within 0..1")
    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"the parent folder of --out ({out.parent}) does not exist")
    try:
        out.mkdir(exist_ok=True)
        for split in SPLITS:
            (out / split / "rttm").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the corpus folder {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK):
        raise ConfigError(f"the corpus folder {out} is not writable")
    pools = build_pools(config)
    fingerprint = config.fingerprint()
    done: dict[str, dict[int, dict]] = {}
    tasks = []
    for split in SPLITS:
        done[split] = _load_progress(out / split / PROGRESS_FILE, fingerprint, seed)
        for i in range(counts[split]):
            if i in done[split] and (out / split / done[split][i]["audio_filepath"]).is_file():
                continue
            done[split].pop(i, None)
            tasks.append((split, i))
    start = time.perf_counter()
    made_s = 0.0
    last_save = 0.0
    show = sys.stderr.isatty() if progress is None else progress
    bar = None
    if show:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
        bar = Progress(TextColumn("synth"), BarColumn(), TextColumn("{task.completed}/{task.total} items"),
                       TimeRemainingColumn(), transient=True)
        bar.start()
        task_id = bar.add_task("synth", total=len(tasks))
    try:
        if jobs == 1 or len(tasks) <= 1:
            _init_worker(str(out), config, pools)
            results = map(_work, tasks)
            pool = None
        else:
            pool = multiprocessing.get_context("fork").Pool(jobs, _init_worker, (str(out), config, pools))
            results = pool.imap_unordered(_work, tasks)
        try:
            for split, i, entry in results:
                done[split][i] = entry
                made_s += entry["duration"]
                if bar is not None:
                    bar.advance(task_id)
                now = time.perf_counter()
                if now - last_save > 2.0:
                    _save_progress(out / split / PROGRESS_FILE, fingerprint, seed, done[split])
                    last_save = now
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
            for split in SPLITS:  # also after an interruption: what was made is kept
                _save_progress(out / split / PROGRESS_FILE, fingerprint, seed, done[split])
    finally:
        if bar is not None:
            bar.stop()
    manifests = {}
    total_s = 0.0
    for split in SPLITS:
        entries = [done[split][i] for i in range(counts[split])]
        total_s += sum(e["duration"] for e in entries)
        path = out / split / "manifest.json"
        atomic_write_text(path, "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries))
        manifests[split] = str(path)
        # the 0.63 s window labels as NeMo's segment-VAD manifests hold them, from the exact 10 ms labels
        write_window_manifest(_labelled_items(out / split, entries), out / split / WINDOW_MANIFEST,
                              label_rule=window_labels, overwrite=True)
    elapsed = time.perf_counter() - start
    return {"items": sum(counts.values()), "made": len(tasks), "hours": total_s / 3600,
            "made_hours": made_s / 3600, "seconds": elapsed, "manifests": manifests}
