"""The ``imgclust`` command-line program: one module per command, each a thin shell.

Exit codes: 0 success; 1 the input or the parameters could not be used (one line on stderr,
no traceback, nothing written); 2 the command line itself is wrong (click's usage errors).
"""

from __future__ import annotations

import gc
import os
from importlib import import_module

import click

from imgclust import __version__
from imgclust._text import printable
from imgclust.errors import ImgclustError

#: Set to 1 to see the traceback of an unexpected error instead of its one-line summary.
DEBUG_ENV = "IMGCLUST_DEBUG"

#: Command name -> (module of imgclust.cli, attribute). A command's module is imported when
#: the command runs (or help lists it), so that ``segment`` does not import what ``group``
#: or ``classify`` need.
_COMMANDS = {
    "segment": ("segment", "command"),
    "choose-k": ("choose_k", "command"),
    "edges": ("edges", "command"),
    "classify": ("classify", "command"),
    "evaluate": ("evaluate", "command"),
    "group": ("group", "command"),
    "assign": ("group", "assign_command"),
    "representatives": ("semi", "representatives_command"),
    "label": ("semi", "label_command"),
    "propagate": ("semi", "propagate_command"),
    "review": ("review", "command"),
    "experiment": ("experiment", "command"),
    "demo": ("demo", "command"),
}


class _Group(click.Group):
    """Loads commands on demand; turns imgclust's own errors into one-line messages with exit
    code 1."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS:
            return None
        module, attribute = _COMMANDS[name]
        return getattr(import_module(f"imgclust.cli.{module}"), attribute)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["imgclust.argv"] = list(args)  # for the "run again" line of the reports
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ImgclustError as exc:
            raise click.ClickException(printable(str(exc))) from None
        except KeyboardInterrupt:
            raise click.Abort() from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except OSError as exc:  # the machine rather than the input: a full disk, a lost file
            raise click.ClickException(printable(_os_error_line(exc))) from None
        except Exception as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            raise click.ClickException(
                printable(
                    f"unexpected {type(exc).__name__}: {exc} (a bug in imgclust: please report "
                    f"it; {DEBUG_ENV}=1 shows where it happened)"
                )
            ) from None


def _os_error_line(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}; nothing was changed in the output folder"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="imgclust")
def cli() -> None:
    """Cluster images: colour segmentation of photos (segment, choose-k, edges),
    land-cover classes of rasters (classify, evaluate) and collections of images grouped by
    similarity (group, assign), and a few labels spread to many (representatives, label,
    propagate, experiment).

    Run `imgclust demo` to see every output on a sample photo.
    """


def main() -> None:
    """Entry point of the ``imgclust`` script."""
    # Read by OpenBLAS when NumPy loads it, which no module imported so far does: its threads
    # go to sleep when a call ends instead of spinning for 2**28 cycles (about 0.1 s) on the
    # next, which here took the second core from the command's own threads (0.1 s of CPU, 4%
    # of `segment`'s wall time). BLAS calls still use every core.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    try:
        cli(prog_name="imgclust")
    finally:
        # At exit the interpreter's last collection walks every object of NumPy, SciPy,
        # scikit-learn and matplotlib (0.2-0.6 s); they are freed with the process anyway.
        gc.freeze()
