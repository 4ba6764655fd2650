"""Where the images of a collection come from: a folder, a ``.npy`` array, a bundled dataset.

An :class:`ImageSource` lists the images (``ids``, what ``assignments.csv`` calls ``path``)
and decodes them. Files are read as bytes once: the bytes give the content hash the feature
cache is keyed by, and are decoded only when the cache has no features for them.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgclust._text import printable
from imgclust.errors import ImageReadError, InvalidParameterError
from imgclust.io.images import DEFAULT_MAX_PIXELS, pillow_limit_lifted, read_regular_file
from imgclust.io.outputs import RECORD_NAME, read_record

__all__ = [
    "DATASETS",
    "IMAGE_SUFFIXES",
    "ImageSource",
    "decode_image",
    "open_source",
    "scan_folder",
]

#: File name endings read as images (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif")

#: Datasets that ship with a dependency (nothing is downloaded).
DATASETS = ("digits",)


def scan_folder(root: str | os.PathLike, *, exclude: Iterable[os.PathLike] = ()) -> list[Path]:
    """Image files under ``root``, recursively, in a stable (sorted) order.

    Hidden files and folders (names starting with ``.``), everything under ``exclude`` (e.g.
    an output folder placed inside ``root``) and every file that an imgclust run wrote (listed
    in the record of an output folder, even when the output folder is ``root`` itself) are left
    out, so a run never reads its own outputs back as inputs.
    """
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise InvalidParameterError(f"{root}: {what}; give a folder of images")
    excluded = {Path(p).resolve() for p in exclude}
    outputs: set[Path] = set()
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if RECORD_NAME in files:
            outputs.update(here / name for name in read_record(here).owned_files())
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (here / d).resolve() not in excluded
        )
        found.extend(
            here / f
            for f in sorted(files)
            if not f.startswith(".")
            and f.lower().endswith(IMAGE_SUFFIXES)
            and here / f not in outputs
        )
    return found


def decode_image(
    data: bytes, *, draft_size: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode image bytes into an 8-bit RGB or grey Pillow image.

    EXIF orientation is applied, GIFs give their first frame, 16-bit images are scaled to 8
    bits, and transparent pixels are composited over white. With ``draft_size``, JPEGs are
    decoded straight at a reduced scale no smaller than ``draft_size`` on either side (libjpeg's
    DCT scaling), which is several times faster than decoding the whole image.

    Raises
    ------
    ImageReadError
        The bytes are not a readable image, or the image has more than ``max_pixels`` pixels.
    """
    with warnings.catch_warnings(), pillow_limit_lifted():  # max_pixels is checked instead
        warnings.simplefilter("ignore")
        try:
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageReadError(
                    f"{width}x{height} pixels is more than the limit of {max_pixels:,} "
                    "(raise it with --max-pixels)"
                )
            if draft_size and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            img = ImageOps.exif_transpose(img)
            img.load()
        except UnidentifiedImageError:
            raise ImageReadError("not an image file that can be read") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            if isinstance(exc, ImageReadError):
                raise
            raise ImageReadError(f"corrupt or truncated ({exc or type(exc).__name__})") from None
    return _to_8bit(img)


