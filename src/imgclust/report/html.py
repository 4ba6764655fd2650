"""One HTML page per job: ``report.html`` in the output folder.

The page stands alone: styles and scripts inline, no network (no CDN, no remote fonts), the
job's images linked by relative paths, so the folder can be zipped and mailed. Every piece of
text that comes from the user (file names, folder names, labels, parameters) goes through
:func:`html.escape`; the page's scripts (sorting tables, enlarging images, the map of a
collection) build no markup from data: they set user text with ``textContent``.
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Iterable, Sized
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path

from imgclust._text import printable
from imgclust.report.image_map import map_section

__all__ = ["Report", "Swatch", "command_line"]

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafaf8}
header,main{max-width:1100px;margin:auto;padding:0 1rem}
header{padding-top:1rem}h1{font-size:1.4rem;margin:.2rem 0}
h2{font-size:1.1rem;margin:1.6rem 0 .5rem;border-bottom:1px solid #ddd}
code{background:#eee;padding:.1rem .3rem;border-radius:3px;overflow-wrap:anywhere}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:.5rem}
.fact{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5rem}
.fact b{display:block;font-size:1.2rem}
figure{margin:0 0 1rem;background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5rem}
figure img{max-width:100%;height:auto;cursor:zoom-in;display:block;margin:auto}
figcaption{color:#555;font-size:.9rem;margin-top:.3rem}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,440px),1fr));
gap:.6rem}
.thumbs{grid-template-columns:repeat(auto-fill,minmax(110px,1fr))}
.thumbs img{width:100%;image-rendering:pixelated}
.sheets{display:flex;flex-wrap:wrap;gap:.6rem;align-items:flex-start}
.sheets figure{flex:0 1 auto;max-width:100%}
.sheets img{width:auto;max-width:100%}
table{border-collapse:collapse;background:#fff;width:max-content;min-width:100%;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
th{background:#f0f0ec;cursor:pointer;user-select:none}
.scroll{overflow-x:auto}
#large{position:fixed;inset:0;background:rgba(0,0,0,.85);display:none;align-items:center;
justify-content:center;cursor:zoom-out}
#large img{max-width:96vw;max-height:96vh;background:#fff}
.swatch{display:inline-block;width:1.1em;height:1.1em;border:1px solid #999;
vertical-align:middle;margin-right:.4em;border-radius:2px}
ul.links li{margin:.3rem 0}
footer{color:#666;font-size:.85rem;max-width:1100px;margin:2rem auto;padding:0 1rem}
"""

_SCRIPT = """
"use strict";
document.querySelectorAll("table.sortable th").forEach((th, column) => {
  th.addEventListener("click", () => {
    const body = th.closest("table").tBodies[0];
    const rows = [...body.rows];
    const ascending = th.dataset.order !== "asc";
    th.dataset.order = ascending ? "asc" : "desc";
    const key = (row) => row.cells[column].textContent;
    rows.sort((a, b) => {
      const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      const order = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach((row) => body.append(row));
  });
});
const large = document.getElementById("large");
const largeImage = large.querySelector("img");
document.querySelectorAll("main img").forEach((image) => {
  image.addEventListener("click", () => {
    largeImage.src = image.src;
    largeImage.alt = image.alt;
    large.style.display = "flex";
  });
});
large.addEventListener("click", () => { large.style.display = "none"; });
"""


def command_line() -> str:
    """The ``imgclust`` command being run, quoted to paste into a shell ("" from Python)."""
    import click

    context = click.get_current_context(silent=True)
    if context is None or "imgclust.argv" not in context.meta:
        return ""
    return shlex.join(["imgclust", *context.meta["imgclust.argv"]])


def _run_again(earlier: list[str]) -> str:
    lines = [*earlier, command_line()]
    shown = [f"<code>{_e(line)}</code>" for line in lines if line]
    return "<br>".join(shown) if shown else "Made from Python, not the command line."


def _e(value: object) -> str:
    """``value`` as HTML text: escaped, and a file name's undecodable bytes or control
    characters written as ``\\xNN`` (a UTF-8 page cannot hold them)."""
    return html.escape(printable(str(value)), quote=True)


@dataclass(frozen=True)
class Swatch:
    """A table cell showing a colour (``#rrggbb``) and its code."""

    color: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", self.color):
            raise ValueError(f"{self.color!r} is not a #rrggbb colour")

    def __str__(self) -> str:
        return self.color


def _cell(value: object) -> str:
    if isinstance(value, Swatch):  # the colour is checked, so it can go into the style
        return f'<td><span class="swatch" style="background:{value.color}"></span>{value}</td>'
    return f"<td>{_e(value)}</td>"


def _parameters_section(parameters: dict) -> str:
    if not parameters:
        return ""
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in parameters.items())
    return f'<h2>Parameters</h2><div class="scroll"><table><tbody>{rows}</tbody></table></div>'


