"""Loops compiled ahead of time when the package is built, numba's JIT when they are not.

A fresh process that calls a numba function pays for importing numba (about 0.2 s) and for
loading numba's type registries before the cached machine code can run (about 0.45 s), more
than the whole colour segmentation of a 12-megapixel photo. So the single-threaded loops
that the one-image jobs and the k-means engine run are also compiled, when the package is
built, into the extension module ``imgclust._native_loops`` by numba's ahead-of-time
compiler (``numba.pycc``, see ``setup.py``), from the very same Python source. :func:`loop`
hands out the compiled function when its argument types match a compiled variant exactly,
and the JIT function otherwise (or when the package was not built, e.g. a bare checkout on
``sys.path``). Both are the same code compiled by the same LLVM for the same CPU, and the
tests check that they give identical results.

Compiled functions check nothing about their arguments (a wrong dtype would read the wrong
memory), which is why :func:`loop` matches dtype, number of dimensions and C-contiguity of
every array before it uses one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import numpy as np

try:
    from imgclust import _native_loops as _compiled
except ImportError:  # not built: every loop runs through numba's JIT
    _compiled = None

__all__ = ["LOOPS", "call", "compiled_available", "jit_loop", "loop", "parse_type", "variant_name"]

_FLOATS = ("float32", "float64")

#: The arguments of the raster classifying kernel after the bands (see raster/_kernels.py).
_STRIP_ARGUMENTS = (
    "bool[2]", "int64", "int64[1]", "int64[1]", "float64[1]", "float64[1]", "float32[2]",
    "uint8[2]", "float64[3]", "float64[3]", "int64[2]",
)  # fmt: skip

#: Each loop: (module of the JIT function, its name, the argument types of each compiled
#: variant). ``"float64[2]"`` is a C-contiguous 2-D float64 array, ``"int64"`` a scalar.
LOOPS: dict[str, tuple[str, str, list[tuple[str, ...]]]] = {
    "count": (
        "imgclust.pixels._kernels",
        "count",
        [("uint8[2]", "bool[1]", "uint32[1]", "uint32[1]")],
    ),
    "collect_and_clear": (
        "imgclust.pixels._kernels",
        "collect_and_clear",
        [("uint32[1]", "uint32[1]", "int64[1]")],
    ),
    "fill": ("imgclust.pixels._kernels", "fill", [("uint32[1]", "uint32[1]", "uint32[1]")]),
    "lookup": (
        "imgclust.pixels._kernels",
        "lookup",
        [
            ("uint8[2]", "bool[1]", "uint32[1]", f"{t}[1]", "int64")
            for t in ("uint8", "uint16", "uint32")
        ],
    ),
    "assign_and_accumulate": (
        "imgclust.cluster._kernels",
        "assign_and_accumulate_serial",
        [(f"{t}[2]", "float64[1]", "float64[2]", "int32[1]", "float64[1]") for t in _FLOATS],
    ),
    "assign_and_accumulate_3d": (
        "imgclust.cluster._kernels",
        "assign_and_accumulate_3d_serial",
        [(f"{t}[2]", "float64[1]", "float64[2]", "int32[1]", "float64[1]") for t in _FLOATS],
    ),
    "assign": (
        "imgclust.cluster._kernels",
        "assign_serial",
        [(f"{t}[2]", f"{t}[2]", "int32[1]", "float64[1]") for t in _FLOATS],
    ),
    "potential": (
        "imgclust.cluster._kernels",
        "potential_serial",
        [(f"{t}[2]", "float64[1]", "float64[1]", "int64") for t in _FLOATS],
    ),
    "update_closest": (
        "imgclust.cluster._kernels",
        "update_closest_serial",
        [(f"{t}[2]", "float64[1]", "int64") for t in _FLOATS],
    ),
    # the raster passes: the sample's candidate keys, and the classifying kernel for the
    # common band types (others, and more than 255 classes, run through the JIT)
    "candidates": (
        "imgclust.raster._kernels",
        "candidates",
        [("bool[2]", "int64", "int64", "int64", "int64", "uint64", "int64[1]", "uint64[1]")],
    ),
    "classify_strip": (
        "imgclust.raster._kernels",
        "classify_strip",
        [(f"{t}[3]", *_STRIP_ARGUMENTS) for t in ("uint8", "uint16", "int16", "float32")],
    ),
}


def parse_type(spec: str) -> tuple[np.dtype, int]:
    """``"float64[2]"`` -> (dtype('float64'), 2); ``"int64"`` -> (dtype('int64'), 0)."""
    name, _, rest = spec.partition("[")
    return np.dtype(name), int(rest.rstrip("]")) if rest else 0


_PARSED = {
    name: [tuple(parse_type(s) for s in variant) for variant in variants]
    for name, (_, _, variants) in LOOPS.items()
}


def variant_name(name: str, index: int) -> str:
    """Name of compiled variant ``index`` of loop ``name`` in the extension module."""
    return f"{name}_{index}"


def compiled_available() -> bool:
    """Whether the package was built with its loops compiled ahead of time."""
    return _compiled is not None


def _matches(expected: tuple[np.dtype, int], value) -> bool:
    dtype, ndim = expected
    if ndim == 0:
        kind = (int, np.integer) if dtype.kind in "iu" else (float, np.floating)
        return isinstance(value, kind) and not isinstance(value, bool)
    return (
        isinstance(value, np.ndarray)
        and value.dtype == dtype
        and value.ndim == ndim
        and value.flags.c_contiguous
        and value.flags.aligned
    )


def loop(name: str, *args) -> Callable:
    """The function that runs loop ``name`` on ``args``: compiled if a variant fits, else JIT.

    Callers that run a loop many times on the same arrays look it up once.
    """
    if _compiled is not None:
        for index, variant in enumerate(_PARSED[name]):
            if len(variant) == len(args) and all(map(_matches, variant, args)):
                return getattr(_compiled, variant_name(name, index))
    return jit_loop(name)


def call(name: str, *args):
    """Run loop ``name`` on ``args`` (see :func:`loop`)."""
    return loop(name, *args)(*args)


def jit_loop(name: str) -> Callable:
    """The numba JIT function of loop ``name`` (imports numba)."""
    module, function, _ = LOOPS[name]
    return getattr(importlib.import_module(module), function)
