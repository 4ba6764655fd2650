"""The loops compiled ahead of time against their numba JIT versions."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from imgclust import _native

N_SAMPLES = 20_000  # several of the loops' fixed chunks


def _cluster_arguments(name: str, dtype: np.dtype, rng: np.random.Generator) -> tuple:
    d = 3 if name == "assign_and_accumulate_3d" else 5
    X = rng.normal(size=(N_SAMPLES, d)).astype(dtype)
    w = rng.random(N_SAMPLES) * 3
    if name in ("assign_and_accumulate", "assign_and_accumulate_3d"):
        centers = X[:7].astype(np.float64)
        return X, w, centers, np.full(N_SAMPLES, -1, dtype=np.int32), np.empty(N_SAMPLES)
    if name == "assign":
        return X, X[:7].copy(), np.empty(N_SAMPLES, dtype=np.int32), np.empty(N_SAMPLES)
    closest = rng.random(N_SAMPLES) * 10
    if name == "potential":
        return X, w, closest, 123
    return X, closest, 123  # update_closest


def _pixel_arguments(name: str, variant: tuple[str, ...], rng: np.random.Generator) -> tuple:
    pixels = rng.integers(0, 4, size=(N_SAMPLES, 3)).astype(np.uint8)
    include = rng.random(N_SAMPLES) < 0.8
    table = np.zeros(1 << 24, dtype=np.uint32)
    keys = np.unique(rng.integers(0, 1 << 24, size=500)).astype(np.uint32)
    if name == "count":
        return pixels, include, table, np.zeros(N_SAMPLES, dtype=np.uint32)
    if name == "collect_and_clear":
        table[keys] = rng.integers(1, 100, size=keys.size)
        return table, keys, np.zeros(keys.size, dtype=np.int64)
    if name == "fill":
        return table, keys, rng.integers(0, 9, size=keys.size).astype(np.uint32)
    table[:] = rng.integers(0, 9, size=table.size)
    out_dtype = _native.parse_type(variant[3])[0]  # lookup: labels of one of several types
    return pixels, include, table, np.zeros(N_SAMPLES, dtype=out_dtype), np.iinfo(out_dtype).max


def _raster_arguments(name: str, variant: tuple[str, ...], rng: np.random.Generator) -> tuple:
    valid = rng.random((60, 70)) < 0.8
    if name == "candidates":
        keys = np.empty(valid.size, dtype=np.uint64)
        return valid, 3, 5, 90, 7, np.uint64(1 << 63), np.empty(valid.size, np.int64), keys
    dtype = _native.parse_type(variant[0])[0]
    data = (rng.random((4, *valid.shape)) * 100).astype(dtype)
    k, lanes = 5, 4
    return (
        data, valid, 3, np.array([3]), np.array([2]), rng.random(4) * 50, rng.random(4) + 1,
        rng.normal(size=(k, 4)).astype(np.float32), np.empty(valid.shape, dtype=np.uint8),
        np.zeros((lanes, k + 1, 4)), np.zeros((lanes, k + 1, 4)),
        np.zeros((lanes, k + 1), dtype=np.int64),
    )  # fmt: skip


def _arguments(name: str, variant: tuple[str, ...]) -> tuple:
    rng = np.random.default_rng(zlib.crc32(repr((name, variant)).encode()))
    module = _native.LOOPS[name][0]
    if module.endswith("pixels._kernels"):
        return _pixel_arguments(name, variant, rng)
    if module.endswith("raster._kernels"):
        return _raster_arguments(name, variant, rng)
    return _cluster_arguments(name, _native.parse_type(variant[0])[0], rng)


def _copies(args: tuple) -> tuple:
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


VARIANTS = [
    (name, index)
    for name, (_, _, variants) in _native.LOOPS.items()
    for index in range(len(variants))
]


def test_package_was_built_with_its_compiled_loops():
    assert _native.compiled_available(), "build the package first: pip install -e ."


@pytest.mark.parametrize(("name", "index"), VARIANTS)
def test_compiled_loop_equals_its_jit_version(name, index):
    variant = _native.LOOPS[name][2][index]
    args = _arguments(name, variant)
    compiled = _native.loop(name, *args)
    assert compiled is getattr(_native._compiled, _native.variant_name(name, index))
    jit_args, compiled_args = _copies(args), _copies(args)
    expected = _native.jit_loop(name)(*jit_args)
    result = compiled(*compiled_args)
    np.testing.assert_equal(result, expected)
    for jit_array, compiled_array in zip(jit_args, compiled_args, strict=True):
        np.testing.assert_array_equal(compiled_array, jit_array)  # outputs written in place
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(args, jit_args, strict=True)
        if isinstance(a, np.ndarray)
    ]
    assert any(changed) or expected is not None  # the loop did something to compare


@pytest.mark.parametrize(
    "args",
    [
        (np.zeros((5, 3), dtype=np.float16), np.zeros((2, 3), dtype=np.float16)),  # no variant
        (np.zeros((5, 6))[:, ::2], np.zeros((2, 3))),  # not contiguous
        (np.zeros((5, 3), dtype=np.float32), np.zeros((2, 3))),  # mixed dtypes
    ],
)
def test_arguments_without_a_compiled_variant_go_to_the_jit_version(args):
    X, centers = args
    outputs = (np.empty(5, dtype=np.int32), np.empty(5))
    assert _native.loop("assign", X, centers, *outputs) is _native.jit_loop("assign")


def _modules_after(command: list[str], modules: tuple[str, ...]) -> list[bool]:
    """Run the ``imgclust`` command in a fresh interpreter; which of ``modules`` it imported."""
    script = (
        "import sys\n"
        "from imgclust.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
        f"print(*[m in sys.modules for m in {modules!r}])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *command], capture_output=True, text=True, check=True
    )
    return [word == "True" for word in out.stdout.split()]


def test_segment_command_imports_neither_numba_nor_scipy(tmp_path):
    """numba's start-up (0.65 s) and scipy.linalg (0.2 s, through scikit-image's colour
    module) would double the command's time on a photo."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)).save(
        tmp_path / "photo.png"
    )
    photo, out_dir = str(tmp_path / "photo.png"), str(tmp_path / "out")
    command = ["segment", photo, "-k", "4", "-o", out_dir, "-q"]
    assert _modules_after(command, ("numba", "scipy")) == [False, False]
    assert (tmp_path / "out" / "segmented.png").is_file()


