"""How library functions report progress without knowing about terminals.

A job takes ``progress``: a factory called as ``progress(message, total)`` that returns a
context manager yielding ``advance(n=1)``. The command-line program passes one that draws a
rich progress bar; the default does nothing. A line that must be seen at once (a model being
downloaded) goes through :func:`note`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

__all__ = ["Advance", "ProgressFactory", "ProgressWithNotes", "no_progress", "note"]

Advance = Callable[..., None]
ProgressFactory = Callable[[str, int], AbstractContextManager[Advance]]


@contextmanager
def no_progress(message: str, total: int) -> Iterator[Advance]:
    """A progress factory that shows nothing."""
    yield lambda n=1: None


def note(progress: ProgressFactory, text: str) -> None:
    """Say ``text``, one line a person should see now (a download starting), where
    ``progress`` shows things: its ``note`` method when it has one (the command line's, which
    ``-q`` silences), else standard error, as torchvision says that it downloads."""
    say = getattr(progress, "note", None)
    if say is not None:
        say(text)
    else:
        print(text, file=sys.stderr, flush=True)


class ProgressWithNotes:
    """A progress factory that also takes notes: ``bar(message, total)`` for the bars and
    ``note(text)`` for the lines (see :func:`note`)."""

    def __init__(self, bar: ProgressFactory, note: Callable[[str], None]) -> None:
        self._bar = bar
        self.note = note

    def __call__(self, message: str, total: int) -> AbstractContextManager[Advance]:
        return self._bar(message, total)
