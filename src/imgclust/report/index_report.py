"""``report.html`` of a folder of several jobs (the demo's): a link to each job's page."""

from __future__ import annotations

from pathlib import Path

from imgclust.report.html import Report

__all__ = ["write_index_report"]


def write_index_report(
    folder: str | Path,
    title: str,
    jobs: list[tuple[str, str, str]],
    *,
    figures: list[tuple[str, str]] = (),
    timings: dict[str, float] | None = None,
    into: str | Path | None = None,
) -> Path:
    """Write ``folder/report.html`` linking the reports of the jobs in its subfolders.

    Parameters
    ----------
    folder : path
    title : str
    jobs : list of (name, report, headline)
        Each job's name, its ``report.html`` relative to ``folder``, and its headline figure.
    figures : list of (image, caption)
        Images (relative to ``folder``) shown under the links.
    timings : dict, optional
    into : path, optional
        Write the page there (a staging folder) instead of into ``folder``.
    """
    folder = Path(folder)
    report = Report(title, str(folder.resolve()))
    report.facts([(name, headline) for name, _, headline in jobs])
    report.heading("The report of each job")
    report.links([(path, f"{name}: {headline}") for name, path, headline in jobs])
    if figures:
        report.heading("At a glance")
        report.gallery(folder, list(figures))
    return report.write(folder, {}, timings or {}, into=into)
