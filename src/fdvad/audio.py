"""Decode any media file (or an in-memory array) to 16 kHz mono float32 samples.

Everything goes through one pipeline: PyAV decodes the first audio stream frame by
frame, each frame is converted to float32 and down-mixed to mono here, and a
streaming PyAV (libswresample) resampler brings it to the target rate. `iter_audio`
exposes that pipeline in fixed-size chunks; `load_audio` concatenates the same
chunks, so both return identical samples.

Timing convention: sample 0 is the first decoded audio sample. Container timestamps
(a stream start offset, gaps between packets) are not applied to the samples;
`audio_info(path).start_s` says where sample 0 lies against the video's start, for
callers whose times must match the picture (subtitles).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from fdvad.errors import (
    EmptyAudioError,
    InvalidAudioError,
    MediaNotFoundError,
    NoAudioStreamError,
    NotMediaError,
)

TARGET_SAMPLE_RATE = 16000

# A few broken packets at the start of a real file (e.g. an mp3 cut mid-frame) are
# tolerated; this many failures before any audio means the file is not media.
_MAX_ERRORS_BEFORE_AUDIO = 10
# Input block handed to libswresample at once (see _MonoResampler).
_RESAMPLE_BLOCK_S = 0.5


@dataclass(frozen=True)
class AudioInfo:
    """Metadata of the first audio stream of a media file."""

    duration_s: float | None  # None when the container does not say
    sample_rate: int  # of the decoded audio, before any resampling
    channels: int
    codec: str  # decoder name, e.g. "aac", "pcm_s16le", "opus"
    container: str  # demuxer name, e.g. "wav", "mov,mp4,m4a,3gp,3g2,mj2"
    # seconds from the start of the first video stream to the first decoded audio sample (a video whose audio
    # track starts late, e.g. a cut or a screen recording); 0.0 without video or timestamps
    start_s: float = 0.0


# --------------------------------------------------------------------------- public


def load_audio(path: str | os.PathLike[str], sample_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio stream of `path` to a mono float32 array at `sample_rate` Hz.

    Raises MediaNotFoundError, NotMediaError, NoAudioStreamError, EmptyAudioError or
    InvalidAudioError (NaN/Inf samples), each with a one-line message naming the file.
    """
    chunks = list(iter_audio(path, sample_rate))
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def iter_audio(
    path: str | os.PathLike[str],
    sample_rate: int = TARGET_SAMPLE_RATE,
    chunk_seconds: float = 60.0,
) -> Iterator[np.ndarray]:
    """Stream the audio of `path` as consecutive mono float32 chunks at `sample_rate` Hz.

    Every chunk has exactly round(chunk_seconds * sample_rate) samples except the last,
    which is shorter (but never empty). Only about one chunk is held in memory.
    Raises the same errors as `load_audio`; EmptyAudioError if nothing at all decodes.
    """
    # checked here, not inside the generator, so bad arguments fail at the call
    _check_sample_rate(sample_rate)
    chunk_samples = round(chunk_seconds * sample_rate)
    if chunk_samples < 1:
        raise ValueError(f"chunk_seconds={chunk_seconds} gives chunks of less than one sample")
    return _iter_chunks(os.fspath(path), sample_rate, chunk_samples)


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read stream metadata of `path`, decoding only its first audio frame.

    The first frame is decoded because containers sometimes misreport the rate or
    channel count (e.g. HE-AAC), and to tell real media from files that merely open.
    """
    name = os.fspath(path)
    with _open(name) as container:
        stream = _audio_stream(container, name)
        frames = _decode_frames(container, stream, name)
        first = next(frames, None)
        frames.close()  # stop decoding while the container is still open
        if first is None:
            raise EmptyAudioError(
                f"{name}: the audio stream decodes to zero samples; use a file that contains sound"
            )
        if stream.duration is not None and stream.time_base is not None:
            duration_s: float | None = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration_s = container.duration / av.time_base
        else:
            duration_s = None
        return AudioInfo(
            duration_s=duration_s,
            sample_rate=int(first.sample_rate),
            channels=int(first.layout.nb_channels),
            codec=stream.codec_context.name,
            container=container.format.name,
            start_s=_start_against_video(container, first),
        )


def prepare_audio(
    audio: Any, sample_rate: int, target_sample_rate: int = TARGET_SAMPLE_RATE
) -> np.ndarray:
    """Turn in-memory samples into mono float32 at `target_sample_rate` Hz.

    `audio` is a numpy array or torch tensor of shape (N,), (channels, N) or
    (N, channels): the smaller dimension is taken as channels if it is <= 8.
    Integer samples are scaled to [-1, 1) by their full scale (int16 / 2**15,
    int32 / 2**31, uint8 (x - 128) / 128, ...); float samples are kept as they are.
    """
    _check_sample_rate(sample_rate)
    _check_sample_rate(target_sample_rate)
    what = "audio array"
    if hasattr(audio, "detach") and hasattr(audio, "cpu"):  # torch, without importing it
        tensor = audio.detach().cpu()
        # float16/bfloat16 have no (or no lossless) numpy view
        audio = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    array = np.asarray(audio)

    if array.ndim == 1:
        channels_axis = None
    elif array.ndim == 2:
        channels_axis = int(np.argmin(array.shape))  # ties: channels first
        if array.shape[channels_axis] > 8:
            raise InvalidAudioError(
                f"{what}: shape {array.shape} has no channel axis of size <= 8; "
                "pass (N,), (channels, N) or (N, channels)"
            )
    else:
        raise InvalidAudioError(
            f"{what}: expected shape (N,), (channels, N) or (N, channels), got {array.shape}; "
            "pass one recording at a time"
        )
    if array.size == 0:
        raise EmptyAudioError(f"{what}: has zero samples; pass audio that contains sound")

    samples = _to_float32(array, what)
    if channels_axis == 1:
        samples = samples.T
    samples = _downmix(samples) if samples.ndim == 2 else samples
    _check_finite(samples, what, sample_rate, 0)

    resampler = _MonoResampler(target_sample_rate)
    block = resampler.block_samples(sample_rate)
    out = [
        piece
        for start in range(0, len(samples), block)
        for piece in resampler.push(samples[start : start + block], sample_rate)
    ]
    out.extend(resampler.flush())
    if not out:  # fewer input samples than one output period
        raise EmptyAudioError(
            f"{what}: {len(samples)} samples at {sample_rate} Hz give zero samples "
            f"at {target_sample_rate} Hz; pass longer audio"
        )
    return np.ascontiguousarray(np.concatenate(out), dtype=np.float32)


# ----------------------------------------------------------------- decoding pipeline


def _iter_chunks(name: str, sample_rate: int, chunk_samples: int) -> Iterator[np.ndarray]:
    """Regroup the decoder's pieces into chunks of exactly `chunk_samples` (last: the rest)."""
    pending: list[np.ndarray] = []
    n_pending = 0
    n_yielded = 0
    for piece in _decode_resampled(name, sample_rate):
        pending.append(piece)
        n_pending += len(piece)
        while n_pending >= chunk_samples:
            joined = np.concatenate(pending)
            yield joined[:chunk_samples]
            rest = joined[chunk_samples:]
            pending, n_pending = ([rest], len(rest)) if len(rest) else ([], 0)
            n_yielded += chunk_samples
    if n_pending:
        yield np.concatenate(pending)
        n_yielded += n_pending
    if n_yielded == 0:
        raise EmptyAudioError(
            f"{name}: the audio stream decodes to zero samples; use a file that contains sound"
        )


