"""Applying a review (``imgclust review FOLDER --apply``) to either kind of folder it can
correct: the output folder of ``group`` or of ``representatives``."""

from __future__ import annotations

import os

from imgclust._progress import ProgressFactory, no_progress
from imgclust.collection.jobs import apply_group_review
from imgclust.collection.review import ReviewStore
from imgclust.errors import InvalidParameterError
from imgclust.semi.jobs import apply_representatives_review

__all__ = ["apply_review"]


def apply_review(folder: str | os.PathLike, *, progress: ProgressFactory = no_progress) -> dict:
    """Apply ``folder/review.json``: the run that made the folder is repeated on the same
    images with the same settings and the reviewed clusters and names in place of the
    clustering; the folder's results are replaced (the user's files kept, as with
    ``--overwrite``). Returns the new summary."""
    kind = ReviewStore(folder).kind
    apply = apply_group_review if kind == "group" else apply_representatives_review
    try:
        return apply(folder, progress=progress)
    except TypeError as exc:  # a hand-edited "run" with settings this imgclust lacks
        raise InvalidParameterError(
            f"{folder}: the settings of the run it records cannot be repeated ({exc})"
        ) from None
