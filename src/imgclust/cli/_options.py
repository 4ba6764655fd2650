"""Options shared by several commands, and the terminal output helpers."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from contextlib import contextmanager
from functools import cached_property

import click

from imgclust._progress import ProgressWithNotes
from imgclust._text import printable
from imgclust.distributed import SCHEDULER_ENV
from imgclust.io.images import DEFAULT_MAX_PIXELS, read_image
from imgclust.io.outputs import json_text
from imgclust.pixels.colorspace import COLOR_SPACES


class FiniteFloat(click.FloatRange):
    """A number in a range, refusing NaN and the infinities (which ``FloatRange`` lets
    through, and which would silently give one cluster or no iteration)."""

    name = "finite number"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _compose(*decorators: Callable) -> Callable:
    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def _silence_when_quiet(ctx: click.Context, param: click.Parameter, quiet: bool) -> bool:
    """With -q, the warnings of the libraries underneath (scikit-learn, rasterio and GDAL,
    Dask and its worker processes) are not printed either: only errors are."""
    if quiet:
        import logging
        import os
        import warnings

        warnings.simplefilter("ignore")
        os.environ["PYTHONWARNINGS"] = "ignore"  # Dask's worker processes start with it
        for name in ("rasterio", "distributed", "numba", "py.warnings"):
            logging.getLogger(name).setLevel(logging.ERROR)
    return quiet


quiet_option = click.option(
    "-q",
    "--quiet",
    is_flag=True,
    callback=_silence_when_quiet,
    help="Print nothing but errors.",
)
summary_options = _compose(
    click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout."),
    quiet_option,
)
output_options = _compose(
    click.option(
        "-o",
        "--output",
        "output",
        type=click.Path(file_okay=False),
        default=None,
        help="Output folder (default: <image name>-<command> beside the current folder).",
    ),
    click.option("--overwrite", is_flag=True, help="Replace results already in the output folder."),
    summary_options,
)

report_option = click.option(
    "--no-report",
    "no_report",
    is_flag=True,
    help="Do not write report.html (the page with every figure and table).",
)


def scheduler_option(what: str) -> Callable:
    """``--scheduler``: run ``what`` on a Dask cluster (default ``$IMGCLUST_SCHEDULER``)."""
    return click.option(
        "--scheduler",
        envvar=SCHEDULER_ENV,
        metavar="ADDRESS",
        help=f"{what} on a Dask cluster: tcp://HOST:8786, or local:N for N worker processes "
        "here (default: $IMGCLUST_SCHEDULER, else no cluster; extra [dask]).",
    )


def cluster_row(cluster: dict) -> tuple[str, str]:
    """The summary row of a run on a Dask cluster (``describe_cluster``'s dict)."""
    text = f"{cluster['workers']} workers, {cluster['threads']} threads at {cluster['scheduler']}"
    return ("dask", text)


def max_pixels_option(action: str = "Refuse") -> Callable:
    """``--max-pixels``: the decompression-bomb guard; ``action`` says what happens past it."""
    return click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help=f"{action} larger images (decompression-bomb guard).",
    )


image_options = _compose(
    max_pixels_option(),
    click.option(
        "--mask",
        type=click.Path(dir_okay=False),
        default=None,
        help="Image of the same size; only pixels where it is non-zero are used.",
    ),
)

space_option = click.option(
    "--space",
    "color_space",
    type=click.Choice(COLOR_SPACES, case_sensitive=False),
    default="lab",
    show_default=True,
    help="Colour space the distances are measured in.",
)
seed_option = click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**32 - 1),
    default=0,
    show_default=True,
    help="Random seed: the same seed gives the same result.",
)

