"""Tests for fdvad.audio: decoding media files and in-memory audio to 16 kHz mono float32."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fdvad.audio import (
    TARGET_SAMPLE_RATE,
    AudioInfo,
    audio_info,
    iter_audio,
    load_audio,
    prepare_audio,
)
from fdvad.errors import (
    EmptyAudioError,
    FdvadError,
    InvalidAudioError,
    MediaNotFoundError,
    NoAudioStreamError,
    NotMediaError,
)

from media import encode, has_encoder

SR = TARGET_SAMPLE_RATE


# ------------------------------------------------------------------------ helpers


def sine(rate: int, seconds: float, freq_hz: float = 1000.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def level_db(y: np.ndarray, amp: float, edge: int = 1600) -> float:
    """Level of a sine in y relative to a sine of amplitude `amp`, edges ignored."""
    mid = y[edge:-edge].astype(np.float64)
    return 20 * np.log10(np.sqrt(2 * np.mean(mid**2)) / amp)


def peak_hz(y: np.ndarray, rate: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / rate)[spectrum.argmax()])


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


# ----------------------------------------------------------------- lossless files


def test_wav_8k_stereo_int16_keeps_level_and_frequency(tmp_path: Path) -> None:
    path = tmp_path / "stereo8k.wav"
    x = sine(8000, 2.0)
    sf.write(path, np.stack([x, x], axis=1), 8000, subtype="PCM_16")

    y = load_audio(path)

    assert y.dtype == np.float32 and y.ndim == 1
    assert len(y) == 2 * SR
    # identical channels averaged: no -3 dB from a power-preserving down-mix
    assert abs(level_db(y, 0.5)) < 0.1
    assert peak_hz(y) == pytest.approx(1000, abs=1)
    assert correlation(y, sine(SR, 2.0)) > 0.999


def test_flac_48k_24bit_stereo_is_the_average_of_its_channels(tmp_path: Path) -> None:
    path = tmp_path / "hi.flac"
    left, right = sine(48000, 1.5, 1000, 0.5), sine(48000, 1.5, 440, 0.3)
    sf.write(path, np.stack([left, right], axis=1), 48000, subtype="PCM_24")

    y = load_audio(path)

    expected = 0.5 * (sine(SR, 1.5, 1000, 0.5) + sine(SR, 1.5, 440, 0.3))
    assert len(y) == len(expected)
    # aligned in time (no resampler delay) and equal up to 24-bit/filter error
    assert np.max(np.abs(y[400:-400] - expected[400:-400])) < 1e-3
    info = audio_info(path)
    assert info == AudioInfo(
        duration_s=pytest.approx(1.5), sample_rate=48000, channels=2, codec="flac", container="flac"
    )


def test_sample_rate_argument_and_path_with_colon(tmp_path: Path) -> None:
    path = tmp_path / "take:2.wav"  # FFmpeg would read "take" as a protocol name
    sf.write(path, sine(16000, 1.0), 16000, subtype="FLOAT")

    y8k = load_audio(str(path), sample_rate=8000)

    assert len(y8k) == 8000
    assert peak_hz(y8k, 8000) == pytest.approx(1000, abs=1)
    assert np.array_equal(load_audio(path), sine(16000, 1.0))  # same rate: bit-exact
    with pytest.raises(InvalidAudioError):
        load_audio(path, sample_rate=0)
    with pytest.raises(InvalidAudioError):
        iter_audio(path, sample_rate=-1)  # at the call, before any iteration


# -------------------------------------------------------------- encoded media

ENCODED = [
    # name, audio codec, with video, rate, container name contains, decoder name
    ("movie.mp4", "aac", True, 48000, "mp4", "aac"),
    ("voice.ogg", "libopus", False, 48000, "ogg", "opus"),
    ("clip.webm", "libopus", False, 48000, "webm", "opus"),  # webm video must be vp8/9
    ("song.mp3", "libmp3lame", False, 44100, "mp3", "mp3"),
    ("movie.mkv", "flac", True, 44100, "matroska", "flac"),
    ("music.m4a", "aac", False, 44100, "m4a", "aac"),
]


@pytest.mark.parametrize(("name", "codec", "video", "rate", "container", "decoder"), ENCODED)
def test_encoded_media_decodes_to_16k_mono(
    tmp_path: Path, name: str, codec: str, video: bool, rate: int, container: str, decoder: str
) -> None:
    if not has_encoder(codec):
        pytest.skip(f"this PyAV build has no {codec} encoder")
    path = tmp_path / name
    x = sine(rate, 2.0)
    encode(path, np.stack([x, x]), rate, codec, video)

    y = load_audio(path)
    info = audio_info(path)

    assert y.dtype == np.float32 and y.ndim == 1
    # AAC/MP3/Opus add priming and padding: allow 30 ms
    assert abs(len(y) / SR - 2.0) < 0.030
    assert abs(level_db(y, 0.5, edge=3200)) < 0.5
    assert peak_hz(y[3200:-3200]) == pytest.approx(1000, abs=2)
    assert info.sample_rate == rate and info.channels == 2
    assert container in info.container and decoder in info.codec
    assert info.duration_s is not None and abs(info.duration_s - 2.0) < 0.030


# ------------------------------------------------------------------ damaged files


def test_truncated_wav_decodes_what_is_there(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    full, cut = tmp_path / "full.wav", tmp_path / "cut.wav"
    x = sine(SR, 2.0)
    sf.write(full, x, SR, subtype="PCM_16")
    data = full.read_bytes()
    cut.write_bytes(data[: 44 + 2 * 12345 + 1])  # header + 12345 samples + half a sample

    y = load_audio(cut)

    assert len(y) == 12345
    np.testing.assert_allclose(y, load_audio(full)[:12345])
    assert capfd.readouterr().out == ""


def test_truncated_flac_warns_and_keeps_the_beginning(tmp_path: Path) -> None:
    full, cut = tmp_path / "full.flac", tmp_path / "cut.flac"
    sf.write(full, sine(48000, 2.0), 48000, subtype="PCM_24")
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])

    with pytest.warns(RuntimeWarning, match="cut.flac"):
        y = load_audio(cut)

    assert 0.3 * 2 * SR < len(y) < 0.6 * 2 * SR
    assert correlation(y[:8000], load_audio(full)[:8000]) > 0.999


# -------------------------------------------------------------------------- errors


def make_text_wav(tmp: Path) -> Path:
    path = tmp / "notes.wav"
    path.write_text("this is a text file, not audio\n" * 40)
    return path


def make_random_mp3(tmp: Path) -> Path:
    path = tmp / "noise.mp3"
    path.write_bytes(np.random.default_rng(0).bytes(20000))
    return path


def make_garbled_m4a(tmp: Path) -> Path:
    """Container intact, every AAC packet replaced by noise: opens, never decodes."""
    path = tmp / "garbled.m4a"
    x = sine(44100, 1.0)
    encode(path, np.stack([x, x]), 44100, "aac", video=False)
    data = bytearray(path.read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 : at - 4 + size] = np.random.default_rng(0).bytes(size - 8)
    path.write_bytes(bytes(data))
    return path


def make_video_only_mp4(tmp: Path) -> Path:
    path = tmp / "silent movie.mp4"
    encode(path, np.zeros((1, 16000), np.float32), 16000, None, video=True)
    return path


def make_zero_frame_wav(tmp: Path) -> Path:
    path = tmp / "nothing.wav"
    sf.write(path, np.zeros((0, 1), np.float32), 16000, subtype="PCM_16")
    return path


def make_nan_wav(tmp: Path) -> Path:
    path = tmp / "broken.wav"
    x = sine(16000, 1.0)
    x[8000] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


def make_directory(tmp: Path) -> Path:
    path = tmp / "folder.wav"
    path.mkdir()
    return path


ERROR_CASES = [
    (lambda tmp: tmp / "missing.wav", MediaNotFoundError),
    (make_directory, MediaNotFoundError),
    (make_text_wav, NotMediaError),
    (make_random_mp3, NotMediaError),
    (make_garbled_m4a, NotMediaError),
    (make_video_only_mp4, NoAudioStreamError),
    (make_zero_frame_wav, EmptyAudioError),
]


def _assert_user_message(exc: pytest.ExceptionInfo[FdvadError], path: Path) -> None:
    message = str(exc.value)
    assert isinstance(exc.value, FdvadError)
    assert "\n" not in message
    assert path.name in message


@pytest.mark.parametrize("read", [load_audio, lambda p: list(iter_audio(p)), audio_info])
@pytest.mark.parametrize(("make", "error"), ERROR_CASES)
def test_user_mistakes_raise_clear_errors(tmp_path: Path, make, error, read) -> None:
    path = make(tmp_path)
    with pytest.raises(error) as exc:
        read(path)
    assert type(exc.value) is error
    _assert_user_message(exc, path)


def test_nan_in_float_wav_is_rejected(tmp_path: Path) -> None:
    path = make_nan_wav(tmp_path)
    for read in (load_audio, lambda p: list(iter_audio(p, chunk_seconds=0.25))):
        with pytest.raises(InvalidAudioError, match="NaN or infinite") as exc:
            read(path)
        _assert_user_message(exc, path)
        assert "0.500 s" in str(exc.value)  # where it is


# ---------------------------------------------------------------------- streaming


def test_iter_audio_chunks_match_load_audio(tmp_path: Path) -> None:
    path = tmp_path / "speech.flac"
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, 44100 * 5 // 2)
    sf.write(path, noise, 44100, subtype="PCM_16")

    chunks = list(iter_audio(path, chunk_seconds=0.7))

    assert [len(c) for c in chunks] == [11200, 11200, 11200, 6400]  # 2.5 s at 16 kHz
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in chunks)
    assert np.array_equal(np.concatenate(chunks), load_audio(path))


def test_iter_audio_exact_multiple_has_no_empty_last_chunk(tmp_path: Path) -> None:
    path = tmp_path / "two.wav"
    sf.write(path, sine(SR, 2.0), SR)
    assert [len(c) for c in iter_audio(path, chunk_seconds=1.0)] == [SR, SR]


def test_iter_audio_does_not_hold_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(SR * 120, np.int16), SR, subtype="PCM_16")  # 7.7 MB as float32

    tracemalloc.start()
    try:
        total = sum(len(c) for c in iter_audio(path, chunk_seconds=1.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert total == SR * 120
    assert peak < 1_000_000


# -------------------------------------------------------------------- in memory


@pytest.mark.parametrize("rate", [44100, 48000, 8000, 22050])
def test_resampling_keeps_frequency_and_amplitude(rate: int) -> None:
    y = prepare_audio(sine(rate, 2.0), rate)

    assert len(y) == 2 * SR
    assert peak_hz(y) == pytest.approx(1000, abs=1)
    assert abs(level_db(y, 0.5)) < 0.05
    # exact phase: output sample k is at time k / 16000
    assert np.max(np.abs(y[400:-400] - sine(SR, 2.0)[400:-400])) < 1e-3


@pytest.mark.parametrize(("rate", "freq_hz"), [(48000, 12000), (44100, 15000), (48000, 9500)])
def test_resampling_removes_what_would_alias(rate: int, freq_hz: float) -> None:
    y = prepare_audio(sine(rate, 1.0, freq_hz), rate)
    assert level_db(y, 0.5) < -50


def test_prepare_audio_layouts_and_dtypes() -> None:
    x = sine(SR, 1.0)
    stereo = np.stack([x, 0.5 * x])
    expected = 0.75 * x

    np.testing.assert_allclose(prepare_audio(x, SR), x)
    np.testing.assert_allclose(prepare_audio(stereo, SR), expected, atol=1e-7)  # (channels, N)
    np.testing.assert_allclose(prepare_audio(stereo.T, SR), expected, atol=1e-7)  # (N, channels)
    as_tensor = torch.from_numpy(stereo.T.copy())
    np.testing.assert_allclose(prepare_audio(as_tensor, SR), expected, atol=1e-7)
    np.testing.assert_allclose(prepare_audio(torch.from_numpy(x).half(), SR), x, atol=1e-3)
    six = np.tile(x, (6, 1))
    np.testing.assert_allclose(prepare_audio(six.T, SR), x, atol=1e-6)

    int16 = np.array([16384, -32768, 0, 8192], np.int16)
    np.testing.assert_array_equal(prepare_audio(int16, SR), [0.5, -1.0, 0.0, 0.25])
    np.testing.assert_array_equal(prepare_audio(torch.from_numpy(int16), SR), [0.5, -1, 0, 0.25])
    int32 = np.array([2**30, -(2**31)], np.int32)
    np.testing.assert_array_equal(prepare_audio(int32, SR), [0.5, -1.0])
    uint8 = np.array([128, 192, 0], np.uint8)
    np.testing.assert_array_equal(prepare_audio(uint8, SR), [0.0, 0.5, -1.0])

    out = prepare_audio(stereo.astype(np.float64), 48000)
    assert out.dtype == np.float32 and out.shape == (SR // 3,)


@pytest.mark.parametrize("bad_rate", [0, -16000, 16000.5, "16000", True, None])
def test_prepare_audio_rejects_bad_sample_rates(bad_rate) -> None:
    with pytest.raises(InvalidAudioError, match="sample rate"):
        prepare_audio(sine(SR, 0.1), bad_rate)


@pytest.mark.parametrize(
    ("audio", "error"),
    [
        (np.zeros(0, np.float32), EmptyAudioError),
        (np.zeros((2, 0), np.float32), EmptyAudioError),
        (np.zeros((2, 3, 100), np.float32), InvalidAudioError),  # a batch
        (np.zeros((10, 20), np.float32), InvalidAudioError),  # no plausible channel axis
        (np.array([0.1, np.inf, 0.2], np.float32), InvalidAudioError),
        (torch.tensor([0.0, float("nan")]), InvalidAudioError),
        (np.array([True, False]), InvalidAudioError),
    ],
)
def test_prepare_audio_rejects_unusable_input(audio, error) -> None:
    with pytest.raises(error) as exc:
        prepare_audio(audio, SR)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(("name", "codec"), [("late.mkv", "flac"), ("late.mp4", "aac")])
def test_audio_info_says_where_a_late_audio_track_starts_against_the_video(tmp_path: Path, name: str, codec: str):
    if not has_encoder(codec):
        pytest.skip(f"this PyAV build has no {codec} encoder")
    path = tmp_path / name
    tone = sine(SR, 1.0)
    encode(path, np.stack([tone, tone]), SR, codec, video=True, audio_start_s=0.5)

    info = audio_info(path)
    y = load_audio(path)

    # sample 0 of the decoded audio lies at start_s on the video's timeline, so the tone, written to start at 0.5 s,
    # begins (0.5 - start_s) into the samples; AAC's priming puts the first decoded sample before 0.5 s
    onset = np.flatnonzero(np.abs(y) > 0.05)[0] / SR
    assert info.start_s + onset == pytest.approx(0.5, abs=0.005)
    assert (info.start_s == 0.5) if codec == "flac" else (0.4 <= info.start_s <= 0.5)
    encode(tmp_path / "on_time.mkv", np.stack([tone, tone]), SR, "flac", video=True)
    assert audio_info(tmp_path / "on_time.mkv").start_s == 0.0
    encode(tmp_path / "audio_only.mkv", np.stack([tone, tone]), SR, "flac", video=False, audio_start_s=0.5)
    assert audio_info(tmp_path / "audio_only.mkv").start_s == 0.0  # no picture to line up with
