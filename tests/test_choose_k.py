"""Choosing K: the knee rule, the K-range syntax, and the sweep on an image."""

from __future__ import annotations

import numpy as np
import pytest

from imgclust.cluster.choose_k import KSweep, knee_point, parse_k_range
from imgclust.errors import InvalidParameterError
from imgclust.pixels.choose_k import choose_k


def test_knee_by_hand():
    # Points below the chord from (1, 100) to (5, 12): K=2 lies farthest below it.
    assert knee_point([1, 2, 3, 4, 5], [100, 30, 20, 15, 12]) == 2
    assert knee_point([1, 2, 3, 4, 5], [100, 90, 20, 15, 12]) == 3
    assert knee_point([1, 2, 3], [3.0, 2.0, 1.0]) is None  # a straight line has no knee
    assert knee_point([1, 2], [5.0, 1.0]) is None


def test_sweep_falls_back_to_silhouette():
    sweep = KSweep.from_scores([2, 3, 4], [3.0, 2.0, 1.0], [0.2, 0.7, 0.5])
    assert sweep.best_k == 3 and "silhouette" in sweep.rule


@pytest.mark.parametrize(
    ("text", "ks"), [("2-5", [2, 3, 4, 5]), ("2-10:4", [2, 6, 10]), ("8,2, 4", [2, 4, 8])]
)
def test_parse_k_range(text, ks):
    assert parse_k_range(text) == ks


@pytest.mark.parametrize("text", ["", "a-b", "0-3", "3,x"])
def test_parse_k_range_rejects(text):
    with pytest.raises(InvalidParameterError):
        parse_k_range(text)


def test_three_colour_groups_give_k3():
    rng = np.random.default_rng(0)
    centres = np.array([[220, 30, 30], [30, 200, 40], [40, 40, 210]])
    img = np.clip(
        centres[rng.integers(0, 3, (40, 40))] + rng.normal(0, 6, (40, 40, 3)), 0, 255
    ).astype(np.uint8)
    sweep = choose_k(img, range(1, 8), color_space="rgb", random_state=0)
    assert sweep.best_k == 3
    assert np.all(np.diff(sweep.inertia) < 0)
    assert np.nanargmax(sweep.silhouette) == list(sweep.ks).index(3)


def test_too_large_k_is_refused():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2] = 200
    with pytest.raises(InvalidParameterError, match="K=5 is more than the 2 distinct colours"):
        choose_k(img, range(2, 6))
