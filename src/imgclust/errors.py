"""Exceptions raised by imgclust.

Every error that imgclust raises on purpose derives from :class:`ImgclustError`, so a caller
(and the command-line program) can tell a problem with the input from a bug. Each subclass is
also a built-in exception of the matching kind, so ``except ValueError`` keeps working.
Messages are one line that says what was wrong and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ImageReadError",
    "ImageTooLargeError",
    "ImgclustError",
    "InvalidParameterError",
    "MissingDependencyError",
    "OutputError",
    "OutputExistsError",
]


class ImgclustError(Exception):
    """Root of every error imgclust raises on purpose."""


class InvalidParameterError(ImgclustError, ValueError):
    """A parameter or an input array does not fit what the function can do."""


class ImageReadError(ImgclustError, OSError):
    """A file could not be read as an image (missing, corrupt, truncated, unsupported)."""


class ImageTooLargeError(ImageReadError):
    """An image has more pixels than the allowed maximum (decompression-bomb guard)."""


class OutputExistsError(ImgclustError, FileExistsError):
    """An output already exists and overwriting was not asked for."""


class OutputError(ImgclustError, OSError):
    """An output cannot be written where it was asked for (permissions, a read-only disk, a
    file where a folder is needed)."""


class MissingDependencyError(ImgclustError, ImportError):
    """An optional dependency is needed; the message names the extra that installs it."""
