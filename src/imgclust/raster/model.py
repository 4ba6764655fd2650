"""The fitted classes of a raster, saved as portable JSON (``model.json``), never a pickle."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclust._text import printable
from imgclust.errors import ImageReadError, InvalidParameterError
from imgclust.io.outputs import json_text
from imgclust.raster.features import FeatureSpec

__all__ = ["FORMAT", "RasterModel", "default_colors", "parse_colors", "parse_names"]

FORMAT = "imgclust-raster-model"
VERSION = 1


#: matplotlib's tab10 and tab20 palettes in 8-bit RGB, copied so that ``classify`` need not
#: import matplotlib (half a second) for twenty colours; a test checks them against it.
TAB10 = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
TAB20 = (
    (31, 119, 180), (174, 199, 232), (255, 127, 14), (255, 187, 120), (44, 160, 44),
    (152, 223, 138), (214, 39, 40), (255, 152, 150), (148, 103, 189), (197, 176, 213),
    (140, 86, 75), (196, 156, 148), (227, 119, 194), (247, 182, 210), (127, 127, 127),
    (199, 199, 199), (188, 189, 34), (219, 219, 141), (23, 190, 207), (158, 218, 229),
)  # fmt: skip


def default_colors(n: int) -> list[tuple[int, int, int]]:
    """Distinct colours for ``n`` classes: matplotlib's tab10 / tab20, else turbo."""
    if n <= 10:
        return list(TAB10[:n])
    if n <= 20:
        return list(TAB20[:n])
    from matplotlib import colormaps

    values = colormaps["turbo"](np.linspace(0.05, 0.95, n))[:, :3]
    return [tuple(round(255 * c) for c in rgb[:3]) for rgb in values]


def parse_names(text: str | list, n: int) -> list[str]:
    """``"water,forest,urban"`` (or a list) -> ``n`` class names, code 1 first."""
    names = [str(v).strip() for v in (text.split(",") if isinstance(text, str) else text)]
    if len(names) != n or not all(names):
        raise InvalidParameterError(
            f"{len(names)} class names given for {n} classes; give {n} names, separated by "
            "commas, none empty"
        )
    if len(set(names)) != n:
        raise InvalidParameterError("the class names must differ from one another")
    for name in names:  # XML (the .aux.xml, the .qml) cannot hold control characters at all
        if not name.isprintable():
            raise InvalidParameterError(
                f"the class name {printable(name)!r} holds a control character (a tab, a "
                "newline, an escape); give names of printable text"
            )
    return names


def parse_colors(text: str | list, n: int) -> list[tuple[int, int, int]]:
    """``"#B90E0A,navy,green"`` (any matplotlib colour) -> ``n`` RGB tuples."""
    from matplotlib.colors import to_rgb

    names = [c.strip() for c in text.split(",")] if isinstance(text, str) else list(text)
    names = [c for c in names if c]
    if len(names) < n:
        raise InvalidParameterError(
            f"{len(names)} colours given for {n} classes; give at least {n}, separated by commas"
        )
    colours = []
    for name in names[:n]:
        try:
            colours.append(tuple(round(255 * c) for c in to_rgb(name)))
        except ValueError:
            raise InvalidParameterError(
                f"{name!r} is not a colour; use a name (navy) or a hex code (#B90E0A)"
            ) from None
    return colours


@dataclass
class RasterModel:
    """Scaled-feature centres of the classes, in class order (code 1 first), and how to
    compute the features.

    Attributes
    ----------
    features : FeatureSpec
    centers : (K, n_features) float64 ndarray
        Class centres in the scaled feature space; row ``i`` is class code ``i + 1``.
    colors : list of (r, g, b)
    inertia : float
        Sum of squared distances of the sample to its centres, in the scaled space.
    n_iter, random_state, sample_size : int
    names : list of str, optional
        Class names, code 1 first (default ``class 1``, ``class 2``, ...).
    """

    features: FeatureSpec
    centers: np.ndarray
    colors: list[tuple[int, int, int]]
    inertia: float = float("nan")
    n_iter: int = 0
    random_state: int = 0
    sample_size: int = 0
    names: list[str] | None = None

    @property
    def n_classes(self) -> int:
        return int(self.centers.shape[0])

    @property
    def class_names(self) -> list[str]:
        """The names of the classes, code 1 first."""
        return (
            list(self.names) if self.names else [f"class {i}" for i in range(1, self.n_classes + 1)]
        )

    def to_dict(self) -> dict:
        from imgclust import __version__

        return {
            "format": FORMAT,
            "version": VERSION,
            "n_classes": self.n_classes,
            "features": self.features.to_dict(),
            "centers": self.centers.tolist(),
            "colors": ["#{:02x}{:02x}{:02x}".format(*c) for c in self.colors],
            "inertia": self.inertia,
            "n_iter": self.n_iter,
            "seed": self.random_state,
            "sample_size": self.sample_size,
            "names": self.class_names,
            "imgclust_version": __version__,
        }

    def save(self, path: str | os.PathLike, reading: dict | None = None) -> None:
        """Write ``model.json``; ``reading`` (how the scene was read: its grid, resampling,
        masks) is kept beside the model for a person, not used to apply it."""
        data = self.to_dict()
        if reading:
            data["reading"] = reading
        Path(path).write_text(json_text(data))

    @classmethod
    def load(cls, path: str | os.PathLike) -> RasterModel:
        """Read a ``model.json`` written by :meth:`save`, with a clear error if it is not one."""
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ImageReadError(f"{path}: no such model file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ImageReadError(f"{path}: not a model.json ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ImageReadError(f'{path}: not an imgclust raster model (no "format": "{FORMAT}")')
        if data.get("version", 0) > VERSION:
            raise ImageReadError(
                f"{path}: model version {data['version']} is newer than this imgclust reads "
                f"({VERSION}); upgrade imgclust"
            )
        try:
            return cls._from_dict(data)
        except InvalidParameterError as exc:
            raise ImageReadError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            what = f"no field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ImageReadError(
                f"{path}: the model is damaged ({what}); write it again with imgclust classify"
            ) from None

    @classmethod
    def _from_dict(cls, data: dict) -> RasterModel:
        features = FeatureSpec.from_dict(data["features"])
        centers = np.asarray(data["centers"], dtype=np.float64)
        if centers.ndim != 2 or centers.shape[1] != features.n_features or features.mean is None:
            raise InvalidParameterError("centres and features do not match; the file is damaged")
        if len(features.mean) != features.n_features or len(features.scale) != features.n_features:
            raise InvalidParameterError("the feature scaling does not match the features")
        finite = np.isfinite(centers).all() and np.isfinite(features.mean).all()
        if not finite or not (np.isfinite(features.scale) & (features.scale > 0)).all():
            raise InvalidParameterError("the model holds numbers that are not finite")
        if any(b < 1 for b in features.read_bands):
            raise InvalidParameterError("band numbers start at 1")
        inertia = data.get("inertia")
        names = data.get("names")
        if names is not None:
            names = parse_names(names, centers.shape[0])
        return cls(
            features,
            centers,
            parse_colors(data["colors"], centers.shape[0]),
            float("nan") if inertia is None else float(inertia),
            int(data.get("n_iter", 0)),
            int(data.get("seed", 0)),
            int(data.get("sample_size", 0)),
            names,
        )
