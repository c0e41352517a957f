"""Generated "episodes" with reference transcripts, for measuring the subtitle pipeline (`fdvad eval-asr`).

An episode is a few minutes of dialogue between two to four speakers (flite voices: recorded from people, and the
voices pocketsphinx's English model recognises best, so the error rates measure the pipeline rather than the
ASR's ignorance of a synthetic accent), with what TV audio has: pauses from a breath to most of a minute, a music
bed under part of the talk and alone in some pauses, steady background noise, and room reverberation in some
episodes. The sentences come from a small English grammar (`sentence`), so no two episodes say the same thing.

`fdvad data episodes --out DIR` writes per episode a WAV, an RTTM of its speech and one line of
`manifest.json`: {"audio_filepath", "duration", "text", "rttm_filepath", "turns": [[start, end, speaker, text]]}.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError

SAMPLE_RATE = 16000
VOICES = ("flite:kal", "flite:slt", "flite:awb", "flite:rms")

_NAMES = ["Anna", "David", "Maria", "Peter", "Sarah", "John", "Laura", "Michael", "Emma", "Thomas"]
_NOUNS = ["car", "letter", "book", "garden", "kitchen", "computer", "train", "ticket", "window", "bread",
          "coffee", "report", "phone", "key", "door", "money", "camera", "bicycle", "river", "bridge"]
_PLACES = ["station", "office", "market", "hospital", "school", "library", "airport", "harbour", "hotel", "bank"]
_ADJECTIVES = ["cold", "broken", "expensive", "new", "quiet", "heavy", "strange", "empty", "beautiful", "late"]
_TIMES = ["tomorrow", "tonight", "next week", "this morning", "on monday", "after lunch", "in the evening",
          "before dinner", "on friday", "at noon"]
_VERBS = ["find", "clean", "sell", "check", "carry", "open", "repair", "paint", "read", "move"]
_TEMPLATES = [
    "{name} said the {noun} was {adj}",
    "can you bring the {noun} to the {place} {time}",
    "we should {verb} the {noun} {time}",
    "I saw {name} near the {place} {time}",
    "the {noun} in the {place} is {adj}",
    "do you know where {name} left the {noun}",
    "please {verb} the {noun} before you go to the {place}",
    "I think the {noun} is too {adj} for us",
    "{name} will meet us at the {place} {time}",
    "nobody wanted to {verb} the {adj} {noun}",
    "why is the {noun} still at the {place}",
    "my sister bought a {adj} {noun} {time}",
    "let us {verb} the {noun} together {time}",
    "the {place} was {adj} when we arrived",
    "I forgot to {verb} the {noun} again",
]


def sentence(rng: random.Random) -> str:
    """One English sentence from the templates (lower case, no punctuation: what ASR references look like)."""
    return rng.choice(_TEMPLATES).format(name=rng.choice(_NAMES).lower(), noun=rng.choice(_NOUNS),
                                         place=rng.choice(_PLACES), adj=rng.choice(_ADJECTIVES),
                                         time=rng.choice(_TIMES), verb=rng.choice(_VERBS))


@dataclass
class Episode:
    audio: np.ndarray
    turns: list[tuple[float, float, str, str]] = field(default_factory=list)  # start, end, speaker, text
    meta: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    @property
    def text(self) -> str:
        return " ".join(t[3] for t in self.turns)


def _speech_bounds(clip: np.ndarray) -> tuple[int, int]:
    """First and last sample of a clip's speech: 10 ms frames within 40 dB of its loudest frame."""
    n = len(clip) // 160 * 160
    level = 10 * np.log10((clip[:n].reshape(-1, 160) ** 2).mean(1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - 40)
    return int(loud[0] * 160), int((loud[-1] + 1) * 160)


def _pause(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.70:
        return rng.uniform(0.3, 1.2)  # turn-taking
    if r < 0.92:
        return rng.uniform(2.0, 8.0)  # a beat
    return rng.uniform(15.0, 45.0)  # a scene change


def _music(seconds: float, seed: int, nrng: np.random.Generator) -> np.ndarray:
    """A rendered MIDI piece when fluidsynth and a soundfont are installed, else chords of sine tones."""
    from ..data import sources

    n = int(seconds * SAMPLE_RATE)
    fonts = sources.find_soundfonts() if sources.fluidsynth_available() else {}
    if fonts:
        piece = sources.render_midi_music(seed % 50, sources.MIDI_SECONDS, sorted(fonts)[0])
        return np.resize(piece, n).astype(np.float32)
    t = np.arange(n) / SAMPLE_RATE
    out = np.zeros(n, np.float32)
    for k in range(0, n, SAMPLE_RATE):  # a new chord every second
        root = 110 * 2 ** (nrng.integers(0, 12) / 12)
        for ratio in (1.0, 1.25, 1.5):
            out[k: k + SAMPLE_RATE] += np.sin(2 * np.pi * root * ratio * t[k: k + SAMPLE_RATE]).astype(np.float32)
    return out / (np.sqrt(np.mean(out ** 2)) + 1e-9)


def make_episode(seed: int, minutes: float = 3.0, n_speakers: int | None = None) -> Episode:
    from ..data.synth import reverb
    from ..data.voices import get_voice, synthesize

    if minutes <= 0:
        raise ConfigError(f"minutes must be > 0, got {minutes}")
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    speakers = rng.sample(VOICES, n_speakers or rng.randint(2, len(VOICES)))
    total = int(minutes * 60 * SAMPLE_RATE)
    speech = np.zeros(total, np.float32)
    turns = []
    t = rng.uniform(1.0, 4.0)
    while True:
        speaker = rng.choice(speakers)
        text = " ".join(sentence(rng) for _ in range(rng.choice([1, 1, 2])))
        clip = synthesize(text, get_voice(speaker))
        a, b = _speech_bounds(clip)
        clip = clip[a:b] * rng.uniform(0.3, 0.7) / (np.abs(clip[a:b]).max() + 1e-9)
        start = int(t * SAMPLE_RATE)
        if start + len(clip) > total - SAMPLE_RATE:
            break
        speech[start: start + len(clip)] += clip
        turns.append((round(start / SAMPLE_RATE, 3), round((start + len(clip)) / SAMPLE_RATE, 3), speaker, text))
        t = (start + len(clip)) / SAMPLE_RATE + _pause(rng)
    if not turns:
        raise ConfigError(f"{minutes} minutes is too short for one sentence")
    # pocketsphinx falls apart in strong reverberation (WER ~90 % at rt60 0.5 s here): keep rooms small
    rt60 = rng.choice([0.0, 0.0, 0.15, 0.25])
    if rt60:
        speech = reverb(speech, rt60, nrng).astype(np.float32)
    speech_rms = np.sqrt(np.mean(np.concatenate([speech[int(s * SAMPLE_RATE): int(e * SAMPLE_RATE)]
                                                 for s, e, _, _ in turns]) ** 2))
    # music under a stretch of the episode (speech over it at 10-20 dB), fading in and out
    music = _music(total / SAMPLE_RATE, seed, nrng)
    bed = np.zeros(total, np.float32)
    m0 = int(rng.uniform(0.1, 0.5) * total)
    m1 = min(total, m0 + int(rng.uniform(0.25, 0.45) * total))
    fade = min(SAMPLE_RATE * 2, (m1 - m0) // 4)
    envelope = np.ones(m1 - m0, np.float32)
    envelope[:fade] = np.linspace(0, 1, fade)
    envelope[len(envelope) - fade:] = np.linspace(1, 0, fade)
    music_snr = rng.uniform(10.0, 20.0)
    bed[m0:m1] = music[m0:m1] * envelope * speech_rms / 10 ** (music_snr / 20)
    noise_snr = rng.uniform(20.0, 30.0)
    noise = np.cumsum(nrng.standard_normal(total)).astype(np.float32)  # brown: room rumble
    noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    noise *= speech_rms / 10 ** (noise_snr / 20) / (np.sqrt(np.mean(noise ** 2)) + 1e-9)
    audio = speech + bed + noise
    audio *= 0.5 / max(1e-9, float(np.abs(audio).max()))
    meta = {"seed": seed, "speakers": speakers, "rt60_s": rt60, "music_s": [round(m0 / SAMPLE_RATE, 1),
            round(m1 / SAMPLE_RATE, 1)], "music_snr_db": round(music_snr, 1), "noise_snr_db": round(noise_snr, 1)}
    return Episode(audio.astype(np.float32), turns, meta)


def write_episodes(out: str | Path, count: int = 5, minutes: float = 3.0, seed: int = 0,
                   progress=None) -> Path:
    """`count` episodes in `out` (WAV, RTTM, manifest.json); returns the manifest path. Existing episodes with
    the same settings are kept (resumable)."""
    import soundfile as sf

    from ..fileio import atomic_write, atomic_write_text

    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create {folder}: {e.strerror or e}") from None
    lines = []
    for k in range(count):
        name = f"episode_{seed + k:03d}_{minutes:g}min"
        wav, rttm, meta_path = folder / f"{name}.wav", folder / f"{name}.rttm", folder / f"{name}.json"
        if meta_path.is_file() and wav.is_file():
            entry = json.loads(meta_path.read_text())
        else:
            ep = make_episode(seed + k, minutes)
            atomic_write(wav, lambda tmp: sf.write(str(tmp), ep.audio, SAMPLE_RATE, subtype="PCM_16", format="WAV"))
            atomic_write_text(rttm, "".join(f"SPEAKER {name} 1 {s:.3f} {e - s:.3f} <NA> <NA> {spk} <NA> <NA>\n"
                                            for s, e, spk, _ in ep.turns))
            entry = {"audio_filepath": str(wav.resolve()), "duration": round(ep.duration_s, 3), "text": ep.text,
                     "rttm_filepath": str(rttm.resolve()), "turns": [list(t) for t in ep.turns], "meta": ep.meta}
            atomic_write_text(meta_path, json.dumps(entry) + "\n")
        lines.append(json.dumps(entry))
        if progress:
            progress(k + 1, count)
    manifest = folder / "manifest.json"
    atomic_write_text(manifest, "\n".join(lines) + "\n")
    return manifest
