"""Image models as people find them: what an ONNX file takes, and where its embedding is.

A model exported for classification (the ONNX model zoo, ``torch.onnx.export``, tf2onnx,
Caffe2) takes a batch of images and gives class scores. To cluster images with it, imgclust
needs to know, from the file itself:

- the image input: its name (old files also list their weights as inputs), layout (NCHW or
  NHWC), size, element type (float32, float16, uint8) and whether the batch is fixed;
- the embedding: the features just before the classifier (found by walking back from the
  output over the softmax, the reshapes and the classifier itself), or any tensor by name;
- the preprocessing: ``imagenet`` (RGB in [0, 1], ImageNet mean and deviation), ``caffe``
  (BGR, 0-255 minus the channel means), ``tf`` (RGB in [-1, 1]) or ``raw`` (0-255 as they
  are), from the model's metadata where it says, else from who exported it.

:func:`inspect_model` reads all of it with the ``onnx`` package; :func:`embedding_session`
makes an ONNX Runtime session whose only output is the embedding.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclust.errors import ImageReadError, InvalidParameterError, MissingDependencyError
from imgclust.io.images import check_regular_file

__all__ = [
    "PRESETS",
    "ModelSpec",
    "Preprocessing",
    "embedding_session",
    "inspect_model",
    "model_content_hash",
]


@dataclass(frozen=True)
class Preprocessing:
    """``(pixel * scale - mean) / std`` per channel, pixels in ``order`` (RGB or BGR)."""

    order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {"order": self.order, "scale": self.scale, "mean": self.mean, "std": self.std}


#: The conventions in use, by name.
PRESETS = {
    # torchvision, timm and most PyTorch exports
    "imagenet": Preprocessing("RGB", 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # Caffe and Caffe2 (the ONNX zoo's SqueezeNet, VGG, GoogLeNet): BGR means of ImageNet
    "caffe": Preprocessing("BGR", 1.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
    # Keras applications' "tf" mode (MobileNet, Inception, EfficientNet-lite)
    "tf": Preprocessing("RGB", 1 / 255, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    # OpenAI's CLIP and its exports
    "clip": Preprocessing(
        "RGB", 1 / 255, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    ),
    # models that normalise inside the graph
    "raw": Preprocessing("RGB", 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}

# Ops passed over when walking back from the output to the classifier.
_HEAD_OPS = {
    "Softmax", "LogSoftmax", "Sigmoid", "Flatten", "Reshape", "Squeeze", "Unsqueeze",
    "Identity", "Dropout", "Relu", "Clip", "Cast", "GlobalAveragePool", "GlobalMaxPool",
    "AveragePool", "ReduceMean", "Transpose",
}  # fmt: skip
_SCORE_OPS = {"Softmax", "LogSoftmax", "Sigmoid"}
_CLASSIFIER_OPS = {"Gemm", "MatMul", "Conv"}
#: The largest input side fed to a model (a 4096x4096 RGB float32 image is 192 MiB): a model
#: that declares more (or ``--embed-size`` past it) is refused before any memory is taken.
MAX_INPUT_SIDE = 4096
#: A layer with this many outputs or more is taken for a classifier even without a softmax
#: after it (ImageNet's 1,000 classes, 1,001 in TensorFlow's models).
_MIN_CLASSES = 1000
_ELEMENT_TYPES = {1: np.float32, 10: np.float16, 11: np.float64, 2: np.uint8}


@dataclass
class ModelSpec:
    """What a model file takes and where its embedding is (see :func:`inspect_model`)."""

    input_name: str
    layout: str  # "nchw" or "nhwc"
    height: int
    width: int
    channels: int
    dtype: type
    batch: int | None  # a fixed batch size, or None
    embedding: str  # the tensor taken as the embedding
    embedding_is_output: bool
    preset: str
    preset_source: str  # why this preprocessing: "metadata", "producer ...", "default", "given"
    preprocessing: Preprocessing
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        batch = f"batch fixed at {self.batch}" if self.batch else "any batch"
        shape = (
            f"{self.channels}x{self.height}x{self.width}"
            if self.layout == "nchw"
            else f"{self.height}x{self.width}x{self.channels}"
        )
        return (
            f"input {self.input_name!r} {self.layout.upper()} {shape} "
            f"{np.dtype(self.dtype).name} ({batch}), embedding {self.embedding!r}, "
            f"{self.preset} preprocessing ({self.preset_source})"
        )


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(
            "image embeddings need the onnx package to read the model: "
            "pip install 'imgclust[embed]'"
        ) from None
    return onnx


def load_proto(path: str | Path, *, external_data: bool = False):
    """The model's protobuf (its weights left on disk unless ``external_data``)."""
    onnx = _onnx()
    try:
        return onnx.load(str(path), load_external_data=external_data)
    except Exception as exc:  # protobuf's DecodeError, a missing weights file, ...
        raise InvalidParameterError(f"{path}: not an ONNX model that can be read ({exc})") from None


