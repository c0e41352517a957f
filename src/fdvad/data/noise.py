"""Generated non-speech: coloured noises, mains hum, tones, clicks and knocks, and synthetic music.

Every generator returns float32 at unit RMS, so that the mixer alone sets the level.
"""

from __future__ import annotations

import numpy as np

NOISE_KINDS = ("white", "pink", "brown", "blue", "hum", "tones", "clicks", "music", "rumble")


def unit_rms(x: np.ndarray) -> np.ndarray:
    """`x` scaled to an RMS of 1 (silence and empty input are returned as they are), float32."""
    rms = float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))) if len(x) else 0.0
    return (x / rms if rms > 0 else x).astype(np.float32)


def coloured_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown, -1 blue)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec *= f ** (-exponent / 2.0)
    return unit_rms(np.fft.irfft(spec, n))


def hum(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    base = rng.choice([50.0, 60.0]) * rng.uniform(0.98, 1.02)
    t = np.arange(n) / sample_rate
    x = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 6.3)) for k in range(1, 8))
    return unit_rms(x + 0.05 * rng.standard_normal(n))


def tones(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Beeps and steady tones (phone signals, alarms, test tones) with random on/off."""
    x = np.zeros(n)
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.05, 1.5) * sample_rate)
        if rng.random() < 0.6:
            t = np.arange(min(length, n - pos)) / sample_rate
            f0 = rng.uniform(300, 3500)
            x[pos:pos + len(t)] = np.sin(2 * np.pi * f0 * t) + (0.3 * np.sin(4 * np.pi * f0 * t) if rng.random() < 0.5 else 0)
        pos += length
    return unit_rms(x + 1e-3 * rng.standard_normal(n))


def clicks(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Keyboard-, door- and knock-like impulses: decaying filtered bursts at random times."""
    x = 0.01 * rng.standard_normal(n)
    for _ in range(max(1, int(rng.uniform(0.5, 8) * n / sample_rate))):
        length = int(rng.uniform(0.005, 0.12) * sample_rate)
        start = int(rng.integers(0, max(1, n - length)))
        burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / rng.uniform(2, 8)))
        if rng.random() < 0.5:  # low "knock" rather than a sharp click
            burst = np.convolve(burst, np.ones(16) / 16, mode="same")
        x[start:start + length] += rng.uniform(1, 10) * burst
    return unit_rms(x)


def music(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Chords and melodies of harmonic notes with attack/decay envelopes, at a random tempo."""
    x = np.zeros(n)
    beat = int(60.0 / rng.uniform(60, 180) * sample_rate)
    root = rng.uniform(100, 400)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    pos = 0
    while pos < n:
        length = beat * int(rng.integers(1, 4))
        t = np.arange(min(length, n - pos)) / sample_rate
        env = np.minimum(1.0, t / 0.01) * np.exp(-t * rng.uniform(1, 6))
        for semis in rng.choice(scale, size=int(rng.integers(1, 4)), replace=False):
            f0 = root * 2 ** (semis / 12) * rng.choice([0.5, 1, 2])
            n_harm = int(rng.integers(1, 8))
            note = sum(np.sin(2 * np.pi * f0 * k * t) / k ** rng.uniform(0.8, 2) for k in range(1, n_harm + 1))
            x[pos:pos + len(t)] += env * note
        pos += length
    return unit_rms(x)


def rumble(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Traffic/engine/wind-like low-frequency noise with slow amplitude modulation."""
    base = coloured_noise(n, 2.0, rng)
    t = np.arange(n) / sample_rate
    mod = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 6.3))
    return unit_rms(base * mod + 0.2 * coloured_noise(n, 1.0, rng))


def make_noise(kind: str, n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    if kind == "white":
        return coloured_noise(n, 0.0, rng)
    if kind == "pink":
        return coloured_noise(n, 1.0, rng)
    if kind == "brown":
        return coloured_noise(n, 2.0, rng)
    if kind == "blue":
        return coloured_noise(n, -1.0, rng)
    generators = {"hum": hum, "tones": tones, "clicks": clicks, "music": music, "rumble": rumble}
    if kind not in generators:
        raise ValueError(f"unknown noise kind {kind!r}; known: {NOISE_KINDS}")
    return generators[kind](n, rng, sample_rate)
