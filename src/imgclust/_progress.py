"""How library functions report progress without knowing about terminals.

A job takes ``progress``: a factory called as ``progress(message, total)`` that returns a
context manager yielding ``advance(n=1)``. The command-line program passes one that draws a
rich progress bar; the default does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["Advance", "ProgressFactory", "no_progress"]

Advance = Callable[..., None]
ProgressFactory = Callable[[str, int], AbstractContextManager[Advance]]


@contextmanager
def no_progress(message: str, total: int) -> Iterator[Advance]:
    """A progress factory that shows nothing."""
    yield lambda n=1: None
