"""Reading images with Pillow into NumPy arrays, with clear errors for bad files."""

from __future__ import annotations

import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from imgclust.errors import ImageReadError, ImageTooLargeError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_FILE_BYTES",
    "check_regular_file",
    "image_to_array",
    "open_image",
    "pillow_limit_lifted",
    "read_image",
    "read_regular_file",
]

#: Largest image (width x height) read unless the caller allows more: about 16,000 x 12,500.
DEFAULT_MAX_PIXELS = 200_000_000

#: Largest file read whole as one image of a collection: 2 GiB, more than an image within
#: :data:`DEFAULT_MAX_PIXELS` takes even uncompressed at 8 bytes a pixel.
MAX_FILE_BYTES = 2 << 30

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _not_regular(path, mode: int) -> ImageReadError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return ImageReadError(f"{path}: is {kind}, not a file of image data; skipped")


def check_regular_file(path: str | os.PathLike) -> os.stat_result:
    """The status of ``path`` (links followed) if it is a regular file.

    Raises
    ------
    ImageReadError
        It does not exist, or is a folder, a named pipe, a device (``/dev/zero``) or a
        socket: reading one would wait for ever or never end.
    """
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise ImageReadError(f"{path}: does not exist") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(status.st_mode):
        raise _not_regular(path, status.st_mode)
    return status


def read_regular_file(path: str | os.PathLike, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes.

    The file is opened without blocking (opening a named pipe would otherwise wait for a
    writer) and checked with ``fstat`` before a byte is read, so a FIFO or a link to
    ``/dev/zero`` or ``/dev/urandom`` is refused at once; at most the size ``fstat`` gave is
    read, so a file that grows meanwhile cannot hold the run.

    Raises
    ------
    ImageReadError
        Not a regular file, larger than ``limit``, or unreadable.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ImageReadError(f"{path}: does not exist") from None
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise _not_regular(path, status.st_mode)
        if status.st_size > limit:
            raise ImageReadError(
                f"{path}: {status.st_size:,} bytes is more than the {limit:,} an image file "
                "may have here; skipped"
            )
        try:
            return handle.read(status.st_size)
        except OSError as exc:
            raise ImageReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None


# Pillow modes and the mode each is converted to before it becomes an array.
_MODE_TARGET = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "La": "LA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
    "I;16": "I;16",
    "I;16L": "I;16",
    "I;16B": "I;16",
    "I;16N": "I;16",
    "I": "I",
    "F": "F",
}


def _target_mode(img: Image.Image) -> str:
    if img.mode in ("P", "PA"):
        return "RGBA" if "transparency" in img.info or img.mode == "PA" else "RGB"
    return _MODE_TARGET.get(img.mode, "RGB")


def image_to_array(img: Image.Image) -> np.ndarray:
    """A Pillow image as :func:`read_image` returns it (see there for the types)."""
    mode = _target_mode(img)
    if mode == "I;16":
        return np.asarray(img, dtype=np.uint16)
    if mode == "I":
        arr = np.asarray(img, dtype=np.int32)
        if arr.min(initial=0) >= 0 and arr.max(initial=0) <= np.iinfo(np.uint16).max:
            return arr.astype(np.uint16)
        return arr
    if mode == "F":
        return np.asarray(img, dtype=np.float32)
    if img.mode != mode:
        img = img.convert(mode)
    return np.asarray(img)


def read_image(
    path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Read an image file into an array, EXIF orientation applied.

    Parameters
    ----------
    path : str or path-like
        Any file Pillow reads (JPEG, PNG, TIFF, WebP, BMP, GIF: the first frame, ...).
    max_pixels : int or None, default=DEFAULT_MAX_PIXELS
        Refuse images with more pixels than this (a guard against decompression bombs);
        ``None`` reads any size.

    Returns
    -------
    image : (H, W) or (H, W, C) ndarray
        uint8 grey, grey+alpha, RGB or RGBA; uint16 for 16-bit files; float32 for float files.

    Raises
    ------
    ImageReadError
        The file is missing, not an image, truncated or otherwise unreadable.
    ImageTooLargeError
        The image has more than ``max_pixels`` pixels.
    """
    with open_image(path, max_pixels=max_pixels) as img:
        return image_to_array(img)


@contextmanager
def open_image(
    path: str | os.PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Iterator[Image.Image]:
    """The decoded Pillow image of a file, upright (EXIF orientation applied), for the time
    of a ``with`` block; :func:`read_image` is ``image_to_array`` of it.

    Raises as :func:`read_image`. An ``OSError``, ``SyntaxError`` or ``ValueError`` raised in
    the block is reported as unreadable image data too: keep the block to work on the image.
    """
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image file")
    check_regular_file(path)  # a FIFO or a device would hold Pillow for ever
    with warnings.catch_warnings(), pillow_limit_lifted():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                _check_size(path, img.size, max_pixels)
                img.load()
                ImageOps.exif_transpose(img, in_place=True)  # no copy when upright already
                yield img
        except UnidentifiedImageError:
            raise ImageReadError(
                f"{path}: not an image file that can be read (JPEG, PNG, TIFF, WebP, BMP, GIF, ...)"
            ) from None
        except (OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, ImageReadError):
                raise
            reason = str(exc) or type(exc).__name__
            raise ImageReadError(f"{path}: corrupt or truncated image data ({reason})") from None


_limit_lock = threading.Lock()
_readers = 0
_pillow_limit: int | None = None


@contextmanager
def pillow_limit_lifted() -> Iterator[None]:
    """Lift Pillow's own decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, 89 MP) while
    imgclust reads, since the caller's ``max_pixels`` is checked instead, before decoding.

    The limit is Pillow's global: it is lifted when the first of any number of concurrent
    reads starts and put back as it was when the last one ends (a counter under a lock), so
    threads reading at once cannot leave it lifted.
    """
    global _readers, _pillow_limit
    with _limit_lock:
        if _readers == 0:
            _pillow_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _readers += 1
    try:
        yield
    finally:
        with _limit_lock:
            _readers -= 1
            if _readers == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_limit


def _check_size(path: Path, size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{path}: {width}x{height} = {width * height:,} pixels is more than the limit of "
            f"{max_pixels:,}; raise it with --max-pixels (max_pixels=) if you trust the file"
        )
