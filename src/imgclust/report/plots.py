"""Pictures a person would rather look at than read.

Simple compositions (palette swatches, side-by-side views, overlays) are drawn with Pillow,
which is an order of magnitude faster than matplotlib at these sizes; charts with axes use
matplotlib's object API (no pyplot state, safe to call from a library).
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image, ImageDraw

#: zlib settings for the full-size RGB PNGs: flat colour regions compress well already at
#: level 1, and level 6 takes several times longer on a 12-megapixel image.
FAST_PNG = {"compress_level": 1}
#: zlib's run-length strategy (Z_RLE), for one-channel label and palette images: on a
#: 12-megapixel label map 4x faster than level 6 and smaller (0.30 against 0.33 MB); on
#: labels.png as fast as level 1 and a third smaller. (Pillow filters only greyscale rows, so
#: labels.png takes longer than indexed.png for the same bytes.) Also for a satellite
#: quicklook after PNG's filters: as small as level 1 and two thirds of its time (1 MP RGB:
#: 0.061 s against 0.094 s).
RLE_PNG = {"compress_type": zlib.Z_RLE}

__all__ = [
    "choose_k_figure",
    "colors3d_figure",
    "edges_overlay",
    "edges_preview",
    "palette_image",
    "side_by_side",
    "thumbnail",
]

_AXIS_NAMES = {
    "rgb": ("R", "G", "B"),
    "lab": ("L*", "a*", "b*"),
    "hsv": ("s·v·cos h", "s·v·sin h", "v"),
}


def thumbnail(image: np.ndarray | Image.Image, max_side: int = 1024) -> Image.Image:
    """A copy of an RGB(A) image whose longer side is at most ``max_side``.

    A box reduction by an integer factor comes first and Lanczos finishes from at least 1.5
    times the final size (Pillow's ``reducing_gap``): indistinguishable, and several times faster on
    a photo of many megapixels.
    """
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    scale = min(1.0, max_side / max(pil.size))
    size = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
    return pil.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.5)


def palette_image(
    palette: np.ndarray, fractions: np.ndarray, *, width: int = 800, height: int = 120
) -> Image.Image:
    """Swatches side by side, each as wide as its share of the pixels, largest first.

    Every colour gets at least one pixel column so that no cluster disappears.
    """
    order = np.argsort(-fractions, kind="stable")
    widths = np.maximum(1, np.round(fractions[order] * width).astype(int))
    canvas = Image.new("RGB", (int(widths.sum()), height), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for index, w in zip(order, widths, strict=True):
        draw.rectangle([x, 0, x + w - 1, height - 1], fill=tuple(int(v) for v in palette[index]))
        x += w
    return canvas


def side_by_side(
    left: np.ndarray | Image.Image,
    right: np.ndarray | Image.Image,
    *,
    titles: tuple[str, str] = ("original", "segmented"),
    max_side: int = 800,
) -> Image.Image:
    """Two images of the same size next to each other with a caption above each."""
    a, b = thumbnail(left, max_side).convert("RGB"), thumbnail(right, max_side).convert("RGB")
    gap, caption = 10, 24
    canvas = Image.new("RGB", (a.width + b.width + gap, max(a.height, b.height) + caption), "white")
    canvas.paste(a, (0, caption))
    canvas.paste(b, (a.width + gap, caption))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 4), titles[0], fill="black")
    draw.text((a.width + gap + 4, 4), titles[1], fill="black")
    return canvas


def edges_overlay(image: np.ndarray, edges: np.ndarray, colour=(255, 0, 0)) -> np.ndarray:
    """``image`` (RGB uint8) with the ``edges`` pixels painted in ``colour``."""
    out = image[:, :, :3].copy()
    out[edges] = colour
    return out


def pooled_edges(edges: np.ndarray, max_side: int) -> np.ndarray:
    """An edge map shrunk so its longer side is at most ``max_side``, each small pixel set when
    any pixel of its block is an edge: one-pixel edges stay visible at any size (a browser's
    averaging makes a 12-megapixel edge map look black)."""
    height, width = edges.shape
    factor = max(1, -(-max(height, width) // max_side))
    rows, cols = -(-height // factor), -(-width // factor)
    padded = np.zeros((rows * factor, cols * factor), dtype=bool)
    padded[:height, :width] = edges
    return padded.reshape(rows, factor, cols, factor).any(axis=(1, 3))


def edges_preview(image: np.ndarray, edges: np.ndarray, max_side: int = 800) -> Image.Image:
    """The edges over the image and the edges alone, side by side, at most ``max_side`` each,
    with no edge lost to the shrinking (see :func:`pooled_edges`)."""
    small_edges = pooled_edges(edges, max_side)
    size = (small_edges.shape[1], small_edges.shape[0])
    small_image = np.asarray(
        Image.fromarray(image[:, :, :3]).resize(size, Image.Resampling.LANCZOS, reducing_gap=1.5)
    )
    overlay = edges_overlay(small_image, small_edges)
    alone = (small_edges * np.uint8(255)).astype(np.uint8)
    return side_by_side(overlay, alone, titles=("edges over the image", "edges"), max_side=max_side)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def colors3d_figure(
    features: np.ndarray,
    labels: np.ndarray,
    palette: np.ndarray,
    centers: np.ndarray,
    color_space: str,
):
    """3-D scatter of sampled pixels in the clustering space, each coloured by its cluster.

    Parameters
    ----------
    features : (n, 3) ndarray
        Sampled pixels in ``color_space`` features.
    labels : (n,) ndarray
        Their clusters.
    palette : (K, 3) uint8
        Cluster colours.
    centers : (K, >=3) ndarray
        Cluster centres (first three features are drawn).
    """
    fig = _figure(7, 6)
    ax = fig.add_subplot(projection="3d")
    for k in range(palette.shape[0]):
        # One line of markers per cluster: Agg stamps a line's markers from one raster, twice
        # as fast as a scatter that draws every point as its own path.
        members = features[labels == k, :3]
        ax.plot(
            *members.T,
            linestyle="none",
            marker="o",
            markersize=1.4,
            markeredgewidth=0,
            alpha=0.5,
            color=palette[k] / 255.0,
        )
    ax.scatter(
        *centers.T[:3],
        c=palette / 255.0,
        s=160,
        edgecolors="black",
        linewidths=1.2,
        depthshade=False,
        marker="o",
    )
    names = _AXIS_NAMES.get(color_space, ("x", "y", "z"))
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_zlabel(names[2])
    ax.set_title(
        f"{features.shape[0]:,} sampled pixels in {color_space.upper()}, "
        f"K={palette.shape[0]} (large dots: centres)"
    )
    return fig


def choose_k_figure(sweep):
    """Elbow (inertia) and silhouette curves over K, with the chosen K marked."""
    fig = _figure(10, 4)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(sweep.ks, sweep.inertia, "o-", color="#1f77b4")
    ax1.set_xlabel("K")
    ax1.set_ylabel("within-cluster sum of squares")
    ax1.set_title("elbow")
    ax2.plot(sweep.ks, sweep.silhouette, "o-", color="#2ca02c")
    ax2.set_xlabel("K")
    ax2.set_ylabel("mean silhouette (sample)")
    ax2.set_title("silhouette")
    for ax in (ax1, ax2):
        ax.axvline(sweep.best_k, color="#d62728", linestyle="--", label=f"chosen K={sweep.best_k}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"K={sweep.best_k}: {sweep.rule}")
    fig.tight_layout()
    return fig
