"""Feature extractors: what an image becomes before it is clustered.

Each extractor turns one decoded image (8-bit RGB or grey, Pillow) into a vector in
``prepare`` (run in worker threads: Pillow and NumPy release the GIL in the heavy parts) and
may finish a whole batch at once in ``finish`` (the ONNX model runs on batches). ``settings``
is everything that changes the vectors: it keys the feature cache and is saved with a model.

The registry :data:`FEATURES` maps names to extractors; :func:`make_extractor` parses
``"pixels"``, ``"colorhist"``, ``"hog"`` or ``"embed:MODEL.onnx"`` and lists the names it
knows when given another.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from imgclust.errors import InvalidParameterError

__all__ = [
    "FEATURES",
    "ColorHistogram",
    "ColorTexture",
    "FeatureExtractor",
    "HogFeatures",
    "OnnxEmbedding",
    "PixelFeatures",
    "make_extractor",
]

#: ImageNet normalisation, the default of torchvision's and timm's models.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


#: Raised whenever the decoding of images changes what an image becomes (or whether it is read
#: at all), so that no cache of an earlier version serves features of the old decoding.
#: 2: arrays and float images with NaN or infinities are refused instead of decoded.
DECODING_VERSION = 2


class FeatureExtractor:
    """Base class: one image in, one float32 vector out."""

    name: ClassVar[str] = ""
    #: JPEGs may be decoded at a reduced scale no smaller than this (None: full size).
    draft_size: int | None = None
    #: Why these features, when ``features="auto"`` chose them (for summaries and reports).
    chosen: str | None = None

    def settings(self) -> dict[str, Any]:
        """Everything that changes the vectors (JSON-serialisable)."""
        raise NotImplementedError

    def prepare(self, image: Image.Image) -> np.ndarray:
        """Per-image work (thread-safe)."""
        raise NotImplementedError

    def finish(self, batch: np.ndarray) -> np.ndarray:
        """Batch work on the stacked results of ``prepare``; ``(n, n_features)`` float32."""
        return batch.reshape(len(batch), -1).astype(np.float32, copy=False)

    def key(self) -> str:
        """A short hash of :meth:`settings` and of how images are decoded
        (:data:`DECODING_VERSION`), naming this extractor's cache."""
        settings = {"name": self.name, "decoding": DECODING_VERSION, **self.settings()}
        text = json.dumps(settings, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def describe(self) -> str:
        """One line for summaries."""
        options = ", ".join(f"{k}={v}" for k, v in self.settings().items() if k != "model_hash")
        return f"{self.name} ({options})" if options else self.name


def _square(image: Image.Image, size: int, mode: str) -> Image.Image:
    return _resized(image, (size, size), mode)


#: The largest side an image is resized to for its features (a 4096 x 4096 RGB image is 48 MB
#: of bytes, 192 MiB of float32): a larger ``size``, given or read from a saved model, is
#: refused before any memory is taken.
MAX_FEATURE_SIDE = 4096


def _checked_side(size, name: str = "size") -> int:
    whole = isinstance(size, (int, np.integer)) or (isinstance(size, float) and size.is_integer())
    if isinstance(size, bool) or not whole:
        raise InvalidParameterError(f"{name}={size!r} must be a whole number of pixels")
    if not 1 <= size <= MAX_FEATURE_SIDE:
        raise InvalidParameterError(
            f"{name}={size} must be from 1 to {MAX_FEATURE_SIDE} pixels (an image is resized to it)"
        )
    return int(size)


class PixelFeatures(FeatureExtractor):
    """The pixels of the image resized to ``size`` x ``size``, scaled to [0, 1].

    Parameters
    ----------
    size : int, default=32
        Side of the square the image is resized to (aspect ratio is not kept).
    grey : bool, default=False
        Grey levels (``size**2`` features) instead of RGB (``3 * size**2``).
    """

    name = "pixels"

    def __init__(self, size: int = 32, grey: bool = False) -> None:
        self.size = _checked_side(size)
        self.grey = bool(grey)
        self.draft_size = self.size

    def settings(self) -> dict[str, Any]:
        return {"size": self.size, "grey": self.grey}

    def prepare(self, image: Image.Image) -> np.ndarray:
        square = _square(image, self.size, "L" if self.grey else "RGB")
        return np.asarray(square, dtype=np.float32).ravel() * np.float32(1 / 255)

    def image_shape(self) -> tuple[int, ...]:
        """Shape one feature vector reshapes to as an image."""
        return (self.size, self.size) if self.grey else (self.size, self.size, 3)


class ColorHistogram(FeatureExtractor):
    """A joint HSV colour histogram, normalised, square-rooted (Hellinger geometry).

    Hue takes ``bins[0]`` bins, saturation ``bins[1]`` and value ``bins[2]``; the square root
    of the frequencies makes the Euclidean distance the methods use the Hellinger distance
    between histograms. Images are reduced to at most 128 pixels a side first.

    Parameters
    ----------
    bins : (int, int, int), default=(16, 4, 4)
    """

    name = "colorhist"
    draft_size = 128

    def __init__(self, bins: tuple[int, int, int] = (16, 4, 4)) -> None:
        if len(bins) != 3 or min(bins) < 1 or max(bins) > 256:
            raise InvalidParameterError(
                f"bins={bins} must be three counts (H, S, V) from 1 to 256 (8-bit channels)"
            )
        self.bins = tuple(int(b) for b in bins)

    def settings(self) -> dict[str, Any]:
        return {"bins": list(self.bins)}

    def prepare(self, image: Image.Image) -> np.ndarray:
        small = image.convert("RGB")
        small.thumbnail((128, 128), Image.Resampling.BILINEAR, reducing_gap=2.0)
        hsv = np.asarray(small.convert("HSV"), dtype=np.uint16).reshape(-1, 3)
        h, s, v = (hsv[:, i] * self.bins[i] >> 8 for i in range(3))
        codes = (h * self.bins[1] + s) * self.bins[2] + v
        counts = np.bincount(codes, minlength=int(np.prod(self.bins))).astype(np.float32)
        return np.sqrt(counts / counts.sum())


def _lbp_histogram(grey: np.ndarray, points: int, radius: int) -> np.ndarray:
    """The square-rooted frequencies of the uniform local binary patterns (``points + 2``
    codes, rotation invariant) of a grey image."""
    from skimage.feature import local_binary_pattern

    codes = local_binary_pattern(grey, points, radius, "uniform").astype(np.intp)
    counts = np.bincount(codes.ravel(), minlength=points + 2).astype(np.float32)
    return np.sqrt(counts / counts.sum())


class ColorTexture(FeatureExtractor):
    """Colour, texture and layout: the HSV histogram of :class:`ColorHistogram`, histograms of
    uniform local binary patterns of the grey image at two scales (texture), and the mean
    CIE Lab colour of each cell of a 4 x 4 grid (where the colours are).

    Each part has unit length and is weighted so that the parts spread comparably over a
    collection: texture histograms vary about eight times less than colour histograms (on
    aerial scenes and small photos alike), hence ``texture_weight``; the layout keeps groups
    apart that differ in colour alone when their textures are noise. Measured in
    ``docs/design.md``: better than colour or texture alone on aerial scenes and small photos.

    Parameters
    ----------
    bins : (int, int, int), default=(16, 4, 4)
        Hue, saturation and value bins of the colour histogram.
    size : int, default=96
        The grey image is resized to ``size`` x ``size`` for the texture.
    texture_weight, layout_weight : float, default=6, 2
    """

    name = "colortexture"
    draft_size = 128
    _SCALES = ((8, 1), (16, 2))  # (points, radius) of the patterns
    _GRID = 4

    def __init__(
        self,
        bins: tuple[int, int, int] = (16, 4, 4),
        size: int = 96,
        texture_weight: float = 6.0,
        layout_weight: float = 2.0,
    ) -> None:
        self.colour = ColorHistogram(bins)
        if _checked_side(size) < 8 or not texture_weight > 0 or not layout_weight >= 0:
            raise InvalidParameterError(
                "size must be at least 8, texture_weight above 0 and layout_weight at least 0"
            )
        self.size = int(size)
        self.texture_weight = float(texture_weight)
        self.layout_weight = float(layout_weight)

    def settings(self) -> dict[str, Any]:
        return {
            "bins": list(self.colour.bins),
            "size": self.size,
            "texture_weight": self.texture_weight,
            "layout_weight": self.layout_weight,
        }

    def prepare(self, image: Image.Image) -> np.ndarray:
        from imgclust.pixels.colorspace import rgb_to_features

        colour = self.colour.prepare(image)
        grey = np.asarray(_square(image, self.size, "L"))
        texture = np.concatenate([_lbp_histogram(grey, p, r) for p, r in self._SCALES])
        texture *= np.float32(self.texture_weight / np.linalg.norm(texture))
        cells = self._GRID * 8
        rgb = np.asarray(_square(image, cells, "RGB")).reshape(-1, 3)
        lab = rgb_to_features(rgb, "lab").reshape(self._GRID, 8, self._GRID, 8, 3)
        layout = lab.mean(axis=(1, 3)).ravel().astype(np.float32)
        norm = np.linalg.norm(layout)
        layout *= np.float32(self.layout_weight / norm) if norm > 0 else np.float32(0)
        return np.concatenate([colour, texture, layout]).astype(np.float32)


class HogFeatures(FeatureExtractor):
    """Histograms of oriented gradients (scikit-image's ``hog``) of the grey image.

    Parameters
    ----------
    size : int, default=64
        The image is resized to ``size`` x ``size`` first.
    orientations, pixels_per_cell, cells_per_block
        As :func:`skimage.feature.hog` (9, 8, 2 by default: 1,764 features at size 64).
    root : bool, default=False
        The square root of each value (the Hellinger mapping of RootSIFT): Euclidean distances
        between the vectors then compare histograms by the Hellinger kernel, so that a few
        strong gradients no longer outweigh the rest. On 10,000 MNIST digits (4-pixel cells,
        9 orientations, UMAP and k-means, 3 seeds) the adjusted Rand index goes from 0.78-0.80
        to 0.94.
    """

    name = "hog"

    def __init__(
        self,
        size: int = 64,
        orientations: int = 9,
        pixels_per_cell: int = 8,
        cells_per_block: int = 2,
        root: bool = False,
    ) -> None:
        _checked_side(size)
        if not (1 <= orientations <= 360 and pixels_per_cell >= 1 and cells_per_block >= 1):
            raise InvalidParameterError(
                f"orientations={orientations} must be from 1 to 360, pixels_per_cell and "
                "cells_per_block at least 1"
            )
        if size < pixels_per_cell * cells_per_block:
            raise InvalidParameterError(
                f"size={size} is too small for HOG blocks of {cells_per_block}x{cells_per_block} "
                f"cells of {pixels_per_cell} pixels; use --size {pixels_per_cell * cells_per_block}"
                " or more"
            )
        self.size = int(size)
        self.orientations = int(orientations)
        self.pixels_per_cell = int(pixels_per_cell)
        self.cells_per_block = int(cells_per_block)
        self.root = bool(root)
        self.draft_size = self.size

    def settings(self) -> dict[str, Any]:
        settings = {
            "size": self.size,
            "orientations": self.orientations,
            "pixels_per_cell": self.pixels_per_cell,
            "cells_per_block": self.cells_per_block,
        }
        if self.root:  # absent when off: the caches of plain HOG keep their names
            settings["root"] = True
        return settings

    def prepare(self, image: Image.Image) -> np.ndarray:
        return np.asarray(_square(image, self.size, "L"), dtype=np.float32) * np.float32(1 / 255)

    def finish(self, batch: np.ndarray) -> np.ndarray:
        values = hog_batch(batch, self.orientations, self.pixels_per_cell, self.cells_per_block)
        return np.sqrt(values) if self.root else values


def hog_batch(
    images: np.ndarray, orientations: int = 9, pixels_per_cell: int = 8, cells_per_block: int = 2
) -> np.ndarray:
    """:func:`skimage.feature.hog` (L2-Hys blocks, feature vectors) of a stack of grey images.

    The same arithmetic as scikit-image's (its gradients, its orientation bins, the histograms
    in float64, L2-Hys in float64 stored as float32), on the whole stack at once: scikit-image
    normalises each block in a Python loop, 80% of its time on a 28x28 image (0.34 ms an
    image); here 10,000 such images take about 0.5 s in chunks of 256, against 3.5 s. Equal to
    scikit-image's within float32 rounding (tested).

    Parameters
    ----------
    images : (n, H, W) float32 ndarray
    orientations, pixels_per_cell, cells_per_block : int
        Square cells and blocks.

    Returns
    -------
    (n, n_features) float32 ndarray
    """
    images = np.asarray(images, dtype=np.float32)
    n, height, width = images.shape
    cell, block = pixels_per_cell, cells_per_block
    rows, cols = height // cell, width // cell
    g_row = np.zeros_like(images)
    g_col = np.zeros_like(images)
    g_row[:, 1:-1, :] = images[:, 2:, :] - images[:, :-2, :]
    g_col[:, :, 1:-1] = images[:, :, 2:] - images[:, :, :-2]
    g_row, g_col = g_row.astype(np.float64), g_col.astype(np.float64)
    magnitude = np.hypot(g_col, g_row)[:, : rows * cell, : cols * cell]
    angle = (np.rad2deg(np.arctan2(g_row, g_col)) % 180)[:, : rows * cell, : cols * cell]
    # A pixel is in bin i when width * i <= angle < width * (i + 1), as scikit-image compares;
    # an angle that rounds to 180 is in none.
    upper = (180.0 / orientations) * np.arange(1, orientations + 1)
    bins = np.searchsorted(upper, angle, side="right")
    weights = np.where(bins < orientations, magnitude, 0.0)
    bins = np.minimum(bins, orientations - 1)
    cell_index = (
        np.arange(n)[:, None, None] * rows + (np.arange(rows * cell) // cell)[None, :, None]
    ) * cols + (np.arange(cols * cell) // cell)[None, None, :]
    flat = (cell_index * orientations + bins).ravel()
    histograms = np.bincount(flat, weights.ravel(), minlength=n * rows * cols * orientations)
    histograms = histograms.reshape(n, rows, cols, orientations) / (cell * cell)
    blocks_r, blocks_c = rows - block + 1, cols - block + 1
    stacked = np.stack(
        [
            np.stack(
                [histograms[:, r : r + blocks_r, c : c + blocks_c] for c in range(block)], axis=3
            )
            for r in range(block)
        ],
        axis=3,
    )  # (n, blocks_r, blocks_c, block, block, orientations)
    eps2 = 1e-5**2
    axes = (3, 4, 5)
    normed = stacked / np.sqrt(np.sum(stacked**2, axis=axes, keepdims=True) + eps2)
    normed = np.minimum(normed, 0.2)
    normed = normed / np.sqrt(np.sum(normed**2, axis=axes, keepdims=True) + eps2)
    return normed.astype(np.float32).reshape(n, -1)


class OnnxEmbedding(FeatureExtractor):
    """The embedding of an image model (an ONNX file) run with ONNX Runtime, L2-normalised.

    The model is read as it is (:func:`imgclust.collection.onnx_model.inspect_model`): its
    image input (name, layout, size, element type, a fixed batch), the embedding (the features
    before its classifier, pooled over space when they are a feature map; or ``layer``) and
    its preprocessing (``preset``: from the model's metadata or its exporter, else ImageNet's).
    Each image is resized to the input size and normalised accordingly. Export a model with
    ``torch.onnx.export`` (see the README) or take one from the ONNX model zoo as it is.

    Parameters
    ----------
    model : path
        The ``.onnx`` file (and its external-data files beside it).
    input_size : int, optional
        Side of the input for a model whose size is not fixed (224).
    mean, std : three floats, optional
        RGB normalisation of pixels in [0, 1]; overrides the preset.
    layout : {"nchw", "nhwc"}, optional
        Overrides the layout read from the model.
    preset : {"auto", "imagenet", "caffe", "tf", "raw"}, optional
        Overrides the preprocessing read from the model.
    layer : str, optional
        A tensor of the model to take as the embedding.
    batch_size : int, default=32
        Images per run where the model's batch is not fixed.
    """

    name = "embed"
    #: Resizing and normalising each image is heavy enough to spread over every core.
    heavy_prepare = True

    def __init__(
        self,
        model: str | Path,
        input_size: int | None = None,
        mean=None,
        std=None,
        layout: str | None = None,
        preset: str | None = None,
        layer: str | None = None,
        batch_size: int = 32,
    ) -> None:
        from imgclust.collection.onnx_model import (
            Preprocessing,
            inspect_model,
            model_content_hash,
        )

        self.model = Path(model)
        if not self.model.is_file():
            raise InvalidParameterError(f"{self.model}: no such model file (an .onnx file)")
        self.spec = inspect_model(
            self.model, layer=layer, layout=layout, size=input_size, preset=preset
        )
        preprocessing = self.spec.preprocessing
        if mean is not None or std is not None:
            mean = IMAGENET_MEAN if mean is None else tuple(mean)
            std = IMAGENET_STD if std is None else tuple(std)
            if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
                raise InvalidParameterError("mean and std need three values each, std > 0")
            preprocessing = Preprocessing("RGB", 1 / 255, mean, std)
            self.spec.preset, self.spec.preset_source = "custom", "given"
        self.preprocessing = preprocessing
        self.layer = layer
        self.batch_size = int(batch_size)
        self.draft_size = max(self.spec.height, self.spec.width)
        # (pixel * scale - mean) / std as pixel * gain + offset, per channel
        std = np.asarray(preprocessing.std, dtype=np.float32)
        self._gain = np.float32(preprocessing.scale) / std
        self._offset = -np.asarray(preprocessing.mean, dtype=np.float32) / std
        self._model_hash = model_content_hash(self.model)
        self._session = None
        self._batch: int | None = None

    def settings(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "model": self.model.name,
            "model_hash": self._model_hash,
            "input_size": [spec.height, spec.width],
            "layout": spec.layout,
            "layer": spec.embedding,
            "preset": spec.preset,
            "preprocessing": self.preprocessing.to_dict(),
        }

    def describe(self) -> str:
        return f"embed ({self.model.name}: {self.spec.describe()})"

    @classmethod
    def from_settings(cls, model: str | Path, settings: dict) -> OnnxEmbedding:
        """The extractor :meth:`settings` describe, for ``model`` (checked to be the same)."""
        preprocessing = settings.get("preprocessing") or {}
        extractor = cls(
            model,
            input_size=_first(settings.get("input_size")),
            layout=settings.get("layout"),
            layer=settings.get("layer"),
            preset=settings.get("preset") if settings.get("preset") != "custom" else None,
            mean=preprocessing.get("mean") if settings.get("preset") == "custom" else None,
            std=preprocessing.get("std") if settings.get("preset") == "custom" else None,
        )
        if extractor.settings()["model_hash"] != settings.get("model_hash"):
            raise InvalidParameterError(
                f"{model} is not the ONNX model this grouping was made with (its content differs)"
            )
        return extractor

    def prepare(self, image: Image.Image) -> np.ndarray:
        """The image as the model's input tensor (without the batch axis), in its layout and
        element type, normalised channel by channel straight into a contiguous array (a
        transpose and a later copy of strided arrays cost more than the model's inference)."""
        spec = self.spec
        mode = "L" if spec.channels == 1 else "RGB"
        pixels = np.asarray(_resized(image, (spec.width, spec.height), mode))
        if spec.channels == 1:
            pixels = pixels[:, :, None]
        elif self.preprocessing.order == "BGR":
            pixels = pixels[:, :, ::-1]
        if spec.dtype == np.uint8:
            tensor = np.ascontiguousarray(pixels)
            return (
                np.ascontiguousarray(tensor.transpose(2, 0, 1)) if spec.layout == "nchw" else tensor
            )
        nchw = spec.layout == "nchw"
        shape = (spec.channels, spec.height, spec.width) if nchw else pixels.shape
        tensor = np.empty(shape, dtype=np.float32)
        for c in range(spec.channels):
            plane = tensor[c] if nchw else tensor[:, :, c]
            np.multiply(pixels[:, :, c], self._gain[c], out=plane, casting="unsafe")
            plane += self._offset[c]
        return tensor if spec.dtype == np.float32 else tensor.astype(spec.dtype)

    def __getstate__(self) -> dict:
        # A session cannot be pickled; a copy sent to a Dask worker makes its own.
        return {**self.__dict__, "model": self.model.resolve(), "_session": None}

    def session(self):
        """The ONNX Runtime session (made on first use) whose output is the embedding."""
        if self._session is None:
            from imgclust.collection.onnx_model import embedding_session

            self._session, self._batch = embedding_session(self.model, self.spec)
        return self._session

    def finish(self, batch: np.ndarray) -> np.ndarray:
        session = self.session()
        size = self._batch or self.batch_size
        outputs = []
        for start in range(0, len(batch), size):
            chunk = np.ascontiguousarray(batch[start : start + size], dtype=self.spec.dtype)
            rows = len(chunk)
            if self._batch and rows < self._batch:  # a fixed batch: pad the last one
                padding = np.zeros((self._batch - rows, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, padding])
            try:
                result = session.run(None, {self.spec.input_name: chunk})[0]
            except Exception as exc:
                raise InvalidParameterError(
                    f"{self.model}: the model did not accept a batch of shape {chunk.shape} "
                    f"({type(exc).__name__}); found {self.spec.describe()}; pass "
                    "--embed-layout, --embed-size or --embed-layer to correct it"
                ) from None
            outputs.append(_pooled(np.asarray(result[:rows], dtype=np.float32)))
        vectors = np.concatenate(outputs)
        broken = ~np.isfinite(vectors).all(axis=1)
        if broken.any():
            raise InvalidParameterError(
                f"{self.model}: the model gave NaN or infinite values for {int(broken.sum())} "
                f"of {len(vectors)} images; it is damaged, or needs other preprocessing "
                "(--embed-preset, --embed-mean, --embed-std)"
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1)


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) else value


def _resized(image: Image.Image, size: tuple[int, int], mode: str) -> Image.Image:
    if image.mode != mode:
        image = image.convert(mode)
    if image.size != size:
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


def _pooled(output: np.ndarray) -> np.ndarray:
    """One vector per image: a feature map (N, C, H, W) or (N, H, W, C) averaged over space,
    a sequence of tokens (N, T, D) over its tokens, anything else flattened."""
    if output.ndim == 4:
        _, a, b, c = output.shape
        channels_last = a == b and c != a  # (N, H, W, C): square maps, more channels
        return output.mean(axis=(1, 2) if channels_last else (2, 3))
    if output.ndim == 3:
        return output.mean(axis=1)
    return output.reshape(len(output), -1)


#: The feature extractors by name.
FEATURES: dict[str, type[FeatureExtractor]] = {
    "pixels": PixelFeatures,
    "colorhist": ColorHistogram,
    "colortexture": ColorTexture,
    "hog": HogFeatures,
    "embed": OnnxEmbedding,
}


def make_extractor(spec: str, *, progress=None, **options: Any) -> FeatureExtractor:
    """Build an extractor from ``"pixels"``, ``"colorhist"``, ``"colortexture"``, ``"hog"``,
    ``"embed:MODEL.onnx"`` or ``"embed:NAME"`` (a named model of
    :mod:`imgclust.collection.model_zoo`, downloaded once, with ``progress``).

    ``options`` are passed to the extractor's constructor; those it does not take (``None``
    values included) are ignored, so one set of command-line options serves every extractor.
    ``download_timeout`` (seconds) bounds a named model's wait for the network.
    """
    import inspect

    name, _, argument = str(spec).partition(":")
    if name not in FEATURES:
        raise InvalidParameterError(
            f"unknown features {spec!r}; the features are: auto, pixels, colorhist, "
            "colortexture, hog, embed:MODEL.onnx, embed:NAME (a named model)"
        )
    cls = FEATURES[name]
    timeout = options.pop("download_timeout", None)
    if name == "embed":
        chosen = _embed_model(argument, progress, options.get("preset"), timeout)
        options = {**options, **chosen}
    elif argument:
        raise InvalidParameterError(f"features {name!r} take no argument (got {spec!r})")
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted and v is not None})


def _embed_model(argument: str, progress, preset: str | None, timeout: float | None) -> dict:
    """The ``model`` (and, for a named model, its ``preset``) of ``embed:ARGUMENT``; a named
    model is downloaded once, waiting at most ``timeout`` seconds for the network."""
    from imgclust._progress import no_progress
    from imgclust.collection.model_zoo import MODELS, model_path

    if not argument:
        raise InvalidParameterError(
            f"embed needs a model: --features embed:MODEL.onnx or embed:NAME ({', '.join(MODELS)})"
        )
    if argument in MODELS and not Path(argument).is_file():
        path = model_path(argument, progress=progress or no_progress, timeout=timeout or 60.0)
        chosen = {"model": path}
        if preset in (None, "auto"):
            chosen["preset"] = MODELS[argument].preset
        return chosen
    return {"model": argument}
