"""Fonts for the text imgclust draws into pictures (the legend of ``classes.png``, captions of
contact sheets): class names and file names in any script a user types.

Pillow's built-in font has no glyph beyond ASCII (``forêt`` came out as ``for▯t``). The
DejaVu Sans font that matplotlib ships covers Latin with every accent, Greek, Cyrillic,
Armenian, Georgian, Hebrew and Arabic; it is found as matplotlib's package data without
importing matplotlib (half a second of ``classify``). For text it lacks (Chinese, Japanese,
Korean, Devanagari, ...) the fonts of the system are searched, once per process and only
then; when none has every character, the text is drawn with what DejaVu has and the caller is
told which texts could not be drawn whole, to say so.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path

from PIL import ImageFont

__all__ = ["DrawingFont", "font_for"]

#: File names of fonts with wide coverage, tried (in this order) for text DejaVu lacks.
_WIDE_FONTS = ("noto", "sourcehan", "wqy", "wenquanyi", "droidsans", "unifont", "arialuni",
               "msgothic", "msyh", "simsun", "pingfang", "hiragino", "applegothic", "nanum",
               "ipa", "takao", "lohit", "freesans")  # fmt: skip
_FONT_DIRS = (
    "/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts",
    "/System/Library/Fonts", "/Library/Fonts", "C:/Windows/Fonts",
)  # fmt: skip
_MAX_CANDIDATES = 60


@functools.cache
def _dejavu() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    return path if path.is_file() else None


@functools.cache
def _characters(path: Path) -> frozenset[int]:
    """The code points a font file has glyphs for (its best cmap; a collection's first)."""
    from fontTools.ttLib import TTFont  # matplotlib's own dependency

    try:
        with TTFont(path, fontNumber=0, lazy=True) as font:
            return frozenset(font.getBestCmap() or {})
    except Exception:  # a font file fontTools cannot read is no candidate
        return frozenset()


@functools.cache
def _system_fonts() -> tuple[Path, ...]:
    """Font files of the system whose names promise wide coverage, best first."""
    found = []
    for folder in _FONT_DIRS:
        root = Path(os.path.expanduser(folder))
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.suffix.lower() in (".ttf", ".otf", ".ttc")]

    def rank(path: Path) -> int:
        name = path.name.lower().replace("-", "").replace("_", "")
        return next((i for i, hint in enumerate(_WIDE_FONTS) if hint in name), len(_WIDE_FONTS))

    ranked = sorted((p for p in found if rank(p) < len(_WIDE_FONTS)), key=lambda p: (rank(p), p))
    return tuple(ranked[:_MAX_CANDIDATES])


class DrawingFont:
    """A Pillow font and the texts it cannot draw whole (``missing``)."""

    def __init__(self, font, missing: list[str]) -> None:
        self.font = font
        self.missing = missing


def _covers(path: Path | None, needed: set[int]) -> bool:
    return path is not None and needed <= _characters(path)


def font_for(texts: Iterable[str], size: int) -> DrawingFont:
    """A font of ``size`` pixels that draws every character of ``texts`` where one can be
    found: DejaVu Sans, else a font of the system that has them all, else DejaVu (or Pillow's
    own font without matplotlib) and the texts it cannot draw whole."""
    texts = list(texts)
    needed = {ord(c) for text in texts for c in text if not c.isspace()}
    dejavu = _dejavu()
    if dejavu is None:  # pragma: no cover - matplotlib is a dependency
        font = ImageFont.load_default(size=size)
        return DrawingFont(font, [t for t in texts if not t.isascii()])
    if _covers(dejavu, needed):
        return DrawingFont(ImageFont.truetype(str(dejavu), size), [])
    for candidate in _system_fonts():
        if _covers(candidate, needed):
            return DrawingFont(ImageFont.truetype(str(candidate), size), [])
    have = _characters(dejavu)
    missing = [t for t in texts if not {ord(c) for c in t if not c.isspace()} <= have]
    return DrawingFont(ImageFont.truetype(str(dejavu), size), missing)
