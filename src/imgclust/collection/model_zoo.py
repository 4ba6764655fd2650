"""Image models a user can ask for by name (``--features embed:mobilenetv2``).

Each is a published ONNX file, fetched once from its public address, checked against the
digest written here, and kept in a cache folder (``$IMGCLUST_CACHE_DIR/models``, by default
``~/.cache/imgclust/models``). ``$IMGCLUST_MODELS_DIR`` names a folder of models put there by
hand (an offline machine): a file of the right name there is used, once its digest matches.
Nothing is downloaded unless a name is asked for, or ``features="auto"`` meets colour photos:
those are grouped by the default model (:func:`default_model`: :data:`DEFAULT_MODEL`, or what
``$IMGCLUST_DEFAULT_MODEL`` or :func:`set_default_model` pins, a name or an ONNX file).
``$IMGCLUST_OFFLINE=1`` forbids every download: a model not already here cannot be had.

The ONNX model zoo's files live in Git LFS: their SHA-256 is the ``oid`` of the LFS pointer
in github.com/onnx/models, at the commit their address names. The CLIP image encoder comes
from CLIP-as-service, which publishes an MD5 for it and no SHA-256; it is checked against that.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from imgclust._progress import ProgressFactory, no_progress, note
from imgclust.errors import InvalidParameterError

try:  # POSIX: a download in progress holds a lock on its partial file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_ENV",
    "MODELS",
    "MODELS_DIR_ENV",
    "OFFLINE_ENV",
    "ModelUnavailableError",
    "NamedModel",
    "default_model",
    "model_path",
    "offline",
    "set_default_model",
]

#: A folder of models put there by hand, looked in before the cache and the network.
MODELS_DIR_ENV = "IMGCLUST_MODELS_DIR"
#: Pins the model ``features="auto"`` takes for colour photos: a named model or an ONNX file.
DEFAULT_MODEL_ENV = "IMGCLUST_DEFAULT_MODEL"
#: Set to 1 (or true, yes, on) to forbid every download.
OFFLINE_ENV = "IMGCLUST_OFFLINE"
#: The model ``features="auto"`` takes for colour photos unless another is pinned: the
#: smallest of the named models but SqueezeNet (14 MB), 0.3 GFLOPs an image and 72% ImageNet
#: top-1 as published (SqueezeNet 1.1: 0.35 and 58%). Why, and what stood in for it where it
#: could not be downloaded to be measured: ``docs/design.md``, ``benchmarks/bench_photos.py``.
DEFAULT_MODEL = "mobilenetv2"
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


class ModelUnavailableError(InvalidParameterError):
    """A named model is neither here nor downloadable now (offline, no network, a broken or
    wrong download). The message says which file to put where."""


_pinned: str | None = None


def set_default_model(model: str | os.PathLike | None) -> None:
    """Pin the model ``features="auto"`` takes for colour photos, from Python: a named model
    (:data:`MODELS`) or the path of an ONNX file; ``None`` goes back to
    ``$IMGCLUST_DEFAULT_MODEL``, else :data:`DEFAULT_MODEL`. Takes precedence over the
    environment variable."""
    global _pinned
    if model is not None and not str(model).strip():
        raise InvalidParameterError("the default model must be a named model or an ONNX file")
    _pinned = None if model is None else str(model)


def default_model() -> tuple[str, str]:
    """The model ``features="auto"`` takes for colour photos and who chose it:
    ``(name or path, "set_default_model" | "$IMGCLUST_DEFAULT_MODEL" | "the default")``."""
    if _pinned is not None:
        return _pinned, "set_default_model"
    pinned = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    if pinned:
        return pinned, f"${DEFAULT_MODEL_ENV}"
    return DEFAULT_MODEL, "the default"


def offline() -> bool:
    """Whether ``$IMGCLUST_OFFLINE`` forbids downloads."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _megabytes(size: int | None) -> str:
    return f"{size / 1e6:.1f} MB" if size else "size not published"


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


def model_path(
    name: str,
    *,
    progress: ProgressFactory = no_progress,
    timeout: float = 60.0,
) -> Path:
    """The file of the named model: from ``$IMGCLUST_MODELS_DIR``, the cache, or downloaded
    once from its published address into the cache (checked against its digest first).

    A download says so first, in one line (:func:`imgclust._progress.note`: the command
    line's channel, else standard error): which model, from where, how big and where it is
    kept; a bar of ``progress`` then follows it.

    Raises
    ------
    InvalidParameterError
        The name is not known, or a file put into ``$IMGCLUST_MODELS_DIR`` is not the model.
    ModelUnavailableError
        The file cannot be had here (``$IMGCLUST_OFFLINE``, no network, a download that broke
        off or has the wrong digest): one line saying which file to put where. Nothing
        partial is kept.
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
    if offline():
        raise ModelUnavailableError(
            f"{model.name} is not here and ${OFFLINE_ENV} forbids downloads; "
            f"{_how_to_get(model, cached)}"
        )
    _download(model, cached, progress, timeout)
    return cached


def _how_to_get(model: NamedModel, target: Path) -> str:
    return (
        f"download {model.url} on a machine that can, and put it at {target} (or into a "
        f"folder named by ${MODELS_DIR_ENV})"
    )


def _download(
    model: NamedModel,
    target: Path,
    progress: ProgressFactory,
    timeout: float,
) -> None:
    """Fetch ``model`` to a temporary file beside ``target``, check it, rename it into place.

    The partial file is locked while it is written; partial files of downloads killed
    earlier (unlocked) are removed first, so nothing partial stays in the cache.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(target)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    note(
        progress,
        f"downloading {model.name} ({_megabytes(model.size)}) from {model.url} into {target}, once",
    )
    try:
        with open(partial, "wb") as handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with (
                urllib.request.urlopen(model.url, timeout=timeout) as response,
                progress(
                    f"downloading {model.name}", response.length or model.size or 0
                ) as advance,
            ):
                while block := response.read(_CHUNK):
                    handle.write(block)
                    advance(len(block))
        if not _matches(partial, model):
            raise ModelUnavailableError(
                f"the file downloaded from {model.url} is not the published {model.name} "
                f"(its {model.digest.split(':')[0]} differs, or the download broke off); "
                f"nothing was kept; {_how_to_get(model, target)}"
            )
        os.replace(partial, target)
    except InvalidParameterError:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        # no network, a refused or broken connection, a download cut short, a bad address
        raise ModelUnavailableError(
            f"{model.name} cannot be downloaded here ({getattr(exc, 'reason', exc)}); "
            f"{_how_to_get(model, target)}"
        ) from None
    finally:
        partial.unlink(missing_ok=True)


def _remove_stale_parts(target: Path) -> None:
    """Remove the partial files of ``target`` that no running download holds (a download
    killed before its ``finally`` ran)."""
    if fcntl is None:  # pragma: no cover - Windows: no way to tell a live download
        return
    for part in target.parent.glob(f".{target.name}.*.part"):
        with contextlib.suppress(OSError), open(part, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises while it is written
            part.unlink()