kmeans_options = _compose(
    space_option,
    click.option(
        "--init",
        type=click.Choice(["k-means++", "random"]),
        default="k-means++",
        show_default=True,
        help="Seeding of each attempt.",
    ),
    click.option(
        "--n-init",
        type=click.IntRange(min=1),
        default=8,
        show_default=True,
        help="Attempts from different seedings; the lowest inertia is kept.",
    ),
    click.option(
        "--max-iter",
        type=click.IntRange(min=1),
        default=300,
        show_default=True,
        help="Most iterations of one attempt.",
    ),
    click.option(
        "--tol",
        type=FiniteFloat(min=0),
        default=1e-4,
        show_default=True,
        help="Stop when the centres' squared movement is at most TOL times the colours' "
        "variance (scikit-learn's meaning).",
    ),
    click.option(
        "--epsilon",
        type=FiniteFloat(min=0),
        default=None,
        help="Stop instead when no centre moves more than EPSILON colour-space units "
        "(OpenCV's TERM_CRITERIA_EPS).",
    ),
    seed_option,
)


def load_mask(path: str | None, max_pixels: int) -> object:
    """Read a mask image: non-zero (in any channel) means 'use this pixel'."""
    if path is None:
        return None
    mask = read_image(path, max_pixels=max_pixels)
    return mask.any(axis=2) if mask.ndim == 3 else mask != 0


def default_output(image: str, command: str) -> str:
    from pathlib import Path

    return f"{Path(image).stem}-{command}"


class Reporter:
    """Progress on stderr and the closing summary on stdout, as --quiet and --json ask.

    rich is imported only when something is shown (0.02 s of a command that takes one).
    """

    def __init__(self, *, quiet: bool = False, as_json: bool = False) -> None:
        self.quiet = quiet
        self.as_json = as_json
        self.show_progress = not quiet and sys.stderr.isatty()

    @cached_property
    def err(self):
        from rich.console import Console

        return Console(stderr=True, quiet=not self.show_progress)

    @cached_property
    def out(self):
        from rich.console import Console

        return Console(quiet=self.quiet, highlight=False)

    @contextmanager
    def step(self, message: str):
        if not self.show_progress:
            yield
            return
        with self.err.status(message):
            yield

    @cached_property
    def bar(self) -> ProgressWithNotes:
        """The jobs' ``progress``: a bar for ``total`` steps (``bar(message, total)`` yields
        ``advance(n=1)``) and ``bar.note(text)`` for a line to see at once."""
        return ProgressWithNotes(self._bar, self.note)

    @contextmanager
    def _bar(self, message: str, total: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), console=self.err, transient=True) as bar:
            task = bar.add_task(message, total=total)
            yield lambda n=1: bar.advance(task, n)

    def note(self, text: str) -> None:
        """One line on standard error, now (unless --quiet): a download starting."""
        if not self.quiet:
            click.echo(printable(text), err=True)

    def summary(self, title: str, rows: list[tuple[str, str]], data: dict) -> None:
        """Print the closing table (``data`` as JSON with --json), then the report's path on a
        line of its own, never wrapped, so that it can be copied or clicked."""
        if self.as_json:
            click.echo(json_text(data, default=str))
            return
        if self.quiet:
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_header=False, title_justify="left", box=None)
        table.add_column(style="bold")
        table.add_column()
        for key, value in rows:  # a name's escape sequences and [brackets] are shown as text
            table.add_row(Text(printable(str(key))), Text(printable(str(value))))
        self.out.print(table)
        if data.get("report"):
            report = printable(str(data["report"]))
            self.out.print(f"Report: {report}", soft_wrap=True, markup=False)


def parse_k(value: str) -> int | str:
    """``-k`` takes a positive integer or ``auto``."""
    if str(value).lower() == "auto":
        return "auto"
    try:
        k = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a whole number nor 'auto'") from None
    if k < 1:
        raise click.BadParameter(f"K={k} must be at least 1")
    return k


def serve_until_stopped(server, open_browser: bool) -> None:
    """Serve a page (``label``, ``review``) until Ctrl+C, opening it in a browser first when
    asked; the server is stopped whatever happens."""
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
