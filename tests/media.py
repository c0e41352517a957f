"""Test media made with PyAV: encoded audio, optionally beside a small h264 video track."""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def encode(path: Path, signal: np.ndarray, rate: int, audio_codec: str | None, video: bool,
           audio_start_s: float = 0.0) -> None:
    """Write `signal` (channels, n) with PyAV, optionally next to a small h264 video; the audio track's
    timestamps start at `audio_start_s` (a video whose sound starts late)."""
    layout = "mono" if signal.shape[0] == 1 else "stereo"
    with av.open(str(path), "w") as out:
        # every stream must exist before the first packet is muxed
        v = out.add_stream("libx264", rate=25) if video else None
        a = out.add_stream(audio_codec, rate=rate, layout=layout) if audio_codec else None
        if v is not None:
            v.width = v.height = 64
            v.pix_fmt = "yuv420p"
            for i in range(round(signal.shape[1] / rate * 25)):
                image = np.full((64, 64, 3), i * 9 % 256, np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                out.mux(v.encode(frame))
            out.mux(v.encode())
        if a is not None:
            a.bit_rate = 256_000  # lame at 128k alone loses ~0.45 dB on a pure sine
            samples = np.ascontiguousarray(signal, np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, round(audio_start_s * rate), Fraction(1, rate)
            # encoders want their own sample format and fixed frame sizes (aac 1024, opus 960, ...)
            to_encoder = av.AudioResampler(
                format=a.codec_context.codec.audio_formats[0].name,
                layout=layout,
                rate=rate,
                frame_size=a.codec_context.frame_size or None,
            )
            for f in to_encoder.resample(frame) + to_encoder.resample(None):
                out.mux(a.encode(f))
            out.mux(a.encode())


def has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except Exception:
        return False
    return True