def _all_tensors(proto) -> list:
    """Every tensor of the model: initializers, sparse ones, constants in attributes, and those
    of the graphs of If, Loop and Scan nodes."""
    tensors = []
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        tensors.extend(graph.initializer)
        for sparse in graph.sparse_initializer:
            tensors.extend([sparse.values, sparse.indices])
        for node in graph.node:
            for attribute in node.attribute:
                tensors.extend([attribute.t, *attribute.tensors])
                graphs.extend([attribute.g, *attribute.graphs])
    return tensors


def external_data_files(path: str | Path) -> list[str]:
    """The files (relative to the model's folder) that hold weights of an ONNX model saved
    with external data, as ``torch.onnx.export`` does for large models."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    proto = load_proto(path)
    return sorted(
        {ExternalDataInfo(t).location for t in _all_tensors(proto) if uses_external_data(t)}
    )


def model_content_hash(model: str | Path) -> str:
    """A hash of every byte an ONNX model's output depends on: the ``.onnx`` file and each
    external-data file it names (a change of weights there changes the hash, so the feature
    cache never serves embeddings of the old weights)."""
    model = Path(model)
    digest = hashlib.blake2b(digest_size=8)
    digest.update(model.read_bytes())
    for location in external_data_files(model):
        digest.update(b"\0" + location.encode() + b"\0")
        weights = _weights_file(model, location)
        try:
            with open(weights, "rb") as handle:
                while block := handle.read(1 << 22):
                    digest.update(block)
        except OSError as exc:
            raise InvalidParameterError(
                f"{model}: its weights file {location} cannot be read ({exc.strerror or exc}); "
                "keep it beside the model"
            ) from None
    return digest.hexdigest()


#: The largest external weights file read (to hash it): 64 GiB, more than any image model.
MAX_WEIGHTS_BYTES = 64 << 30


def _weights_file(model: Path, location: str) -> Path:
    """The external-data file ``location`` of ``model``: a regular file inside the model's
    folder, of at most :data:`MAX_WEIGHTS_BYTES`; else one line (a location of ``/dev/zero``
    was read for ever, one of ``../../secret`` would have been read)."""
    relative = Path(location)
    if relative.is_absolute() or ".." in relative.parts:
        raise InvalidParameterError(
            f"{model}: its weights file {location!r} is not inside the model's folder; "
            "imgclust reads weights only from beside the model"
        )
    path = model.parent / relative
    try:
        size = check_regular_file(path).st_size
    except ImageReadError as exc:
        raise InvalidParameterError(
            f"{model}: its weights file {location} cannot be used ({str(exc).split(': ', 1)[-1]}); "
            "keep the real file beside the model"
        ) from None
    if size > MAX_WEIGHTS_BYTES:
        raise InvalidParameterError(
            f"{model}: its weights file {location} has {size:,} bytes, more than an image model "
            f"needs ({MAX_WEIGHTS_BYTES:,} at most)"
        )
    return path


# --- the input --------------------------------------------------------------------------


def _dims(value_info) -> list:
    """A tensor's dimensions: ints where fixed, None where symbolic or unknown."""
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim]


def _image_input(proto, path) -> tuple:
    initializers = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    images = [i for i in inputs if len(_dims(i)) == 4]
    if len(images) != 1:
        found = ", ".join(f"{i.name} {_dims(i)}" for i in inputs) or "none"
        raise InvalidParameterError(
            f"{path}: imgclust needs a model with one image input of shape (N, 3, H, W) or "
            f"(N, H, W, 3); found inputs: {found}"
        )
    return images[0], _dims(images[0])


def _layout(dims: list, given: str | None, path) -> str:
    if given is not None:
        return given
    first, last = dims[1] in (1, 3), dims[3] in (1, 3)
    if first:
        return "nchw"
    if last:
        return "nhwc"
    raise InvalidParameterError(
        f"{path}: cannot tell the layout of input {dims} (no dimension of 1 or 3 channels); "
        "pass --embed-layout nchw or nhwc"
    )


# --- the embedding ------------------------------------------------------------------------


def _producers(proto) -> dict:
    return {output: node for node in proto.graph.node for output in node.output}


def _constants(proto) -> set[str]:
    names = {t.name for t in proto.graph.initializer}
    names |= {n.output[0] for n in proto.graph.node if n.op_type == "Constant" and n.output}
    return names


def _data_input(node, constants: set[str]) -> str | None:
    """The input of ``node`` that is not a weight, bias or shape."""
    data = [name for name in node.input if name and name not in constants]
    return data[0] if data else None


