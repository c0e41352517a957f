"""Learning-rate schedules as multipliers of the peak rate per optimizer step (for LambdaLR)."""

from __future__ import annotations

import math
from typing import Callable


def warmup_hold_poly(steps: int, warmup_ratio: float, hold_ratio: float, min_ratio: float,
                     power: float = 2.0) -> Callable[[int], float]:
    """NeMo's PolynomialHoldDecayAnnealing: linear warmup from 0, hold at the peak, then
    (1 - progress) ** power decay down to min_ratio of the peak (reached at the last step)."""
    warmup = int(round(steps * warmup_ratio))
    hold_end = warmup + int(round(steps * hold_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if step < hold_end:
            return 1.0
        decay = max(1, steps - hold_end)
        progress = min(1.0, (step - hold_end) / decay)
        return (1.0 - min_ratio) * (1.0 - progress) ** power + min_ratio

    return factor


def warmup_cosine(steps: int, warmup_ratio: float, min_ratio: float) -> Callable[[int], float]:
    """Linear warmup, then cosine decay to min_ratio of the peak."""
    warmup = int(round(steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def constant(steps: int, warmup_ratio: float) -> Callable[[int], float]:
    warmup = int(round(steps * warmup_ratio))
    return lambda step: (step + 1) / warmup if step < warmup else 1.0