def _decode_resampled(name: str, sample_rate: int) -> Iterator[np.ndarray]:
    """Yield mono float32 pieces of the first audio stream of `name`, at `sample_rate`."""
    with _open(name) as container:
        stream = _audio_stream(container, name)
        resampler = _MonoResampler(sample_rate)
        n_decoded = 0
        for frame in _decode_frames(container, stream, name):
            mono = _frame_to_mono(frame, name)
            _check_finite(mono, name, frame.sample_rate, n_decoded)
            n_decoded += len(mono)
            yield from resampler.push(mono, frame.sample_rate)
        yield from resampler.flush()


def _open(name: str) -> av.container.InputContainer:
    """Open `name` with PyAV, turning every failure into an FdvadError."""
    if not os.path.exists(name):
        raise MediaNotFoundError(f"{name}: no such file; check the path")
    if not os.path.isfile(name):
        raise MediaNotFoundError(f"{name}: is not a regular file (a directory?); pass a media file")
    try:
        # "file:" stops FFmpeg from reading a protocol out of names like "take:2.wav"
        return av.open("file:" + os.path.abspath(name), mode="r", metadata_errors="replace")
    except av.error.PermissionError as exc:
        raise MediaNotFoundError(
            f"{name}: cannot be read ({_reason(exc)}); check its permissions"
        ) from None
    except av.error.FFmpegError as exc:
        raise NotMediaError(
            f"{name}: not an audio or video file FFmpeg can read ({_reason(exc)}); "
            "check that it is a complete, uncorrupted media file"
        ) from None


