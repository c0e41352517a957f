"""Labelled recordings built from clean TTS utterances and generated noise: the ground truth for tests,
benchmarks and the first default model.

Labels are 10 ms frames computed on the clean speech before mixing, so they are exact whatever the noise.
Held-out voices and sentences (`TEST_VARIANTS`, the last sentence of every language) never appear in
training scenes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from .noise import make_noise
from .texts import SENTENCES, pseudo_sentence, short_word
from .tts import VARIANTS, EspeakVoice, frames_to_spans, speech_frames, synthesize

SAMPLE_RATE = 16000
FRAME_S = 0.01
FRAME_LEN = 160
TEST_VARIANTS = ("m7", "f4", "klatt3", "Annie", "john", "victor")
TRAIN_VARIANTS = tuple(v for v in VARIANTS if v not in TEST_VARIANTS)


@dataclass
class Utterance:
    audio: np.ndarray  # clean speech, float32 16 kHz
    frames: np.ndarray  # bool speech label per 10 ms frame
    voice: str
    text: str


@dataclass
class Recording:
    audio: np.ndarray  # the mixture, float32 16 kHz
    frames: np.ndarray  # bool speech label per 10 ms frame
    utterance_spans: list[tuple[float, float]] = field(default_factory=list)  # first..last speech frame of each

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def split_sentences(split: str) -> dict[str, list[str]]:
    """'train': all but the last sentence of each language; 'test': the last one."""
    if split == "test":
        return {lang: s[-1:] for lang, s in SENTENCES.items()}
    return {lang: s[:-1] for lang, s in SENTENCES.items()}


def random_voice(rng: random.Random, split: str = "train", language: str | None = None) -> EspeakVoice:
    variants = TEST_VARIANTS if split == "test" else TRAIN_VARIANTS
    return EspeakVoice(language=language or rng.choice(sorted(SENTENCES)), variant=rng.choice(variants),
                       rate_wpm=rng.randint(110, 230), pitch=rng.randint(15, 85),
                       word_gap_10ms=rng.choice([0, 0, 0, 1, 3, 6]))


def random_text(language: str, rng: random.Random, split: str = "train") -> str:
    r = rng.random()
    if split == "train" and r < 0.15:
        return short_word(language, rng)
    if split == "train" and r < 0.45:
        return pseudo_sentence(language, rng)
    return rng.choice(split_sentences(split)[language])


def make_utterance(text: str, voice: EspeakVoice) -> Utterance:
    audio = synthesize(text, voice, SAMPLE_RATE)
    return Utterance(audio=audio, frames=speech_frames(audio, SAMPLE_RATE, FRAME_S), voice=voice.name, text=text)


def active_power(signal: np.ndarray, frames: np.ndarray) -> float:
    """Mean power of `signal` over the labelled speech frames (the whole signal when none are labelled)."""
    mask = np.repeat(frames, FRAME_LEN)[: len(signal)]
    sel = signal[: len(mask)][mask] if mask.any() else signal
    return float(np.mean(sel.astype(np.float64) ** 2)) if len(sel) else 0.0


def mix_at_snr(speech: np.ndarray, frames: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + noise scaled so that active-speech power over noise power is `snr_db`."""
    p_speech = active_power(speech, frames)
    p_noise = float(np.mean(noise.astype(np.float64) ** 2))
    if p_speech == 0.0 or p_noise == 0.0:
        return (speech + noise * 0.01).astype(np.float32)
    gain = np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return (speech + gain * noise).astype(np.float32)


def place(utterances: list[Utterance], gaps_s: list[float], lead_s: float, tail_s: float) -> Recording:
    """Concatenate utterances with silences between them; labels follow the clean speech."""
    pieces, labels, spans = [], [], []
    pos = int(round(lead_s / FRAME_S))
    pieces.append(np.zeros(pos * FRAME_LEN, np.float32))
    labels.append(np.zeros(pos, bool))
    for i, utt in enumerate(utterances):
        n_frames = len(utt.frames)
        audio = np.zeros(n_frames * FRAME_LEN, np.float32)
        audio[: len(utt.audio)] = utt.audio
        pieces.append(audio)
        labels.append(utt.frames)
        idx = np.flatnonzero(utt.frames)
        if len(idx):
            spans.append((round((pos + idx[0]) * FRAME_S, 2), round((pos + idx[-1] + 1) * FRAME_S, 2)))
        pos += n_frames
        gap = int(round((gaps_s[i] if i < len(gaps_s) else tail_s) / FRAME_S))
        pieces.append(np.zeros(gap * FRAME_LEN, np.float32))
        labels.append(np.zeros(gap, bool))
        pos += gap
    return Recording(np.concatenate(pieces), np.concatenate(labels), spans)