def _classes(node, shapes: dict, constants: dict) -> int | None:
    """The number of outputs of a classifier layer, where its weights tell."""
    weights = [constants[name] for name in node.input if name in constants]
    if not weights:
        return None
    dims = list(weights[0].dims)
    if node.op_type == "Conv":
        return dims[0] if dims else None
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return dims[0] if trans_b else dims[-1]
    return dims[-1] if dims else None


def find_embedding(proto) -> tuple[str, bool, str]:
    """The tensor before the classifier: ``(name, is_the_output, how it was found)``.

    Walks back from the first output over score, reshape, pooling and bias ops to the first
    layer with weights (Gemm, MatMul or Conv). That layer is the classifier when a softmax
    follows it or it has at least 1,000 outputs; its data input is then the embedding. A
    model whose output has no classifier (an encoder) is taken as it is.
    """
    output = proto.graph.output[0].name
    producers = _producers(proto)
    constants = _constants(proto)
    weights = {t.name: t for t in proto.graph.initializer}
    scores_seen = False
    tensor = output
    for _ in range(64):
        node = producers.get(tensor)
        if node is None:
            break
        if node.op_type in _CLASSIFIER_OPS:
            classes = _classes(node, {}, weights)
            if scores_seen or (classes is not None and classes >= _MIN_CLASSES):
                features = _data_input(node, constants)
                if features is not None:
                    return features, False, f"the input of the classifier {node.op_type}"
            break
        if node.op_type in _HEAD_OPS or (node.op_type == "Add" and len(node.input) == 2):
            scores_seen |= node.op_type in _SCORE_OPS
            previous = _data_input(node, constants)
            if previous is None:
                break
            tensor = previous
            continue
        break
    return output, True, "the model's output (no classifier found before it)"


# --- the preprocessing --------------------------------------------------------------------

_METADATA_KEYS = ("imgclust.preprocessing", "preprocessing", "preprocess")


def _preset_from_metadata(proto) -> str | None:
    metadata = {p.key.lower(): p.value.strip().lower() for p in proto.metadata_props}
    for key in _METADATA_KEYS:
        if metadata.get(key) in PRESETS:
            return metadata[key]
    # Windows ML's image metadata
    pixel_format = metadata.get("image.bitmappixelformat", "")
    value_range = metadata.get("image.nominalpixelrange", "")
    if pixel_format or value_range:
        if pixel_format.startswith("bgr"):
            return "caffe"
        if value_range == "normalized_1_1":
            return "tf"
        if value_range == "nominalrange_0_255":
            return "raw"
        return "imagenet"
    return None


def _preset_from_producer(proto, input_name: str) -> tuple[str, str] | None:
    producer = proto.producer_name.lower()
    if "caffe" in producer:
        return "caffe", f"exported by {proto.producer_name}"
    if any(name in producer for name in ("tf2onnx", "keras2onnx", "tensorflow")):
        return "tf", f"exported by {proto.producer_name}"
    if "pytorch" in producer or "torch" in producer:
        return "imagenet", f"exported by {proto.producer_name}"
    return None


def _preprocessing(proto, input_name, preset, dtype) -> tuple[str, str]:
    if preset not in (None, "auto"):
        if preset not in PRESETS:
            raise InvalidParameterError(
                f"unknown preprocessing {preset!r}; choose one of: auto, {', '.join(PRESETS)}"
            )
        return preset, "given"
    if dtype == np.uint8:
        return "raw", "the model takes 8-bit pixels"
    found = _preset_from_metadata(proto)
    if found:
        return found, "the model's metadata"
    by_producer = _preset_from_producer(proto, input_name)
    if by_producer:
        return by_producer
    return "imagenet", "the default"