def test_classify_command_imports_neither_numba_nor_matplotlib(tmp_path):
    """numba's start-up (0.6-1.0 s) and matplotlib (0.5 s) were an eighth or more of the
    command's CPU time on a 45.7 MP scene (issue 23)."""
    rasterio = pytest.importorskip("rasterio")
    rng = np.random.default_rng(0)
    bands = rng.integers(100, 4000, size=(4, 90, 120)).astype(np.uint16)
    scene = tmp_path / "scene.tif"
    profile = {"driver": "GTiff", "width": 120, "height": 90, "count": 4, "dtype": "uint16"}
    transform = rasterio.transform.from_origin(500_000, 4_000_000, 30, 30)
    with rasterio.open(scene, "w", crs="EPSG:32616", transform=transform, **profile) as dst:
        dst.write(bands)
    command = ["classify", str(scene), "-k", "4", "-o", str(tmp_path / "out"), "-q"]
    assert _modules_after(command, ("numba", "matplotlib")) == [False, False]
    assert (tmp_path / "out" / "classes.tif").is_file()


def test_compiled_loops_release_the_gil():
    """A thread that yields the GIL at every step advances only while a loop has let go of it.

    With a switch interval far longer than the test, the main thread keeps the GIL except
    where it gives it up itself: in a compiled loop that releases it, or nowhere.
    """
    X = np.random.default_rng(0).normal(size=(1_000_000, 3))
    args = (X, X[:16].copy(), np.empty(len(X), dtype=np.int32), np.empty(len(X)))
    compiled = _native.loop("assign", *args)
    assert compiled is not _native.jit_loop("assign")
    state = {"steps": 0, "stop": False}

    def step() -> None:
        while not state["stop"]:
            state["steps"] += 1
            time.sleep(0)  # hands the GIL back at once

    previous = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    thread = threading.Thread(target=step)
    try:
        thread.start()
        while state["steps"] == 0:
            time.sleep(0.001)
        before = state["steps"]
        compiled(*args)
        during = state["steps"] - before
    finally:
        state["stop"] = True
        sys.setswitchinterval(previous)
        thread.join()
    assert during > 10
