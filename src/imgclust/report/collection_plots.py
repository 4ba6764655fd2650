"""Pictures of a grouped collection: contact sheets, cluster centres, the 2-D map, the K sweep.

Contact sheets are composed with Pillow (fast for hundreds of thumbnails); charts with axes use
matplotlib's object API.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from imgclust._text import for_matplotlib
from imgclust.report.fonts import font_for
from imgclust.report.plots import _figure

__all__ = [
    "cluster_colours",
    "contact_sheet",
    "dendrogram_figure",
    "embedding_figure",
    "map_2d",
    "sweep_figure",
]


def contact_sheet(
    tiles: list[Image.Image], captions: list[str], *, tile: int = 96, columns: int = 6
) -> Image.Image:
    """Thumbnails in a grid, each centred in a ``tile`` square with a caption under it."""
    columns = max(1, min(columns, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    caption_height = 14
    cell_w, cell_h = tile + 8, tile + caption_height + 8
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = font_for([c[:18] for c in captions], 11).font  # file names in any script
    for n, (image, caption) in enumerate(zip(tiles, captions, strict=True)):
        x0, y0 = (n % columns) * cell_w + 4, (n // columns) * cell_h + 4
        thumb = image.convert("RGB")
        if max(thumb.size) != tile:
            scale = tile / max(thumb.size)
            size = (max(1, round(thumb.width * scale)), max(1, round(thumb.height * scale)))
            thumb = thumb.resize(
                size, Image.Resampling.NEAREST if scale > 2 else Image.Resampling.LANCZOS
            )
        sheet.paste(thumb, (x0 + (tile - thumb.width) // 2, y0 + (tile - thumb.height) // 2))
        draw.text((x0, y0 + tile + 1), caption[:18], fill=(40, 40, 40), font=font)
    return sheet


def cluster_colours(n: int) -> np.ndarray:
    """RGBA colours of ``n`` clusters (tab10, tab20, then turbo), as the figures draw them."""
    from matplotlib import colormaps

    name = "tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"
    cmap = colormaps[name]
    return np.array([cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(max(n, 1))])


def map_2d(points: np.ndarray) -> np.ndarray:
    """The points in 2-D: as they are, or on their first two principal axes (padded with
    zeros where there are fewer, as with one point or one feature)."""
    if points.shape[1] == 2:
        return points
    if points.shape[1] > 2:
        centred = points - points.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        points = centred @ vt[:2].T
    return np.column_stack([points, np.zeros((len(points), 2 - points.shape[1]))])


def embedding_figure(points: np.ndarray, labels: np.ndarray, truth=None, title: str = ""):
    """The images as points of the clustering space (its first two principal axes beyond 2-D),
    coloured by cluster; with known labels, a second panel coloured by label."""
    xy = map_2d(np.asarray(points, dtype=np.float64))
    panels = 2 if truth is not None else 1
    fig = _figure(6.5 * panels, 6)
    axes = np.atleast_1d(fig.subplots(1, panels))
    n = int(labels.max(initial=-1)) + 1
    colours = cluster_colours(n)
    noise = labels < 0
    ax = axes[0]
    if noise.any():
        ax.scatter(*xy[noise].T, s=4, c="#bbbbbb", label="noise", linewidths=0)
    ax.scatter(*xy[~noise].T, s=6, c=colours[labels[~noise]], linewidths=0)
    for c in range(n):
        centre = np.median(xy[labels == c], axis=0)
        ax.annotate(
            str(c),
            centre,
            ha="center",
            va="center",
            fontsize=9,
            weight="bold",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8},
        )
    ax.set_title(title or "clusters")
    if truth is not None:
        known = np.array([t is not None for t in truth])
        names = sorted({t for t in truth if t is not None})
        code = {name: i for i, name in enumerate(names)}
        label_colours = cluster_colours(len(names))
        ax2 = axes[1]
        ax2.scatter(*xy[~known].T, s=4, c="#bbbbbb", linewidths=0)
        codes = np.array([code[t] for t in truth if t is not None], dtype=int)
        ax2.scatter(*xy[known].T, s=6, c=label_colours[codes], linewidths=0)
        for name in names:
            centre = np.median(xy[known][codes == code[name]], axis=0)
            ax2.annotate(
                for_matplotlib(str(name)[:16]),
                centre,
                ha="center",
                va="center",
                fontsize=8,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8},
            )
        ax2.set_title("known labels")
    for a in axes:
        a.set_xticks([])
        a.set_yticks([])
    fig.tight_layout()
    return fig


def sweep_figure(sweep):
    """The scores of a sweep over K (four, and the BIC where the rule used it), with the
    chosen K (and the elbow) marked."""
    from matplotlib.ticker import MaxNLocator

    curves = [
        (sweep.wcss, "within-cluster sum of squares", "elbow"),
        (sweep.silhouette, "mean silhouette (higher is better)", "silhouette"),
        (sweep.davies_bouldin, "Davies-Bouldin (lower is better)", "Davies-Bouldin"),
        (sweep.calinski_harabasz, "Calinski-Harabasz (higher is better)", "Calinski-Harabasz"),
    ]
    if getattr(sweep, "bic", None) is not None:
        gaps = not np.isfinite(sweep.bic).all()  # a cluster too small for a covariance
        curves.insert(
            0,
            (
                sweep.bic,
                "BIC above its lowest (lower is better)"
                + ("\ngaps: a cluster too small for a covariance" if gaps else ""),
                "clusters as Gaussians",
            ),
        )
    fig = _figure(3 * len(curves), 3.6)
    axes = fig.subplots(1, len(curves))
    for ax, (values, ylabel, title) in zip(axes, curves, strict=True):
        ax.plot(sweep.ks, values, "o-", markersize=3)
        ax.axvline(sweep.best_k, color="#d62728", linestyle="--", label=f"chosen K={sweep.best_k}")
        if sweep.elbow_k is not None and title == "elbow":
            ax.axvline(
                sweep.elbow_k, color="#7f7f7f", linestyle=":", label=f"knee K={sweep.elbow_k}"
            )
        ax.set_xlabel("K")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"K={sweep.best_k}: {sweep.rule}")
    fig.tight_layout()
    return fig


def _node_clusters(linkage: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cluster of every node of the tree (leaves, then one per merge): the one cluster all
    its leaves are in, or -1 for a merge above the cut."""
    n = len(labels)
    clusters = np.concatenate([labels, np.full(len(linkage), -1)]).astype(np.int64)
    for i, (a, b) in enumerate(linkage[:, :2].astype(np.int64)):
        if clusters[a] == clusters[b] and clusters[a] >= 0:
            clusters[n + i] = clusters[a]
    return clusters


