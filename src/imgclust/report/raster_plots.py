"""Pictures of the raster jobs: quicklook, class map with legend, confusion heat map."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imgclust._text import for_matplotlib
from imgclust.report.fonts import font_for
from imgclust.report.plots import _figure

__all__ = ["classes_figure", "confusion_figure", "quicklook", "stretch_bands"]


def stretch_bands(bands: np.ndarray, valid: np.ndarray, percentiles=(2.0, 98.0)) -> np.ndarray:
    """Percentile contrast stretch of each band over the valid pixels, to uint8 ``(h, w, n)``."""
    out = np.zeros((*valid.shape, bands.shape[0]), dtype=np.uint8)
    for i, band in enumerate(bands):
        values = band[valid]
        if values.size == 0:
            continue
        low, high = np.percentile(values, percentiles)
        span = high - low if high > low else 1.0
        scaled = np.clip((band - low) / span * 255.0 + 0.5, 0, 255)
        out[..., i] = np.where(valid, scaled, 0).astype(np.uint8)
    return out


def quicklook(bands: np.ndarray, valid: np.ndarray, percentiles=(2.0, 98.0)) -> Image.Image:
    """The scene as a person sees it: stretched RGB (or grey), nodata transparent (RGBA only
    when there is nodata)."""
    stretched = stretch_bands(bands, valid, percentiles)
    if stretched.shape[2] == 1:
        stretched = np.repeat(stretched, 3, axis=2)
    if valid.all():
        return Image.fromarray(np.ascontiguousarray(stretched), mode="RGB")
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    return Image.fromarray(np.dstack([stretched, alpha]), mode="RGBA")


def classes_figure(codes: np.ndarray, classes: list[dict]) -> tuple[Image.Image, list[str]]:
    """The class map in its colours (nodata white) with a legend beside it: each class's
    colour, code, name, share of the valid pixels and area; and the class names that no font
    here could draw whole (:func:`~imgclust.report.fonts.font_for`).

    Drawn with Pillow, not matplotlib: the figure is a picture and a list, and importing
    matplotlib alone would cost ``classify`` about half a second.
    """
    from PIL import ImageColor, ImageDraw

    colours = [(255, 255, 255)] + [ImageColor.getrgb(c["color"])[:3] for c in classes]
    palette = np.array(colours, dtype=np.uint8)
    picture = Image.fromarray(palette[codes])
    labels = [_legend_label(c) for c in classes]
    drawing = font_for([c["name"] for c in classes] + labels, 15)
    font = drawing.font
    row, margin, swatch = 24, 12, 16
    text_width = max((font.getlength(label) for label in labels), default=0)
    width = picture.width + 3 * margin + swatch + 8 + int(text_width)
    height = max(picture.height, len(classes) * row + 2 * margin) + 2 * margin
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(picture, (margin, margin))
    draw = ImageDraw.Draw(canvas)
    left = picture.width + 2 * margin
    top = margin + max(0, (picture.height - len(classes) * row) // 2)
    for i, (entry, label) in enumerate(zip(classes, labels, strict=True)):
        y = top + i * row
        draw.rectangle([left, y, left + swatch, y + swatch], fill=entry["color"], outline="black")
        draw.text((left + swatch + 8, y + swatch / 2), label, fill="black", font=font, anchor="lm")
    names = [c["name"] for c in classes]
    return canvas, [name for name in names if name in drawing.missing]


def _legend_label(entry: dict) -> str:
    name = entry["name"]
    named = name if name == f"class {entry['code']}" else f"{entry['code']} {name}"
    label = f"{named}: {entry['fraction']:.1%}"
    if "hectares" in entry:
        label += f", {entry['hectares']:,.0f} ha"
    return label


def confusion_figure(
    matrix: np.ndarray,
    row_labels: list[str],
    col_labels: list[str],
    title: str,
    *,
    xlabel: str = "class",
    ylabel: str = "reference",
):
    """Heat map of a confusion matrix, each row normalised to 1, counts written in cells."""
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    n_rows, n_cols = matrix.shape
    fig = _figure(max(4.0, 0.6 * n_cols + 2.5), max(3.5, 0.5 * n_rows + 2))
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    # labels are the user's (folder names, class names): a "$" must not start mathematics
    ax.set_xticks(range(n_cols), [for_matplotlib(t) for t in col_labels], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [for_matplotlib(t) for t in row_labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if n_rows * n_cols <= 400:
        for r in range(n_rows):
            for c in range(n_cols):
                colour = "white" if shares[r, c] > 0.6 else "black"
                ax.text(
                    c, r, f"{matrix[r, c]:,}", ha="center", va="center", fontsize=7, color=colour
                )
    fig.colorbar(image, ax=ax, label=f"share of the {ylabel} row")
    fig.tight_layout()
    return fig