def make_test_recording(seed: int = 0, n_utterances: int = 8, snr_db: float = 10.0, min_gap_s: float = 1.0,
                        max_gap_s: float = 2.5, noise_kind: str = "pink", languages: list[str] | None = None,
                        target_duration_s: float | None = None) -> Recording:
    """Held-out espeak-ng voices speaking held-out sentences, separated by >= `min_gap_s` of noise at `snr_db`.

    With `target_duration_s`, utterances are added until the recording is at least that long.
    """
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    languages = languages or sorted(SENTENCES)
    utterances: list[Utterance] = []
    total = 0.0
    while (len(utterances) < n_utterances) if target_duration_s is None else (total < target_duration_s):
        lang = languages[len(utterances) % len(languages)]
        utt = make_utterance(rng.choice(split_sentences("test")[lang]), random_voice(rng, "test", lang))
        utterances.append(utt)
        total += len(utt.audio) / SAMPLE_RATE + (min_gap_s + max_gap_s) / 2
    gaps = [rng.uniform(min_gap_s, max_gap_s) for _ in utterances]
    rec = place(utterances, gaps[:-1], lead_s=rng.uniform(min_gap_s, max_gap_s), tail_s=gaps[-1])
    noise = make_noise(noise_kind, len(rec.audio), np_rng, SAMPLE_RATE)
    rec.audio = mix_at_snr(rec.audio, rec.frames, noise, snr_db)
    peak = np.abs(rec.audio).max()
    if peak > 0.99:
        rec.audio = (rec.audio * (0.99 / peak)).astype(np.float32)
    return rec


def spans_of(frames: np.ndarray) -> list[tuple[float, float]]:
    return frames_to_spans(frames, FRAME_S)


def random_scene(pool: list[Utterance], rng: np.random.Generator, duration_s: float = 4.0) -> Recording:
    """A training crop: 0-3 utterances from `pool` at random places over generated background noise,
    random speech level and SNR (-5..30 dB); 10% noise-only crops, 15% band-limited, 5% clipped,
    30% with 0.1-1.5 s of digital silence at the start, the end or inside."""
    from .noise import NOISE_KINDS

    n = int(round(duration_s * SAMPLE_RATE))
    n_frames = n // FRAME_LEN
    speech = np.zeros(n, np.float32)
    frames = np.zeros(n_frames, bool)
    n_utt = 0 if rng.random() < 0.1 else int(rng.integers(1, 4))
    pos = int(rng.integers(-n // 2, n // 2)) if n_utt else 0
    pos -= pos % FRAME_LEN
    for _ in range(n_utt):
        utt = pool[int(rng.integers(len(pool)))]
        length = len(utt.frames) * FRAME_LEN
        a, b = max(pos, 0), min(pos + length, n)
        if b > a:
            audio = np.zeros(length, np.float32)
            audio[: len(utt.audio)] = utt.audio
            speech[a:b] += audio[a - pos: b - pos]
            frames[a // FRAME_LEN: b // FRAME_LEN] |= utt.frames[(a - pos) // FRAME_LEN: (b - pos) // FRAME_LEN]
        pos += length + FRAME_LEN * int(rng.uniform(0.05, 1.5) / FRAME_S)
        if pos >= n:
            break
    level_db = rng.uniform(-40, -3)  # peak level of the speech
    peak = np.abs(speech).max()
    if peak > 0:
        speech *= 10 ** (level_db / 20) / peak
    kinds = list(rng.choice(NOISE_KINDS, size=1 + int(rng.random() < 0.3), replace=False))
    noise = sum(make_noise(str(k), n, rng, SAMPLE_RATE) * rng.uniform(0.3, 1.0) for k in kinds)
    if rng.random() < 0.1:  # near-silent background: only a faint hiss
        mix = speech + make_noise("white", n, rng, SAMPLE_RATE) * 10 ** (rng.uniform(-80, -55) / 20)
    elif frames.any():
        mix = mix_at_snr(speech, frames, noise, rng.uniform(-5, 30))
    else:
        mix = (noise * 10 ** (rng.uniform(-50, -10) / 20)).astype(np.float32)
    if rng.random() < 0.15:  # telephone / 8 kHz round trip: nothing above the cut-off
        spec = np.fft.rfft(mix)
        spec[int(len(spec) * rng.choice([3400.0, 4000.0, 5500.0]) / (SAMPLE_RATE / 2)):] = 0
        mix = np.fft.irfft(spec, n)
    if rng.random() < 0.05:
        limit = np.abs(mix).max() * rng.uniform(0.2, 0.7)
        mix = np.clip(mix * 1.0, -limit, limit)
    if rng.random() < 0.3:
        # digital silence where a file starts or ends, or where a video mutes its sound: the model must not
        # mistake the step from noise to zeros for speech
        length = int(rng.uniform(0.1, 1.5) * SAMPLE_RATE) // FRAME_LEN * FRAME_LEN
        where = rng.choice(["head", "tail", "middle"])
        a = 0 if where == "head" else n - length if where == "tail" else int(rng.integers(0, n - length)) // FRAME_LEN * FRAME_LEN
        mix[a:a + length] = 0.0
        frames[a // FRAME_LEN:(a + length) // FRAME_LEN] = False
    peak = np.abs(mix).max()
    if peak > 1.0:
        mix = mix / peak
    return Recording(mix.astype(np.float32), frames)