def dendrogram_figure(linkage: np.ndarray, labels: np.ndarray, *, leaves: int = 40):
    """scipy's dendrogram of the merge tree, its last ``leaves`` branches drawn (each labelled
    with its cluster and its number of images), branches in the colours of the clusters (as in
    the 2-D map), merges above the cut in black and the cut as a dashed line."""
    from matplotlib.colors import to_hex
    from scipy.cluster.hierarchy import dendrogram

    n = len(labels)
    k = int(labels.max(initial=-1)) + 1
    colours = [to_hex(c) for c in cluster_colours(k)]
    node_cluster = _node_clusters(linkage, labels)
    counts = np.concatenate([np.ones(n), linkage[:, 3]])

    def link_colour(node: int) -> str:
        cluster = node_cluster[node]
        return colours[cluster] if cluster >= 0 else "#222222"

    def leaf_label(node: int) -> str:
        cluster = node_cluster[node]
        return f"{cluster} ({int(counts[node])})" if cluster >= 0 else f"({int(counts[node])})"

    fig = _figure(12, 5)
    ax = fig.subplots()
    p = max(min(leaves, n), k)
    dendrogram(
        linkage,
        truncate_mode="lastp" if n > p else None,
        p=p,
        ax=ax,
        link_color_func=link_colour,
        leaf_label_func=leaf_label,
        leaf_rotation=90,
        leaf_font_size=8,
        show_contracted=True,
    )
    if 2 <= k <= len(linkage):
        cut = (linkage[-k, 2] + linkage[-k + 1, 2]) / 2
        ax.axhline(cut, color="#d62728", linestyle="--", linewidth=1, label=f"cut into K={k}")
        ax.legend(fontsize=8, loc="upper right")
    ax.set_ylabel("Ward merge distance")
    ax.set_xlabel("cluster (images) of each branch")
    ax.set_title(f"Agglomerative clustering of {n:,} images: the last {p} branches")
    fig.tight_layout()
    return fig