def _figure(relative: str, caption: str, width: str = "") -> str:
    style = f' style="width:{width}"' if width else ""
    return (
        f'<figure><img src="{_e(relative)}" alt="{_e(caption)}" loading="lazy"{style}>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


#: The width a figure's image can take in ``main`` (its maximum width, less its padding and
#: the figure's padding and border), for CSS.
_IMAGE_ROOM = "(min(100vw, 1100px) - 3rem - 2px)"


def _one_scale_widths(folder: Path, paths: list[str]) -> list[str]:
    """CSS widths that show images at their natural size where the widest fits the page, and
    all at the one scale that makes the widest fit where it does not (a phone)."""
    from PIL import Image

    natural = []
    for path in paths:
        with Image.open(folder / path) as image:  # reads the header only
            natural.append(image.width)
    widest = max(natural, default=1)
    return [f"min({w}px, calc({_IMAGE_ROOM} * {w / widest:.4f}))" for w in natural]


def per_label_rows(per_label: dict) -> list[list[str]]:
    """Rows of a per-label table (label, precision, recall after the majority mapping); a label
    that no cluster was mapped to has no precision, and says so instead of ``nan``."""
    rows = []
    for label, scores in per_label.items():
        precision = scores["precision"]
        shown = "no cluster mapped to it" if precision != precision else f"{precision:.3f}"
        rows.append([label, shown, f"{scores['recall']:.3f}"])
    return rows


@dataclass
class Report:
    """A report page, built section by section and written with :meth:`write`.

    Parameters
    ----------
    title : str
        The job, e.g. ``"imgclust group"``.
    subject : str
        What it ran on (a file, a folder, a dataset).
    earlier_commands : list of str
        Commands that made the folder before this one, shown before it under "Run again".
    """

    title: str
    subject: str
    parts: list[str] = field(default_factory=list)
    earlier_commands: list[str] = field(default_factory=list)

    def facts(self, items: list[tuple[str, object]]) -> Report:
        """The headline figures, as tiles."""
        tiles = "".join(
            f'<div class="fact">{_e(name)}<b>{_e(value)}</b></div>' for name, value in items
        )
        self.parts.append(f'<div class="facts">{tiles}</div>')
        return self

    def heading(self, text: str) -> Report:
        self.parts.append(f"<h2>{_e(text)}</h2>")
        return self

    def figure(self, folder: Path, relative: str, caption: str) -> Report:
        """An image of the output folder, if it was written."""
        if (folder / relative).is_file():
            self.parts.append(_figure(relative, caption))
        return self

    def gallery(
        self,
        folder: Path,
        items: list[tuple[str, str]],
        *,
        thumbnails: bool = False,
        natural: bool = False,
    ) -> Report:
        """Several images side by side: (relative path, caption); ``thumbnails`` packs small
        images closer and draws them larger; ``natural`` shows each at its own size (contact
        sheets of different widths keep one scale), narrower than the page when it has to."""
        present = [(path, caption) for path, caption in items if (folder / path).is_file()]
        widths = (
            _one_scale_widths(folder, [path for path, _ in present])
            if natural
            else [""] * len(present)
        )
        figures = "".join(
            _figure(path, caption, width)
            for (path, caption), width in zip(present, widths, strict=True)
        )
        kind = "sheets" if natural else "gallery thumbs" if thumbnails else "gallery"
        self.parts.append(f'<div class="{kind}">{figures}</div>')
        return self

    def table(
        self, header: list[str], rows: Iterable, *, total: int | None = None, limit: int = 2000
    ) -> Report:
        """A table that sorts by a click on its header: the first ``limit`` of ``rows`` (an
        iterable, read no further), out of ``total`` (default: ``len(rows)``)."""
        shown = list(islice(rows, limit))
        total = len(rows) if total is None and isinstance(rows, Sized) else total
        head = "".join(f"<th>{_e(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in shown)
        hidden = (total or 0) - len(shown)
        more = f"<p>{hidden:,} more rows in the CSV files.</p>" if hidden > 0 else ""
        self.parts.append(
            f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{more}"
        )
        return self

    def links(self, items: list[tuple[str, str]]) -> Report:
        """A list of links to other pages of the folder: (relative path, text)."""
        entries = "".join(f'<li><a href="{_e(href)}">{_e(text)}</a></li>' for href, text in items)
        self.parts.append(f'<ul class="links">{entries}</ul>')
        return self

    def files(self, *folders: Path) -> Report:
        """A section linking every output in ``folders`` (the output folder, and a staging
        folder of files still to land in it), folders too, by name."""
        entries = sorted(
            {
                p.name + ("/" if p.is_dir() else "")
                for folder in folders
                for p in Path(folder).iterdir()
                if not p.name.startswith(".") and p.name != "report.html"
            }
        )
        self.heading("Files")
        return self.links([(name, name) for name in entries])

    def interactive_map(self, payload: dict | None) -> Report:
        """The map of a collection a person explores (:mod:`imgclust.report.image_map`):
        nothing when there is no map."""
        if payload is not None and payload["n"]:
            self.parts.append(map_section(payload))
        return self

    def text(self, text: str) -> Report:
        self.parts.append(f"<p>{_e(text)}</p>")
        return self

    def render(self, parameters: dict, timings: dict[str, float]) -> str:
        from imgclust import __version__

        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        timing_text = ", ".join(f"{_e(k)} {v:.2f} s" for k, v in timings.items())
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(self.title)}: {_e(self.subject)}</title>"
            '<link rel="icon" href="data:,">'
            f"<style>{_STYLE}</style></head><body>"
            f"<header><h1>{_e(self.title)}</h1><div><code>{_e(self.subject)}</code></div>"
            f"</header><main>{''.join(self.parts)}"
            f"{_parameters_section(parameters)}"
            f"<h2>Run again</h2><p>{_run_again(self.earlier_commands)}</p>"
            f"<p>Timings: {timing_text or '-'}</p></main>"
            f"<footer>imgclust {_e(__version__)}, {now}</footer>"
            '<div id="large"><img alt=""></div>'
            f"<script>{_SCRIPT}</script></body></html>"
        )

    def write(
        self,
        folder: Path,
        parameters: dict,
        timings: dict[str, float],
        *,
        into: Path | None = None,
    ) -> Path:
        """Write ``report.html`` into ``folder`` (or ``into``, its staging folder; whole or
        not at all) and return its path."""
        from imgclust.io.outputs import write_text_atomic

        path = Path(into if into is not None else folder) / "report.html"
        write_text_atomic(path, self.render(parameters, timings))
        return path