def _audio_stream(container: av.container.InputContainer, name: str) -> av.audio.stream.AudioStream:
    """The first audio stream, with a decoder."""
    if not container.streams.audio:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
        raise NoAudioStreamError(
            f"{name}: has no audio stream (streams: {kinds}); use a file with a sound track"
        )
    stream = container.streams.audio[0]
    if stream.codec_context is None:
        raise NotMediaError(
            f"{name}: FFmpeg has no decoder for its audio codec; convert it to wav or flac first"
        )
    return stream


def _decode_frames(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, name: str
) -> Iterator[av.AudioFrame]:
    """Decode `stream`, skipping damaged packets once real audio has been seen.

    A damaged packet after audio (truncated download, bit rot) costs a warning, not
    the file; failures before any audio mean the file is not what its name says.
    """
    n_errors = 0
    seen_audio = False
    last_error = ""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:  # the demuxer gave up mid-file
            n_errors += 1
            last_error = _reason(exc)
            break
        try:
            frames = packet.decode()  # the final empty packet flushes the decoder
        except av.error.FFmpegError as exc:
            n_errors += 1
            last_error = _reason(exc)
            if not seen_audio and n_errors >= _MAX_ERRORS_BEFORE_AUDIO:
                break
            continue
        for frame in frames:
            if frame.samples:
                seen_audio = True
                yield frame

    if n_errors and not seen_audio:
        raise NotMediaError(
            f"{name}: its audio stream does not decode ({last_error}); "
            "check that it is a complete, uncorrupted media file"
        )
    if n_errors:
        warnings.warn(
            f"{name}: skipped {n_errors} damaged audio packet(s) ({last_error}); "
            "the file may be truncated or corrupt",
            RuntimeWarning,
            stacklevel=2,
        )


def _frame_to_mono(frame: av.AudioFrame, name: str) -> np.ndarray:
    """Samples of one decoded frame as mono float32, channels averaged.

    Done here rather than by libswresample: its stereo-to-mono matrix scales by
    1/sqrt(2) (-3 dB), and unusual layouts ("3 channels" from some WAVs) trip it up.
    """
    channels = frame.layout.nb_channels
    data = frame.to_ndarray()
    if frame.format.is_planar:  # (channels, n)
        per_channel = data
    else:  # (1, n * channels), interleaved
        per_channel = data.reshape(-1, channels).T
    return _downmix(_to_float32(per_channel, name))


def _downmix(per_channel: np.ndarray) -> np.ndarray:
    """Average a (channels, n) float32 array to (n,).

    A plain loop: np.mean over a short axis is ~6x slower on interleaved data.
    """
    if len(per_channel) == 1:
        return per_channel[0]
    mono = per_channel[0].copy()
    for channel in per_channel[1:]:
        mono += channel
    mono *= np.float32(1.0 / len(per_channel))
    return mono


def _to_float32(array: np.ndarray, what: str) -> np.ndarray:
    """Float samples as float32; integer samples scaled by their full scale to [-1, 1)."""
    kind = array.dtype.kind
    if kind == "f":
        return array.astype(np.float32, copy=False)
    if kind in "iu":
        half_scale = 2.0 ** (array.dtype.itemsize * 8 - 1)
        samples = array.astype(np.float32)
        if kind == "u":  # unsigned PCM (8-bit WAV) is centred on mid-scale
            samples -= np.float32(half_scale)
        samples *= np.float32(1.0 / half_scale)  # a power of two: exact
        return samples
    raise InvalidAudioError(
        f"{what}: samples of type {array.dtype} are not audio; pass integer or float samples"
    )


