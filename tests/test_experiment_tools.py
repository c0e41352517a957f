"""The statistics the FD experiment reports are computed right (experiments/experiment_tools.py)."""

import math
import statistics
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from experiment_tools import mean_std, paired_ci  # noqa: E402


def test_paired_ci_is_the_t_interval_of_the_differences():
    a, b = [0.90, 0.92, 0.91], [0.93, 0.94, 0.92]
    diffs = [0.03, 0.02, 0.01]
    mean, lo, hi = paired_ci(a, b)
    half = 4.303 * statistics.stdev(diffs) / math.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert mean == pytest.approx(0.02)
    assert (lo, hi) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert lo < 0.0 < 0.02  # three noisy seeds: this interval still reaches below 0
    one = paired_ci([0.9], [0.95])
    assert one[0] == pytest.approx(0.05) and math.isnan(one[1]) and math.isnan(one[2])


def test_mean_std_formats_one_or_many_values():
    assert mean_std([0.5]) == "0.5000"
    assert mean_std([0.5, 0.7]) == f"0.6000 +- {statistics.stdev([0.5, 0.7]):.4f}"
