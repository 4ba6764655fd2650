"""Satellite products as they are downloaded: a Sentinel-2 ``.SAFE`` folder or its ``.zip``.

A product is read by its band files, found by name (``..._B02_10m.jp2`` in a Level-2A
product's ``IMG_DATA/R10m``, ``..._B02.jp2`` in a Level-1C one), each at the finest
resolution the product has it in; a zipped product is read inside the archive through GDAL's
``/vsizip/``, never unpacked. A Level-2A product's scene classification layer (``SCL``) marks
the pixels to leave out (:data:`SCL_LEFT_OUT`).
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from imgclust.errors import InvalidParameterError
from imgclust.raster.stack import MaskSpec

__all__ = ["DEFAULT_BANDS", "SCL_LEFT_OUT", "Product", "open_product"]

#: Bands read when none are named: blue, green, red, near infrared (10 m) and the two
#: short-wave infrared bands (20 m), the usual land-cover set.
DEFAULT_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
#: Scene classification classes left out with ``mask_scl``.
SCL_LEFT_OUT = {
    0: "no data",
    1: "saturated or defective",
    3: "cloud shadows",
    8: "cloud, medium probability",
    9: "cloud, high probability",
    10: "thin cirrus",
}
_BAND = re.compile(r"_(B(?:0[1-9]|1[0-2]|8A))(?:_(\d+)m)?\.jp2$", re.IGNORECASE)
_SCL = re.compile(r"_SCL_(\d+)m\.jp2$", re.IGNORECASE)
_RESOLUTIONS = {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B05": 20, "B06": 20, "B07": 20,
                "B8A": 20, "B11": 20, "B12": 20, "B01": 60, "B09": 60, "B10": 60}  # fmt: skip


@dataclass
class Product:
    """A Sentinel-2 product's band files.

    Attributes
    ----------
    name : str
        The ``.SAFE`` folder's name.
    level : str
        ``"L2A"`` or ``"L1C"`` (from the name).
    bands : dict of str to str
        Band name (``B02``) -> its file at the finest resolution (a path GDAL opens).
    scl : str or None
        The scene classification layer (Level-2A).
    """

    name: str
    level: str
    bands: dict[str, str] = field(default_factory=dict)
    scl: str | None = None

    def inputs(
        self, bands: list[str] | None, mask_scl: bool
    ) -> tuple[list[str], list[str], list[MaskSpec]]:
        """The files of ``bands`` (default :data:`DEFAULT_BANDS` that the product has), their
        names, and the SCL mask when asked for and present."""
        names = (
            [b.upper() for b in bands] if bands else [b for b in DEFAULT_BANDS if b in self.bands]
        )
        missing = [b for b in names if b not in self.bands]
        if missing or not names:
            raise InvalidParameterError(
                f"{self.name} has no band {', '.join(missing) or 'to read'}; it has "
                f"{', '.join(sorted(self.bands)) or 'none'}"
            )
        masks = []
        if mask_scl and self.scl is not None:
            meaning = "; ".join(SCL_LEFT_OUT.values())
            masks.append(MaskSpec(self.scl, tuple(SCL_LEFT_OUT), meaning=meaning))
        return [self.bands[b] for b in names], names, masks

    def describe(self) -> str:
        return f"Sentinel-2 {self.level} product {self.name}"


def _entries(path: Path) -> tuple[list[str], str]:
    """The files of a product (relative paths) and the prefix GDAL opens them under."""
    if path.is_dir():
        files = [p.relative_to(path).as_posix() for p in path.rglob("*.jp2")]
        return files, str(path.resolve()) + "/"
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.lower().endswith(".jp2")]
    return names, f"/vsizip/{path.resolve()}/"


def _is_product(path: Path) -> bool:
    if path.is_dir():
        return path.name.upper().endswith(".SAFE")
    if path.suffix.lower() != ".zip" or not path.is_file():
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(".SAFE/" in n.upper() for n in archive.namelist()[:50])
    except (zipfile.BadZipFile, OSError):
        return False


def open_product(path: str | os.PathLike) -> Product | None:
    """The Sentinel-2 product at ``path`` (a ``.SAFE`` folder or a ``.zip`` of one), or None
    when it is not one."""
    path = Path(path)
    if not _is_product(path):
        return None
    try:
        files, prefix = _entries(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidParameterError(f"{path}: the product cannot be read ({exc})") from None
    name = next(
        (part for f in files for part in f.split("/") if part.upper().endswith(".SAFE")),
        path.name,
    )
    level = "L2A" if "L2A" in name.upper() or any("/R10m/" in f for f in files) else "L1C"
    product = Product(name, level)
    found: dict[str, tuple[int, str]] = {}
    scl: tuple[int, str] | None = None
    for entry in sorted(f for f in files if "/IMG_DATA/" in f or f.startswith("IMG_DATA/")):
        if match := _SCL.search(entry):
            if scl is None or int(match.group(1)) < scl[0]:
                scl = (int(match.group(1)), prefix + entry)
        elif match := _BAND.search(entry):
            band = match.group(1).upper()
            resolution = int(match.group(2) or _RESOLUTIONS.get(band, 60))
            if band not in found or resolution < found[band][0]:
                found[band] = (resolution, prefix + entry)
    if not found:
        raise InvalidParameterError(
            f"{path}: a .SAFE product without band files (GRANULE/*/IMG_DATA/*_B02*.jp2); "
            "download the whole product"
        )
    product.bands = {band: file for band, (_, file) in sorted(found.items())}
    product.scl = scl[1] if scl else None
    return product