def _start_against_video(container: av.container.InputContainer, first: av.AudioFrame) -> float:
    """Seconds from the earliest video stream's start to `first` (the first decoded audio frame), to the
    millisecond; 0.0 for audio-only files or when either timestamp is missing. The decoded frame's time, not the
    stream's start_time: decoders drop codec priming, so the first sample heard is the first frame's."""
    starts = [float(v.start_time * v.time_base) for v in container.streams.video
              if v.start_time is not None and v.time_base is not None]
    if not starts or first.time is None:
        return 0.0
    return round(float(first.time) - min(starts), 3)


def _check_finite(samples: np.ndarray, what: str, rate: int, offset: int) -> None:
    """Raise InvalidAudioError if any sample is NaN or infinite; `offset` locates it in time."""
    finite = np.isfinite(samples)
    if not finite.all():
        first_s = (offset + int(np.argmin(finite))) / rate
        raise InvalidAudioError(
            f"{what}: contains NaN or infinite samples (first at {first_s:.3f} s); "
            "re-export the audio with valid samples"
        )


def _check_sample_rate(sample_rate: Any) -> None:
    whole = isinstance(sample_rate, (int, np.integer)) and not isinstance(sample_rate, bool)
    if not whole or sample_rate <= 0:
        raise InvalidAudioError(
            f"sample rate {sample_rate!r} is invalid; "
            "pass a positive whole number of Hz such as 16000"
        )


def _reason(exc: BaseException) -> str:
    """FFmpeg's short description of an error, on one line."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


class _MonoResampler:
    """Streaming mono resampler to a fixed output rate (libswresample via PyAV).

    libswresample's windowed-sinc filter compensates its own delay, so output sample k
    is at time k / out_rate. Input is gathered into blocks of about half a second:
    per-call overhead makes 1024-sample frames ~5x slower, and one huge frame is slow
    too (cache). A change of input rate mid-stream restarts the filter.
    """

    def __init__(self, out_rate: int) -> None:
        self.out_rate = out_rate
        self.in_rate: int | None = None
        self._resampler: av.AudioResampler | None = None
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self._pts = 0

    @staticmethod
    def block_samples(in_rate: int) -> int:
        return max(1024, round(_RESAMPLE_BLOCK_S * in_rate))

    def push(self, samples: np.ndarray, in_rate: int) -> list[np.ndarray]:
        """Feed mono float32 samples at `in_rate`; return whatever output is ready."""
        out: list[np.ndarray] = []
        if in_rate != self.in_rate:
            out.extend(self.flush())
            self.in_rate = in_rate
            if in_rate != self.out_rate:
                self._resampler = av.AudioResampler(
                    format="fltp", layout="mono", rate=self.out_rate
                )
                self._pts = 0
        if self._resampler is None:  # same rate: nothing to do, and bit-exact
            out.append(samples)
            return out
        self._pending.append(samples)
        self._n_pending += len(samples)
        if self._n_pending >= self.block_samples(in_rate):
            out.extend(self._resample_pending())
        return out

    def flush(self) -> list[np.ndarray]:
        """Return the rest of the output; the next push starts a fresh filter."""
        if self._resampler is None:
            return []
        out = self._resample_pending()
        out.extend(f.to_ndarray()[0] for f in self._resampler.resample(None))
        self._resampler = None
        self.in_rate = None
        return out

    def _resample_pending(self) -> list[np.ndarray]:
        if not self._n_pending:
            return []
        assert self._resampler is not None and self.in_rate is not None
        samples = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._n_pending = [], 0
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="fltp", layout="mono"
        )
        frame.sample_rate = self.in_rate
        frame.time_base = Fraction(1, self.in_rate)
        frame.pts = self._pts  # gap-free timestamps, so the filter has no reason to pad or drop
        self._pts += len(samples)
        return [f.to_ndarray()[0] for f in self._resampler.resample(frame)]
