"""Image models a user can ask for by name (``--features embed:mobilenetv2``).

Each is a published ONNX file, fetched once from its public address, checked against the
digest written here, and kept in a cache folder (``$IMGCLUST_CACHE_DIR/models``, by default
``~/.cache/imgclust/models``). ``$IMGCLUST_MODELS_DIR`` names a folder of models put there by
hand (an offline machine): a file of the right name there is used, once its digest matches.
Nothing is downloaded unless a name is asked for.

The ONNX model zoo's files live in Git LFS: their SHA-256 is the ``oid`` of the LFS pointer
in github.com/onnx/models, at the commit their address names. The CLIP image encoder comes
from CLIP-as-service, which publishes an MD5 for it and no SHA-256; it is checked against that.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from imgclust._progress import ProgressFactory, no_progress
from imgclust.errors import InvalidParameterError

__all__ = ["MODELS", "MODELS_DIR_ENV", "NamedModel", "model_path"]

#: A folder of models put there by hand, looked in before the cache and the network.
MODELS_DIR_ENV = "IMGCLUST_MODELS_DIR"
_ZOO = (
    "https://github.com/onnx/models/raw/4c46cd00fbdb7cd30b6c1c17ab54f2e1f4f7b177/"
    "validated/vision/classification/"
)
_CLIP = (
    "https://clip-as-service.s3.us-east-2.amazonaws.com/models-436c69702d61732d53657276696365/onnx/"
)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class NamedModel:
    """A published model: where it is, its digest (``"sha256:..."`` or ``"md5:..."``), its
    size in bytes (None where the publisher gives none) and the preprocessing it was trained
    with."""

    name: str
    file: str
    url: str
    digest: str
    size: int | None
    preset: str
    about: str


#: The models that can be asked for by name.
MODELS: dict[str, NamedModel] = {
    model.name: model
    for model in (
        NamedModel(
            "mobilenetv2",
            "mobilenetv2-12.onnx",
            _ZOO + "mobilenet/model/mobilenetv2-12.onnx",
            "sha256:c0c3f76d93fa3fd6580652a45618618a220fced18babf65774ed169de0432ad5",
            13_964_571,
            "imagenet",
            "MobileNetV2 (ImageNet), ONNX model zoo, 1,280 features, Apache-2.0",
        ),
        NamedModel(
            "resnet50",
            "resnet50-v2-7.onnx",
            _ZOO + "resnet/model/resnet50-v2-7.onnx",
            "sha256:79102261eb6e5fd7af5d27f41316293e388c5cb691e5d25bfb035c4f64fefe31",
            102_442_452,
            "imagenet",
            "ResNet-50 v2 (ImageNet), ONNX model zoo, 2,048 features, Apache-2.0",
        ),
        NamedModel(
            "resnet18",
            "resnet18-v2-7.onnx",
            _ZOO + "resnet/model/resnet18-v2-7.onnx",
            "sha256:3b4d048057854022232aa20bf68262e31718ab7119a17f920b8a2dc1433f824b",
            46_806_737,
            "imagenet",
            "ResNet-18 v2 (ImageNet), ONNX model zoo, 512 features, Apache-2.0",
        ),
        NamedModel(
            "efficientnet-lite4",
            "efficientnet-lite4-11.onnx",
            _ZOO + "efficientnet-lite4/model/efficientnet-lite4-11.onnx",
            "sha256:d111689907c06eea7c82e4833ddef758da6453b9d4cf60b7e99ca05c7cbd9c12",
            51_946_641,
            "tf",
            "EfficientNet-Lite4 (ImageNet), ONNX model zoo, NHWC, 1,280 features, Apache-2.0",
        ),
        NamedModel(
            "squeezenet",
            "squeezenet1.1-7.onnx",
            _ZOO + "squeezenet/model/squeezenet1.1-7.onnx",
            "sha256:1eeff551a67ae8d565ca33b572fc4b66e3ef357b0eb2863bb9ff47a918cc4088",
            4_956_208,
            "imagenet",
            "SqueezeNet 1.1 (ImageNet), ONNX model zoo, 512 features, Apache-2.0",
        ),
        NamedModel(
            "clip-vit-b32",
            "clip-vit-b32-visual.onnx",
            _CLIP + "ViT-B-32/visual.onnx",
            "md5:88c6f38e522269d6c04a85df18e6370c",
            None,
            "clip",
            "OpenAI CLIP ViT-B/32 image encoder (CLIP-as-service export), 512-d, MIT",
        ),
    )
}


def _models_cache() -> Path:
    from imgclust.collection.extract import default_cache_dir

    return default_cache_dir() / "models"


def _digest_of(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _matches(path: Path, model: NamedModel) -> bool:
    algorithm, _, expected = model.digest.partition(":")
    return path.is_file() and _digest_of(path, algorithm) == expected


def model_path(name: str, *, progress: ProgressFactory = no_progress) -> Path:
    """The file of the named model: from ``$IMGCLUST_MODELS_DIR``, the cache, or downloaded
    once from its published address into the cache (checked against its digest first).

    Raises
    ------
    InvalidParameterError
        The name is not known, or the file cannot be had here (offline, a wrong digest): one
        line saying which file to put where.
    """
    if name not in MODELS:
        raise InvalidParameterError(
            f"unknown model {name!r}; the named models are: {', '.join(MODELS)} "
            "(or give a path: embed:MODEL.onnx)"
        )
    model = MODELS[name]
    local = os.environ.get(MODELS_DIR_ENV)
    if local and (Path(local) / model.file).is_file():
        path = Path(local) / model.file
        if not _matches(path, model):
            raise InvalidParameterError(
                f"{path} is not the published {model.name} (its {model.digest.split(':')[0]} "
                f"differs); download it again from {model.url}"
            )
        return path
    cached = _models_cache() / model.file
    if cached.is_file() and _matches(cached, model):
        return cached
    _download(model, cached, progress)
    return cached


def _download(model: NamedModel, target: Path, progress: ProgressFactory) -> None:
    """Fetch ``model`` to a temporary file beside ``target``, check it, rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with (
            urllib.request.urlopen(model.url, timeout=60) as response,
            open(partial, "wb") as handle,
            progress(f"downloading {model.name}", response.length or model.size or 0) as advance,
        ):
            while block := response.read(_CHUNK):
                handle.write(block)
                advance(len(block))
        if not _matches(partial, model):
            raise InvalidParameterError(
                f"the file downloaded from {model.url} is not the published {model.name} "
                f"(its {model.digest.split(':')[0]} differs); nothing was kept"
            )
        os.replace(partial, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise InvalidParameterError(
            f"{model.name} cannot be downloaded here ({getattr(exc, 'reason', exc)}); download "
            f"{model.url} on a machine that can, and put it at {target} (or into a folder "
            f"named by ${MODELS_DIR_ENV})"
        ) from None
    finally:
        partial.unlink(missing_ok=True)