def inspect_model(
    path: str | Path,
    *,
    layer: str | None = None,
    layout: str | None = None,
    size: int | None = None,
    preset: str | None = None,
) -> ModelSpec:
    """Read what an ONNX image model takes and where its embedding is.

    Parameters
    ----------
    path : path
        The ``.onnx`` file.
    layer : str, optional
        A tensor of the graph to take as the embedding (default: found, see
        :func:`find_embedding`).
    layout : {"nchw", "nhwc"}, optional
        Overrides the layout read from the input's shape.
    size : int, optional
        The input side for a model whose input size is not fixed (default 224); a fixed size
        always wins.
    preset : {"auto", "imagenet", "caffe", "tf", "raw"}, optional
        Overrides the preprocessing read from the model.
    """
    if layout not in (None, "nchw", "nhwc"):
        raise InvalidParameterError(f"layout={layout!r} must be 'nchw' or 'nhwc'")
    proto = load_proto(path)
    image, dims = _image_input(proto, path)
    layout = _layout(dims, layout, path)
    channel_axis, spatial = (1, (2, 3)) if layout == "nchw" else (3, (1, 2))
    notes = []
    height, width = (dims[a] for a in spatial)
    if height is None or width is None:
        height = width = int(size or 224)
    elif size and size != height:
        notes.append(f"the model takes {height}x{width} images: the size given is not used")
    if not (1 <= height <= MAX_INPUT_SIDE and 1 <= width <= MAX_INPUT_SIDE):
        raise InvalidParameterError(
            f"{path}: an input of {height}x{width} pixels is more than imgclust feeds a model "
            f"({MAX_INPUT_SIDE} a side at most: each image would take "
            f"{3 * 4 * height * width / 2**30:,.1f} GiB); give --embed-size 224 (or another "
            "size up to that) for a model whose size is free"
        )
    element = image.type.tensor_type.elem_type
    if element not in _ELEMENT_TYPES:
        raise InvalidParameterError(
            f"{path}: input {image.name!r} takes elements of ONNX type {element}; imgclust "
            "feeds float32, float16, float64 or uint8"
        )
    dtype = _ELEMENT_TYPES[element]
    if layer:
        names = {o for n in proto.graph.node for o in n.output} | {
            i.name for i in proto.graph.input
        }
        if layer not in names:
            raise InvalidParameterError(
                f"{path}: no tensor named {layer!r} (--embed-layer); the model's output is "
                f"{proto.graph.output[0].name!r}"
            )
        embedding, is_output = layer, layer == proto.graph.output[0].name
    else:
        embedding, is_output, how = find_embedding(proto)
        notes.append(f"embedding: {how}")
    name, source = _preprocessing(proto, image.name, preset, dtype)
    return ModelSpec(
        input_name=image.name,
        layout=layout,
        height=int(height),
        width=int(width),
        channels=dims[channel_axis] or 3,
        dtype=dtype,
        batch=dims[0],
        embedding=embedding,
        embedding_is_output=is_output,
        preset=name,
        preset_source=source,
        preprocessing=PRESETS[name],
        notes=notes,
    )


def embedding_session(path: str | Path, spec: ModelSpec):
    """An ONNX Runtime session of the model whose only output is ``spec.embedding`` (the
    layers after it are left out, so they cost nothing), and the batch size it must be fed
    (None: any).

    A model exported with a batch fixed at one is first tried with a free batch dimension
    (most convolutional networks run on any batch once it is not pinned): that is checked on
    a batch of two before it is used, else the fixed batch is kept.
    """
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "image embeddings need ONNX Runtime: pip install 'imgclust[embed]'"
        ) from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: no warnings about unused initializers

    def session(model):
        return onnxruntime.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )

    try:
        if spec.batch is not None:
            free = _free_batch(session(_cut_at(path, spec.embedding, free_batch=True)), spec)
            if free is not None:
                return free, None
        if spec.embedding_is_output and len(load_proto(path).graph.output) == 1:
            return session(str(path)), spec.batch
        return session(_cut_at(path, spec.embedding)), spec.batch
    except (InvalidParameterError, MissingDependencyError):
        raise
    except Exception as exc:  # onnxruntime raises its own exception types
        raise InvalidParameterError(
            f"{path}: ONNX Runtime cannot load this model ({type(exc).__name__}: {exc})"
        ) from None


def _free_batch(session, spec: ModelSpec):
    """``session`` if it runs a batch of two images and gives two results, else None."""
    shape = (
        (2, spec.channels, spec.height, spec.width)
        if spec.layout == "nchw"
        else (2, spec.height, spec.width, spec.channels)
    )
    try:
        output = session.run(None, {spec.input_name: np.zeros(shape, dtype=spec.dtype)})[0]
    except Exception:  # a Reshape that pins the batch, for instance
        return None
    return session if len(output) == 2 else None


def _cut_at(path, tensor: str, *, free_batch: bool = False) -> bytes:
    """The model's bytes with ``tensor`` as its only output (and the batch dimension of its
    inputs left free, with ``free_batch``)."""
    onnx = _onnx()
    proto = load_proto(path, external_data=True)
    del proto.graph.output[:]
    proto.graph.output.append(onnx.ValueInfoProto(name=tensor))
    if free_batch:
        initializers = {t.name for t in proto.graph.initializer}
        for value in proto.graph.input:
            if value.name not in initializers and value.type.tensor_type.shape.dim:
                value.type.tensor_type.shape.dim[0].dim_param = "batch"
        del proto.graph.value_info[:]  # inferred shapes with the old batch
    try:
        return proto.SerializeToString()
    except ValueError as exc:  # over protobuf's 2 GB
        raise InvalidParameterError(
            f"{path}: the model is too large to cut at {tensor!r} ({exc}); export it with the "
            "embedding as its output"
        ) from None
