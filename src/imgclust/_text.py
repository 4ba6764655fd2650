"""Text that came from a file system or a user, made safe for where it is shown.

A module of its own, outside ``imgclust.io`` (whose package imports NumPy), so that the
command line can use it before OpenBLAS's settings are made.

A file name is bytes on POSIX: one that is not UTF-8 reaches Python as a string with lone
surrogates (``os.fsdecode``), which no UTF-8 file, terminal or page can hold, and any name may
hold control characters (an escape sequence clears a terminal; a newline splits a CSV row or a
one-line error). :func:`printable` writes both as backslash escapes (``caf\\xe9.png``,
``\\x1b[2J``), so they are shown as what they are and written safely anywhere; the file itself
is still opened by its real name. :func:`for_matplotlib` also escapes the ``$`` that
matplotlib reads as the start of mathematics.
"""

from __future__ import annotations

__all__ = ["for_matplotlib", "printable"]


def printable(text: str) -> str:
    """``text`` with undecodable bytes and unprintable characters written as escapes.

    Bytes of a name that is not UTF-8 (lone surrogates) become ``\\xNN``; control characters
    and other unprintable ones (newline, tab, escape, ...) become ``\\n``, ``\\t``, ``\\x1b``,
    ``\\u2028``... Printable text, accents and every script included, is left as it is.
    """
    if text.isprintable():
        return text
    return "".join(_escaped(c) for c in text)


def _escaped(character: str) -> str:
    if character.isprintable():
        return character
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (os.fsdecode's surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:  # any other lone surrogate (from JSON, say)
        return f"\\u{code:04x}"
    return character.encode("unicode_escape").decode("ascii")


def for_matplotlib(text: str) -> str:
    """:func:`printable`, with each ``$`` escaped so that matplotlib draws it as a dollar sign
    instead of parsing what follows as mathematics (``Price $5`` or ``$$`` raised)."""
    return printable(str(text)).replace("$", r"\$")