def _to_8bit(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ImageReadError("holds NaN or infinite values")
        top = 65535.0 if img.mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        return Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("L" if img.mode == "1" else "RGB")


def _array_to_image(array: np.ndarray) -> Image.Image:
    """One image of an array source as 8 bits: other types are stretched from their minimum
    to their maximum. An image with NaN or infinite values is refused (it is skipped and
    reported), never turned into arbitrary pixels."""
    if array.dtype.kind not in "uifb":
        raise ImageReadError(f"an array of {array.dtype} is not an image; use numbers")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ImageReadError("holds NaN or infinite values")
    if array.dtype != np.uint8:
        values = array.astype(np.float64)
        low, high = float(values.min(initial=0)), float(values.max(initial=0))
        scale = 255.0 / (high - low) if high > low else 0.0
        array = ((values - low) * scale).astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(array)


@dataclass
class ImageSource:
    """The images of one run.

    Attributes
    ----------
    name : str
        What the images are (a folder, a file, a dataset), for summaries.
    ids : list of str
        One per image: the path relative to the folder, or the row index of an array.
    paths : list of Path or None
        The files (None for arrays).
    array : ndarray or None
        ``(n, H, W[, C])`` images of an array source.
    known_labels : list of str or None
        Labels that come with the source (a dataset's targets).
    root : Path or None
        The folder of a folder source.
    """

    name: str
    ids: list[str]
    paths: list[Path] | None = None
    array: np.ndarray | None = None
    known_labels: list[str] | None = None
    root: Path | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    native_size: int | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def read_bytes(self, index: int) -> bytes:
        """The raw bytes of image ``index`` (a file's content, or the array row's bytes)."""
        if self.paths is not None:  # regular files only: a FIFO or /dev/zero is skipped
            return read_regular_file(self.paths[index])
        row = np.ascontiguousarray(self.array[index])
        return row.tobytes() + repr((row.shape, row.dtype.str)).encode()

    def decode(self, index: int, data: bytes, draft_size: int | None = None) -> Image.Image:
        """Image ``index`` as an 8-bit RGB or grey Pillow image (``data`` from read_bytes)."""
        if self.paths is None:
            return _array_to_image(self.array[index])
        return decode_image(data, draft_size=draft_size, max_pixels=self.max_pixels)

    def subset(self, indices) -> ImageSource:
        """The images at ``indices`` (in that order) as a source of their own."""
        indices = [int(i) for i in indices]
        return replace(
            self,
            ids=[self.ids[i] for i in indices],
            paths=[self.paths[i] for i in indices] if self.paths is not None else None,
            array=self.array[indices] if self.array is not None else None,
            known_labels=(
                [self.known_labels[i] for i in indices] if self.known_labels is not None else None
            ),
        )

    def thumbnail(self, index: int, size: int) -> Image.Image:
        """Image ``index`` fitted into ``size`` x ``size`` pixels, as RGB; a grey tile when
        the image can no longer be read (the file was changed or removed during the run)."""
        try:
            img = self.decode(index, self.read_bytes(index) if self.paths else b"", size)
        except (ImageReadError, OSError):
            return Image.new("RGB", (size, size), (200, 200, 200))
        img = img.convert("RGB")
        img.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
        return img


def open_source(
    folder: str | os.PathLike | None = None,
    *,
    dataset: str | None = None,
    exclude: Iterable[os.PathLike] = (),
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> ImageSource:
    """The images of a folder, a ``.npy`` file of images, or a bundled dataset.

    Parameters
    ----------
    folder : path, optional
        A folder (scanned recursively for JPEG, PNG, TIFF, WebP, BMP and GIF files) or a
        ``.npy`` file holding an ``(n, H, W)`` or ``(n, H, W, C)`` array of images (an
        ``(n, D)`` array with D a square number is read as square grey images).
    dataset : {"digits"}, optional
        scikit-learn's 1,797 8x8 digits, with their labels.
    exclude : paths
        Folders under ``folder`` never read (the output folder).
    max_pixels : int or None
        Images with more pixels are skipped as too large.
    """
    if (folder is None) == (dataset is None):
        raise InvalidParameterError("give either a folder of images or a dataset, not both")
    if dataset is not None:
        return _dataset(dataset)
    path = Path(folder)
    if path.is_file() and path.suffix.lower() == ".npy":
        return _npy(path)
    paths = scan_folder(path, exclude=exclude)
    if not paths:
        raise InvalidParameterError(
            f"{path}: no image files found (looked for {', '.join(IMAGE_SUFFIXES)} recursively)"
        )
    # names that are not UTF-8 or hold control characters are shown escaped (the files are
    # still opened by their real names)
    ids = [printable(p.relative_to(path).as_posix()) for p in paths]
    return ImageSource(printable(str(path)), ids, paths=paths, root=path, max_pixels=max_pixels)


def _dataset(name: str) -> ImageSource:
    if name != "digits":
        raise InvalidParameterError(
            f"unknown dataset {name!r}; the datasets are: {', '.join(DATASETS)}"
        )
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return _array_source("digits", images, [str(v) for v in digits.target])


def _npy(path: Path) -> ImageSource:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise InvalidParameterError(
            f"{path}: not a NumPy array file that can be read ({exc})"
        ) from None
    if array.ndim == 2 and round(array.shape[1] ** 0.5) ** 2 == array.shape[1]:
        side = round(array.shape[1] ** 0.5)
        array = array.reshape(len(array), side, side)
    if array.ndim not in (3, 4) or (array.ndim == 4 and array.shape[3] not in (1, 3, 4)):
        raise InvalidParameterError(
            f"{path}: an array of shape {array.shape} is not a stack of images; expected "
            "(n, H, W) or (n, H, W, C) with C in 1, 3, 4"
        )
    if array.ndim == 4 and array.shape[3] == 4:
        array = array[..., :3]
    return _array_source(path.name, np.asarray(array), None)


def _array_source(name: str, array: np.ndarray, labels: list[str] | None) -> ImageSource:
    if len(array) == 0:
        raise InvalidParameterError(f"{name}: the array holds no images")
    ids = [str(i) for i in range(len(array))]
    side = max(array.shape[1:3])
    return ImageSource(name, ids, array=array, known_labels=labels, native_size=side)
