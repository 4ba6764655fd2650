"""Features of a raster pixel: its bands, optional spectral indices, and their scaling.

Spectral indices are normalised differences ``(a - b) / (a + b)`` of two bands of the stack,
named by their role:

=========  =====================  ==========================================
name       roles (a, b)           meaning
=========  =====================  ==========================================
``ndvi``   ``nir``, ``red``       vegetation (Rouse et al., 1974)
``ndwi``   ``green``, ``nir``     open water (McFeeters, 1996)
``mndwi``  ``green``, ``swir``    open water, built-up suppressed (Xu, 2006)
``ndbi``   ``swir``, ``nir``      built-up (Zha et al., 2003)
``nd``     ``a``, ``b``           any normalised difference
=========  =====================  ==========================================

written ``--index ndvi:nir=8,red=4`` (band numbers of the stack, 1-based). Where ``a + b`` is
zero the index is 0.

Scaling ``"standard"`` (the default) subtracts each feature's mean and divides by its standard
deviation, both measured on the sample of valid pixels the model is fitted on, so that bands
with large values (near infrared reflectance, thermal) do not dominate the distances. Scaling
``"none"`` clusters the raw values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from imgclust.errors import InvalidParameterError

__all__ = ["INDICES", "SCALINGS", "FeatureSpec", "SpectralIndex", "parse_index"]

INDICES: dict[str, tuple[str, str]] = {
    "ndvi": ("nir", "red"),
    "ndwi": ("green", "nir"),
    "mndwi": ("green", "swir"),
    "ndbi": ("swir", "nir"),
    "nd": ("a", "b"),
}
SCALINGS = ("standard", "none")


@dataclass(frozen=True)
class SpectralIndex:
    """A normalised difference ``(a - b) / (a + b)`` of two bands of the stack (1-based)."""

    name: str
    a: int
    b: int

    def to_dict(self) -> dict:
        roles = INDICES[self.name]
        return {"name": self.name, "bands": {roles[0]: self.a, roles[1]: self.b}}

    @classmethod
    def from_dict(cls, data: dict) -> SpectralIndex:
        roles = INDICES[data["name"]]
        return cls(data["name"], int(data["bands"][roles[0]]), int(data["bands"][roles[1]]))

    @property
    def label(self) -> str:
        return self.name.upper() if self.name != "nd" else f"ND({self.a},{self.b})"


def parse_index(text: str) -> SpectralIndex:
    """Parse ``"ndvi:nir=8,red=4"`` into a :class:`SpectralIndex`."""
    name, _, spec = text.strip().partition(":")
    name = name.lower()
    if name not in INDICES:
        raise InvalidParameterError(
            f"unknown index {name!r}; choose one of {', '.join(INDICES)} (e.g. ndvi:nir=8,red=4)"
        )
    roles = INDICES[name]
    example = f"{name}:{roles[0]}=N,{roles[1]}=M"
    bands: dict[str, int] = {}
    for part in filter(None, spec.replace(" ", "").split(",")):
        role, _, number = part.partition("=")
        if role not in roles or not number.isdigit():
            raise InvalidParameterError(f"index {text!r} is not of the form {example}")
        bands[role] = int(number)
    if set(bands) != set(roles):
        raise InvalidParameterError(
            f"index {name} needs the band number of {roles[0]} and {roles[1]}: {example}"
        )
    return SpectralIndex(name, bands[roles[0]], bands[roles[1]])


@dataclass
class FeatureSpec:
    """Which bands and indices make the features, and how they are scaled.

    Attributes
    ----------
    bands : list of int
        Bands used as features (1-based in the stack).
    indices : list of SpectralIndex
    scaling : {"standard", "none"}
    mean, scale : (n_features,) float64 ndarray or None
        Set by :meth:`fit_scaling`; ``(x - mean) / scale`` gives the scaled feature.
    """

    bands: list[int]
    indices: list[SpectralIndex] = field(default_factory=list)
    scaling: str = "standard"
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise InvalidParameterError(
                f"scaling {self.scaling!r} is not one of {', '.join(SCALINGS)}"
            )

    @property
    def read_bands(self) -> list[int]:
        """Every band to read: the feature bands, then those only the indices need."""
        extra = [b for i in self.indices for b in (i.a, i.b) if b not in self.bands]
        return self.bands + sorted(set(extra), key=extra.index)

    @property
    def n_features(self) -> int:
        return len(self.bands) + len(self.indices)

    def raw_features(self, data: np.ndarray) -> np.ndarray:
        """Unscaled features ``(n, n_features)`` float32 from rows ``(n, len(read_bands))``."""
        position = {b: i for i, b in enumerate(self.read_bands)}
        out = np.empty((data.shape[0], self.n_features), dtype=np.float32)
        out[:, : len(self.bands)] = data[:, : len(self.bands)]
        for j, index in enumerate(self.indices, start=len(self.bands)):
            a, b = data[:, position[index.a]], data[:, position[index.b]]
            total = a + b
            np.divide(a - b, total, out=out[:, j], where=total != 0)
            out[total == 0, j] = 0.0
        return out

    def fit_scaling(self, raw: np.ndarray) -> None:
        """Measure the mean and standard deviation of each feature on ``raw`` (the sample)."""
        if self.scaling == "none":
            self.mean = np.zeros(self.n_features)
            self.scale = np.ones(self.n_features)
            return
        self.mean = np.empty(self.n_features)
        std = np.empty(self.n_features)
        for j in range(self.n_features):  # column by column: a third of numpy's std over axis 0
            column = raw[:, j].astype(np.float64)
            self.mean[j] = column.mean()
            column -= self.mean[j]
            std[j] = math.sqrt(np.dot(column, column) / max(column.size, 1))
        self.scale = np.where(std > 0, std, 1.0)  # a constant feature stays constant

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Scaled features, float32 (in place on ``raw``)."""
        raw -= self.mean.astype(np.float32)
        raw /= self.scale.astype(np.float32)
        return raw

    def to_dict(self) -> dict:
        return {
            "bands": list(self.bands),
            "indices": [i.to_dict() for i in self.indices],
            "scaling": self.scaling,
            "mean": None if self.mean is None else self.mean.tolist(),
            "scale": None if self.scale is None else self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        spec = cls(
            [int(b) for b in data["bands"]],
            [SpectralIndex.from_dict(i) for i in data.get("indices", [])],
            data.get("scaling", "standard"),
        )
        if data.get("mean") is not None:
            spec.mean = np.asarray(data["mean"], dtype=np.float64)
            spec.scale = np.asarray(data["scale"], dtype=np.float64)
        return spec
