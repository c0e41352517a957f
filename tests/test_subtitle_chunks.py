import numpy as np
import pytest

from fdvad.errors import ConfigError
from fdvad.subtitles.chunks import asr_chunks, fixed_chunks
from fdvad.vad.segment import Segment

HOP = 0.08


def probs_for(segments, duration_s):
    probs = np.full(int(np.ceil(duration_s / HOP)), 0.05, np.float32)
    for s in segments:
        probs[int(s.start / HOP): int(np.ceil(s.end / HOP))] = 0.95
    return probs


def test_chunks_stay_on_the_original_timeline_after_long_silences():
    segments = [Segment(2.0, 4.5), Segment(63.0, 66.0), Segment(200.0, 201.2)]
    chunks = asr_chunks(segments, probs_for(segments, 240.0), HOP, 240.0, max_chunk_s=30.0, pad_s=0.2)
    assert [(round(c.start, 3), round(c.end, 3)) for c in chunks] == [(1.8, 4.7), (62.8, 66.2), (199.8, 201.4)]
    audio = np.arange(240 * 100, dtype=np.float32)  # 100 Hz "audio": sample i at i / 100 s
    piece = chunks[1].samples(audio, 100)
    assert piece[0] == 6280 and len(piece) == 340  # starts at 62.8 s of the original audio


def test_short_segments_merge_up_to_the_budget_and_never_overlap():
    rng = np.random.default_rng(0)
    starts = np.cumsum(rng.uniform(0.3, 3.0, 60))
    segments = [Segment(float(s), float(s + rng.uniform(0.3, 2.0))) for s in starts]
    segments = [s for s, nxt in zip(segments, segments[1:] + [Segment(1e9, 1e9)]) if s.end < nxt.start]
    duration = segments[-1].end + 5
    chunks = asr_chunks(segments, probs_for(segments, duration), HOP, duration, max_chunk_s=30.0, pad_s=0.2)
    assert len(chunks) < len(segments) / 3  # merged
    assert all(c.duration <= 30.0 + 1e-9 for c in chunks)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))
    for s in segments:  # every segment inside exactly one chunk
        assert sum(c.start <= s.start and s.end <= c.end for c in chunks) == 1


def test_a_long_segment_is_split_at_its_least_speech_like_point():
    segment = Segment(0.0, 70.0)
    probs = np.full(int(70 / HOP), 0.9, np.float32)
    dip = int(22.0 / HOP)
    probs[dip] = 0.3
    chunks = asr_chunks([segment], probs, HOP, 70.0, max_chunk_s=30.0, pad_s=0.0)
    assert all(c.duration <= 30.0 + 1e-9 for c in chunks)
    assert chunks[0].end == pytest.approx(dip * HOP)


def test_fixed_windows_and_bad_settings():
    chunks = fixed_chunks(65.0, 30.0)
    assert [(c.start, c.end) for c in chunks] == [(0.0, 30.0), (30.0, 60.0), (60.0, 65.0)]
    assert asr_chunks([], np.zeros(10), HOP, 0.8) == []
    with pytest.raises(ConfigError):
        asr_chunks([Segment(0, 1)], np.zeros(20), HOP, 1.6, max_chunk_s=0.3, pad_s=0.2)
