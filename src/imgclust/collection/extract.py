"""Reading a collection into a feature matrix: parallel decoding, a content-keyed disk cache.

Images are handled in chunks. In worker threads each image's bytes are read and hashed
(BLAKE2b); an image whose hash the cache holds for the same extractor settings is not decoded
again, the others are decoded (JPEGs at a reduced scale when the features need a small image)
and prepared. The batch step of the extractor (the ONNX model) then runs on the chunk. A file
that cannot be read or decoded is recorded with the reason and the run goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from imgclust._progress import ProgressFactory, no_progress
from imgclust.collection.features import FeatureExtractor
from imgclust.collection.sources import ImageSource
from imgclust.errors import ImageReadError, InvalidParameterError

__all__ = ["Extraction", "FeatureCache", "default_cache_dir", "extract_features", "open_cache"]

_KEY_BYTES = 16
_BATCH = 32  # images per thread task: one future per image costs more than a small decode
# Mean file size under which one thread reads fastest: decoding small images is mostly Python
# work that holds the GIL, and two threads contending for it were measured slower than one
# (2,193 files of 3-20 KB: 0.38 s with one thread, 0.6 s with two).
_SMALL_FILE_BYTES = 100_000


def _default_workers(source: ImageSource, extractor=None) -> int:
    """One thread for small files (or arrays), else one per CPU (Pillow decodes without the
    GIL); one per CPU whatever the files for an extractor whose per-image work is heavy (an
    image model's resize and normalisation)."""
    if getattr(extractor, "heavy_prepare", False):
        return os.cpu_count() or 1
    if source.paths is None:
        return 1
    sizes = []
    for path in source.paths[:: max(1, len(source.paths) // 64)][:64]:
        try:
            sizes.append(path.stat().st_size)
        except OSError:
            continue
    if sizes and sum(sizes) / len(sizes) < _SMALL_FILE_BYTES:
        return 1
    return os.cpu_count() or 1


def default_cache_dir() -> Path:
    """``$IMGCLUST_CACHE_DIR``, else ``$XDG_CACHE_HOME/imgclust``, else ``~/.cache/imgclust``."""
    if os.environ.get("IMGCLUST_CACHE_DIR"):
        return Path(os.environ["IMGCLUST_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "imgclust"


class FeatureCache:
    """Feature vectors on disk, keyed by the hash of the image's bytes, one folder per setting.

    Each run adds one shard: ``<key>.features.npy`` and ``<key>.keys.npy``, each written to a
    temporary name and renamed, the keys last, so a shard is complete or not there at all.
    Shards are memory-mapped when read.
    """

    def __init__(self, root: str | os.PathLike, extractor: FeatureExtractor) -> None:
        self.folder = Path(root) / "features" / f"{extractor.name}-{extractor.key()}"
        self._index: dict[bytes, tuple[np.ndarray, int]] = {}
        self._new_keys: list[bytes] = []
        self._new_rows: list[int] = []
        shards = []
        if self.folder.is_dir():
            for keys_file in sorted(self.folder.glob("*.keys.npy")):
                shards.extend(self._load_shard(keys_file))
        self._shards = shards
        # One setting gives vectors of one width: a shard of another (damaged, or planted)
        # would put foreign vectors among the others; the width most vectors have is kept
        # until :meth:`keep_width` says which the extractor gives.
        widths: dict[int, int] = {}
        for _keys, rows in shards:
            widths[rows.shape[1]] = widths.get(rows.shape[1], 0) + len(rows)
        self.keep_width(max(widths, key=widths.__getitem__) if widths else None)

    def keep_width(self, width: int | None) -> None:
        """Serve only vectors of ``width`` values (what the extractor gives)."""
        self.width = width
        self._index = {}
        for keys, rows in self._shards:
            if rows.shape[1] == width:
                for i, key in enumerate(keys):
                    self._index[key.tobytes()] = (rows, i)

    def _load_shard(self, keys_file: Path) -> list:
        """``[(keys, rows)]`` of one shard, or ``[]`` when it is damaged (its images are then
        extracted again)."""
        features_file = keys_file.with_name(keys_file.name.replace(".keys.", ".features."))
        try:
            keys = np.load(keys_file)
            rows = np.load(features_file, mmap_mode="r")
        except (OSError, ValueError):
            return []
        if len(keys) != len(rows) or keys.ndim != 2 or keys.shape[1] != _KEY_BYTES:
            return []
        if rows.ndim != 2 or rows.dtype != np.float32 or rows.shape[1] == 0:
            return []
        return [(keys, rows)]

    def __len__(self) -> int:
        return len(self._index)

    def get(self, key: bytes) -> np.ndarray | None:
        """The cached vector for ``key``, or None (also for a vector with NaN or infinite
        values: a damaged shard's image is extracted again)."""
        hit = self._index.get(key)
        if hit is None:
            return None
        vector = np.asarray(hit[0][hit[1]])
        return vector if np.isfinite(vector).all() else None

    def add(self, key: bytes, row: int) -> None:
        """Remember that row ``row`` of the feature matrix is new; :meth:`save` writes it."""
        self._new_keys.append(key)
        self._new_rows.append(row)

    def save(self, features: np.ndarray) -> None:
        """Write the new rows of ``features`` (the run's feature matrix) as one new shard,
        block by block (the matrix may be a memory-mapped file larger than memory)."""
        if not self._new_keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        keys = np.frombuffer(b"".join(self._new_keys), dtype=np.uint8).reshape(-1, _KEY_BYTES)
        rows = np.asarray(self._new_rows)
        temporary = self.folder / f".{name}.features.npy.tmp"
        shard = np.lib.format.open_memmap(
            temporary, mode="w+", dtype=np.float32, shape=(len(rows), features.shape[1])
        )
        for start in range(0, len(rows), _SAVE_BLOCK):
            shard[start : start + _SAVE_BLOCK] = features[rows[start : start + _SAVE_BLOCK]]
        shard.flush()
        del shard
        os.replace(temporary, self.folder / f"{name}.features.npy")
        temporary = self.folder / f".{name}.keys.npy.tmp"
        with open(temporary, "wb") as handle:
            np.save(handle, keys)
        os.replace(temporary, self.folder / f"{name}.keys.npy")
        self._new_keys, self._new_rows = [], []


_SAVE_BLOCK = 65536
#: A feature matrix larger than this lives in a memory-mapped file instead of memory.
MEMORY_BYTES = 256 * 2**20


class FeatureMatrix:
    """The rows of a run's feature matrix, filled in order as images are read.

    Room for every image is made when the first row arrives: in memory up to
    :data:`MEMORY_BYTES`, else in a memory-mapped file in ``folder`` (the system's temporary
    folder by default) that is unlinked at once, so the disk space goes back with the array
    and nothing is left behind, even by a killed run (POSIX; elsewhere the file is removed when
    the array is freed).
    """

    def __init__(self, capacity: int, folder: str | os.PathLike | None = None) -> None:
        self.capacity = capacity
        self.folder = folder
        self.array: np.ndarray | None = None
        self.count = 0

    def append(self, vector: np.ndarray) -> int:
        """Store ``vector`` as the next row; its row number."""
        if self.array is None:
            self.array = allocate_rows((self.capacity, len(vector)), self.folder)
        self.array[self.count] = vector
        self.count += 1
        return self.count - 1

    def result(self) -> np.ndarray:
        """The filled rows."""
        if self.array is None:
            return np.empty((0, 0), dtype=np.float32)
        return self.array[: self.count]


def allocate_rows(shape: tuple[int, int], folder: str | os.PathLike | None = None) -> np.ndarray:
    """An uninitialised float32 array of ``shape``: in memory up to :data:`MEMORY_BYTES`,
    else memory-mapped in an unlinked temporary file in ``folder`` (see :class:`FeatureMatrix`).
    """
    if shape[0] * shape[1] * 4 <= MEMORY_BYTES:
        return np.empty(shape, dtype=np.float32)
    descriptor, path = tempfile.mkstemp(prefix="imgclust-features-", suffix=".f32", dir=folder)
    os.close(descriptor)
    array = np.memmap(path, dtype=np.float32, mode="w+", shape=shape)
    try:
        os.unlink(path)
    except OSError:  # Windows: a mapped file cannot be removed until it is unmapped
        weakref.finalize(array, _remove_quietly, path)
    return array


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@dataclass
class Extraction:
    """The feature matrix of the images that could be read.

    Attributes
    ----------
    features : (n_read, n_features) float32 ndarray
    kept : (n_read,) int ndarray
        Index in the source of each row.
    skipped : list of (id, reason)
    cache_hits : int
    digests : list of str
        The BLAKE2b digest (16 bytes, hexadecimal) of each read file's bytes, row by row: the
        key of the feature cache, and what the output record says of an exported copy or link
        of the file (so that it is not read again to be recognised).
    """

    features: np.ndarray
    kept: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache_hits: int = 0
    digests: list[str] = field(default_factory=list)


def open_cache(cache: bool | str | os.PathLike, extractor: FeatureExtractor) -> FeatureCache | None:
    """The feature cache the ``cache`` argument asks for: None for False, the default folder
    for True, else that folder."""
    if cache is False:
        return None
    return FeatureCache(default_cache_dir() if cache is True else cache, extractor)


def _content_key(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_KEY_BYTES).digest()


def _read_one(source, extractor, cache, index):
    """(key, cached vector or None, prepared array or None, error or None) for one image."""
    try:
        data = source.read_bytes(index)
    except ImageReadError as exc:  # not a regular file, too large: the reason, without the path
        return None, None, None, str(exc).split(": ", 1)[-1]
    except OSError as exc:
        return None, None, None, f"cannot be read ({exc.strerror or exc})"
    key = _content_key(data)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return key, cached, None, None
    try:
        image = source.decode(index, data, extractor.draft_size)
        return key, None, extractor.prepare(image), None
    except ImageReadError as exc:
        return key, None, None, str(exc)


def extract_features(
    source: ImageSource,
    extractor: FeatureExtractor,
    *,
    cache: FeatureCache | None = None,
    workers: int | None = None,
    chunk_size: int = 256,
    progress: ProgressFactory = no_progress,
    client=None,
    spill_folder: str | os.PathLike | None = None,
) -> Extraction:
    """Features of every readable image of ``source``; unreadable ones are skipped.

    Parameters
    ----------
    source : ImageSource
    extractor : FeatureExtractor
    cache : FeatureCache, optional
        Vectors found there are reused; new ones are added and saved.
    workers : int, optional
        Decoding threads (default: the number of CPUs).
    chunk_size : int
        Images per batch step.
    progress : callable, optional
    client : distributed.Client, optional
        Decode and extract on this Dask cluster, a chunk per task (see
        :mod:`imgclust.distributed`); the files must be readable by every worker at the same
        path. Every image is decoded there (the cache is not consulted: the workers would have
        to read each file to hash it anyway); new vectors are added to the cache.
    spill_folder : path, optional
        Where a feature matrix too large for memory is kept (see :class:`FeatureMatrix`).

    Raises
    ------
    InvalidParameterError
        No image could be read.
    """
    if cache is not None and len(cache):
        _check_cache_width(source, extractor, cache)
    matrix = FeatureMatrix(len(source), spill_folder)
    kept: list[int] = []
    digests: list[str] = []
    skipped: list[tuple[int, str]] = []
    hits = 0
    chunks = [
        range(start, min(start + chunk_size, len(source)))
        for start in range(0, len(source), chunk_size)
    ]
    with progress("reading images", len(source)) as advance:
        if client is None:
            finished = _chunks_here(source, extractor, cache, chunks, workers, skipped)
        else:
            finished = _chunks_on_cluster(source, extractor, cache, chunks, client, skipped)
        width = None
        for indices, (chunk_vectors, chunk_hits) in zip(chunks, finished, strict=True):
            for index, vector, key, new in chunk_vectors:
                width = width or len(vector)
                if len(vector) != width:  # cached vectors of another width than the model's
                    raise InvalidParameterError(
                        f"the feature cache {cache.folder if cache else ''} holds vectors of "
                        f"{width} values where the features have {len(vector)}: it is damaged; "
                        "remove that folder, or run with --no-cache"
                    )
                kept.append(index)
                digests.append(key.hex())
                row = matrix.append(vector)
                if new and cache is not None:
                    cache.add(key, row)
            hits += chunk_hits
            advance(len(indices))
    features = matrix.result()
    if cache is not None:
        cache.save(features)
    named = [(source.ids[index], why) for index, why in skipped]
    if not kept:
        reasons = "; ".join(f"{name}: {why}" for name, why in named[:3])
        raise InvalidParameterError(
            f"{source.name}: none of the {len(source)} images could be read ({reasons})"
        )
    return Extraction(features, np.asarray(kept), named, hits, digests)


def _check_cache_width(source, extractor, cache, tries: int = 8) -> None:
    """Extract one image afresh and keep only the cached vectors of its width: a shard of
    another width (damaged, planted) is never mixed in. The first readable of ``tries``
    images is used; if none is, the cache's own majority stands."""
    for index in range(min(tries, len(source))):
        _, _, prepared, error = _read_one(source, extractor, None, index)
        if error is None:
            cache.keep_width(int(extractor.finish(prepared[None]).shape[1]))
            return


def _chunks_here(source, extractor, cache, chunks, workers, skipped):
    """Each chunk's ``(index, vector)`` pairs and cache hits, decoded in threads here.

    The next chunk is decoded while the extractor finishes this one (an image model's run
    releases the GIL), so reading and inference overlap; at most two chunks are held.
    """
    workers = workers or _default_workers(source, extractor)

    def read(indices):
        batches = [indices[i : i + _BATCH] for i in range(0, len(indices), _BATCH)]
        return [
            pool.submit(lambda b: [_read_one(source, extractor, cache, i) for i in b], batch)
            for batch in batches
        ]

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = read(chunks[0]) if chunks else []
        for position, indices in enumerate(chunks):
            results = [item for future in pending for item in future.result()]
            pending = read(chunks[position + 1]) if position + 1 < len(chunks) else []
            yield _finish_chunk(extractor, indices, results, skipped)


def _chunks_on_cluster(source, extractor, cache, chunks, client, skipped):
    """As :func:`_chunks_here`, each chunk a task on a Dask cluster that gets only its paths."""
    from imgclust.distributed import map_in_order

    parts = [(_absolute(source.subset(indices)), indices.start) for indices in chunks]
    for keys, found, failed in map_in_order(client, _extract_remote, parts, extractor=extractor):
        skipped.extend(failed)
        new = [cache is None or cache.get(key) is None for key in keys]
        yield [(i, v, key, n) for (i, v), key, n in zip(found, keys, new, strict=True)], 0


def _absolute(source: ImageSource) -> ImageSource:
    """The source with absolute paths: a worker's working folder is not the client's."""
    if source.paths is None:
        return source
    return replace(source, paths=[path.resolve() for path in source.paths])


def _extract_remote(part, *, extractor):
    """On a Dask worker: ``(keys, [(index, vector)], [(index, reason)])`` of one chunk."""
    source, offset = part
    indices = range(len(source))
    results = [_read_one(source, extractor, None, i) for i in indices]
    failed: list[tuple[int, str]] = []
    found, _ = _finish_chunk(extractor, indices, results, failed)
    keys = [key for _, _, key, _ in found]
    return (
        keys,
        [(offset + i, vector) for i, vector, _, _ in found],
        [(offset + i, why) for i, why in failed],
    )


def _finish_chunk(extractor, indices, results, skipped):
    """Run the extractor's batch step on the decoded images of one chunk, in source order:
    ``([(index, vector, content key, whether the vector is new)], cache hits)``."""
    fresh = [(i, r[2]) for i, r in zip(indices, results, strict=True) if r[2] is not None]
    finished: dict[int, np.ndarray] = {}
    if fresh:
        rows = extractor.finish(np.stack([prepared for _, prepared in fresh]))
        finished = {index: row for (index, _), row in zip(fresh, rows, strict=True)}
    out, hits = [], 0
    for index, (key, cached, _, error) in zip(indices, results, strict=True):
        if error is not None:
            skipped.append((index, error))
            continue
        if cached is not None:
            hits += 1
            out.append((index, cached, key, False))
        else:
            out.append((index, finished[index], key, True))  # new: its key goes to the cache
    return out, hits
