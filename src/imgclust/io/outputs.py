"""Output folders that appear whole or not at all.

Every command writes into a hidden temporary folder beside its output folder and moves the
results into place only when all of them are written, so an error or an interrupted run never
leaves half-written files behind.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from imgclust.errors import OutputExistsError

__all__ = [
    "StagedOutputDir",
    "check_output_dir",
    "csv_text",
    "record_output",
    "write_text_atomic",
]


def check_output_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse an output folder that already holds files, unless ``overwrite``.

    Returns the path; raises :class:`OutputExistsError` with what to do about it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path} exists and is not a folder; choose another output folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputExistsError(
            f"{path} already holds files; pass --overwrite (overwrite=True) to replace the "
            "results in it, or choose another output folder"
        )
    return path


class StagedOutputDir:
    """Context manager: write into :attr:`path`, which becomes ``final`` on success.

    On an exception the staging folder is removed and ``final`` is left as it was. With
    ``overwrite``, files of the same name in an existing ``final`` are replaced one by one
    (each replacement is atomic); other files there are kept.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "result"
    >>> with StagedOutputDir(out) as stage:
    ...     _ = (stage.path / "a.txt").write_text("done")
    >>> (out / "a.txt").read_text()
    'done'
    """

    def __init__(self, final: str | os.PathLike, *, overwrite: bool = False) -> None:
        self.final = Path(final)
        self.overwrite = overwrite
        self.path: Path = Path()

    def __enter__(self) -> StagedOutputDir:
        check_output_dir(self.final, overwrite=self.overwrite)
        parent = self.final.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", suffix=".tmp", dir=parent))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            return
        try:
            self._commit()
        finally:
            shutil.rmtree(self.path, ignore_errors=True)

    def _commit(self) -> None:
        check_output_dir(self.final, overwrite=self.overwrite)  # it may have changed meanwhile
        if self.final.is_dir() and not any(self.final.iterdir()):
            self.final.rmdir()
        if not self.final.exists():
            os.rename(self.path, self.final)
            return
        for entry in self.path.iterdir():
            target = self.final / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)


def record_output(summary: dict, output: str | os.PathLike, report: bool) -> dict:
    """Add where a job wrote (``output``) and, if it wrote one, its ``report`` to its summary."""
    summary["output"] = str(Path(output))
    if report:
        summary["report"] = str(Path(output) / "report.html")
    return summary


def csv_text(header: list[str], rows) -> str:
    """A CSV file's text: ``header`` then ``rows``, one line each."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it into place: a
    reader sees the old file or the new one, never half of one."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
