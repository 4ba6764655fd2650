"""Shared fixtures: small images whose answers are known by hand."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

FOUR_COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [250, 250, 250]], dtype=np.uint8)


@pytest.fixture
def four_colour_image() -> np.ndarray:
    """12x10 RGB image: four flat blocks of known colour, 30 pixels each."""
    img = np.empty((12, 10, 3), dtype=np.uint8)
    for i, colour in enumerate(FOUR_COLOURS):
        img[i * 3 : (i + 1) * 3] = colour
    return img


@pytest.fixture
def photo() -> np.ndarray:
    """A real photo shipped with scikit-image, cut small to keep tests fast."""
    from skimage import data

    return data.astronaut()[::4, ::4].copy()


@pytest.fixture
def chromium():
    """Debian's Chromium and Playwright's launcher; the test skips, saying why, without them."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.skip("no Chromium here (Debian package 'chromium'; .ci/run installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install '.[test]')")
    return executable, sync_playwright
