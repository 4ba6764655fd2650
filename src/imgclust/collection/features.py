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

from imgclust.errors import InvalidParameterError, MissingDependencyError

__all__ = [
    "FEATURES",
    "ColorHistogram",
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
    if image.mode != mode:
        image = image.convert(mode)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image


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
        if size < 1:
            raise InvalidParameterError(f"size={size} must be at least 1 pixel")
        self.size = int(size)
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
        if len(bins) != 3 or min(bins) < 1:
            raise InvalidParameterError(f"bins={bins} must be three positive counts (H, S, V)")
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


class HogFeatures(FeatureExtractor):
    """Histograms of oriented gradients (scikit-image's ``hog``) of the grey image.

    Parameters
    ----------
    size : int, default=64
        The image is resized to ``size`` x ``size`` first.
    orientations, pixels_per_cell, cells_per_block
        As :func:`skimage.feature.hog` (9, 8, 2 by default: 1,764 features at size 64).
    """

    name = "hog"

    def __init__(
        self, size: int = 64, orientations: int = 9, pixels_per_cell: int = 8, cells_per_block=2
    ) -> None:
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
        self.draft_size = self.size

    def settings(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "orientations": self.orientations,
            "pixels_per_cell": self.pixels_per_cell,
            "cells_per_block": self.cells_per_block,
        }

    def prepare(self, image: Image.Image) -> np.ndarray:
        from skimage.feature import hog

        grey = np.asarray(_square(image, self.size, "L"), dtype=np.float32) * np.float32(1 / 255)
        cell = (self.pixels_per_cell, self.pixels_per_cell)
        block = (self.cells_per_block, self.cells_per_block)
        return hog(grey, self.orientations, cell, block, feature_vector=True).astype(np.float32)


def _external_data_files(model: Path) -> list[str]:
    """The files (relative to the model's folder) that hold weights of an ONNX model saved
    with external data, as ``torch.onnx.export`` does for large models."""
    try:
        import onnx
        from onnx.external_data_helper import ExternalDataInfo, uses_external_data
    except ImportError:
        raise MissingDependencyError(
            "image embeddings need the onnx package to read the model: "
            "pip install 'imgclust[embed]'"
        ) from None
    try:
        proto = onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and others
        raise InvalidParameterError(
            f"{model}: not an ONNX model that can be read ({exc})"
        ) from None
    tensors = []
    graphs = [proto.graph]
    while graphs:  # the main graph, and the graphs of If, Loop and Scan nodes
        graph = graphs.pop()
        tensors.extend(graph.initializer)
        for sparse in graph.sparse_initializer:
            tensors.extend([sparse.values, sparse.indices])
        for node in graph.node:
            for attribute in node.attribute:
                tensors.extend([attribute.t, *attribute.tensors])  # constants
                graphs.extend([attribute.g, *attribute.graphs])
    return sorted({ExternalDataInfo(t).location for t in tensors if uses_external_data(t)})


def model_content_hash(model: str | Path) -> str:
    """A hash of every byte an ONNX model's output depends on: the ``.onnx`` file and each
    external-data file it names (a change of weights there changes the hash, so the feature
    cache never serves embeddings of the old weights)."""
    model = Path(model)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(model.read_bytes())
    for location in _external_data_files(model):
        path = model.parent / location
        digest.update(b"\0" + location.encode() + b"\0")
        try:
            with open(path, "rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
        except OSError as exc:
            raise InvalidParameterError(
                f"{model}: its weights file {location} cannot be read ({exc.strerror or exc}); "
                "keep it beside the model"
            ) from None
    return digest.hexdigest()


class OnnxEmbedding(FeatureExtractor):
    """The output of an image model (an ONNX file) run with ONNX Runtime, L2-normalised.

    The image is resized to ``input_size`` x ``input_size`` RGB, scaled to [0, 1], normalised by
    ``mean`` and ``std`` (ImageNet's by default) and fed as one batch of ``layout`` NCHW
    (PyTorch) or NHWC (TensorFlow); the model's first output, flattened, is the feature vector.
    Export a torchvision model with ``torch.onnx.export`` (see the README).

    Parameters
    ----------
    model : path
        The ``.onnx`` file.
    input_size : int, default=224
    mean, std : three floats
    layout : {"nchw", "nhwc"}
    batch_size : int, default=32
    """

    name = "embed"

    def __init__(
        self,
        model: str | Path,
        input_size: int = 224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        layout: str = "nchw",
        batch_size: int = 32,
    ) -> None:
        self.model = Path(model)
        if not self.model.is_file():
            raise InvalidParameterError(f"{self.model}: no such model file (an .onnx file)")
        if layout not in ("nchw", "nhwc"):
            raise InvalidParameterError(f"layout={layout!r} must be 'nchw' or 'nhwc'")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise InvalidParameterError("mean and std need three values each, std > 0")
        self.input_size = int(input_size)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.layout = layout
        self.batch_size = int(batch_size)
        self.draft_size = self.input_size
        self._model_hash = model_content_hash(self.model)
        self._session = None

    def settings(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "model_hash": self._model_hash,
            "input_size": self.input_size,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "layout": self.layout,
        }

    def prepare(self, image: Image.Image) -> np.ndarray:
        rgb = np.asarray(_square(image, self.input_size, "RGB"), dtype=np.float32)
        tensor = (rgb * np.float32(1 / 255) - self.mean) / self.std
        return tensor.transpose(2, 0, 1) if self.layout == "nchw" else tensor

    def __getstate__(self) -> dict:
        # A session cannot be pickled; a copy sent to a Dask worker makes its own.
        return {**self.__dict__, "model": self.model.resolve(), "_session": None}

    def session(self):
        """The ONNX Runtime session (made on first use)."""
        if self._session is None:
            try:
                import onnxruntime
            except ImportError:
                raise MissingDependencyError(
                    "image embeddings need ONNX Runtime: pip install 'imgclust[embed]'"
                ) from None
            try:
                self._session = onnxruntime.InferenceSession(
                    str(self.model), providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                raise InvalidParameterError(
                    f"{self.model}: ONNX Runtime cannot load this model ({exc})"
                ) from None
        return self._session

    def finish(self, batch: np.ndarray) -> np.ndarray:
        session = self.session()
        name = session.get_inputs()[0].name
        outputs = []
        for start in range(0, len(batch), self.batch_size):
            chunk = np.ascontiguousarray(batch[start : start + self.batch_size], dtype=np.float32)
            try:
                result = session.run(None, {name: chunk})[0]
            except Exception as exc:
                raise InvalidParameterError(
                    f"{self.model}: the model did not accept a batch of shape {chunk.shape} "
                    f"({exc}); check --embed-size and --embed-layout"
                ) from None
            outputs.append(np.asarray(result, dtype=np.float32).reshape(len(chunk), -1))
        vectors = np.concatenate(outputs)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1)


#: The feature extractors by name.
FEATURES: dict[str, type[FeatureExtractor]] = {
    "pixels": PixelFeatures,
    "colorhist": ColorHistogram,
    "hog": HogFeatures,
    "embed": OnnxEmbedding,
}


def make_extractor(spec: str, **options: Any) -> FeatureExtractor:
    """Build an extractor from ``"pixels"``, ``"colorhist"``, ``"hog"`` or ``"embed:MODEL"``.

    ``options`` are passed to the extractor's constructor; those it does not take (``None``
    values included) are ignored, so one set of command-line options serves every extractor.
    """
    import inspect

    name, _, argument = str(spec).partition(":")
    if name not in FEATURES:
        raise InvalidParameterError(
            f"unknown features {spec!r}; the features are: pixels, colorhist, hog, embed:MODEL.onnx"
        )
    cls = FEATURES[name]
    if name == "embed":
        if not argument:
            raise InvalidParameterError("embed needs a model file: --features embed:MODEL.onnx")
        options = {**options, "model": argument}
    elif argument:
        raise InvalidParameterError(f"features {name!r} take no argument (got {spec!r})")
    accepted = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in options.items() if k in accepted and v is not None})
