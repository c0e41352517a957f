"""The result type of VAD: one speech segment in seconds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    """Speech from `start` to `end` seconds; `score` is the mean speech probability inside, when known."""

    start: float
    end: float
    score: float | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict:
        d = {"start": round(self.start, 3), "end": round(self.end, 3)}
        if self.score is not None:
            d["score"] = round(self.score, 4)
        return d
