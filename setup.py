"""Build step that pyproject.toml cannot express: the loops compiled ahead of time.

numba's ahead-of-time compiler (``numba.pycc``) turns the serial loops listed in
``imgclust._native.LOOPS`` into the extension module ``imgclust._native_loops``, from the same
Python source that numba's JIT compiles at run time; commands that use only those loops then
never import numba (see docs/design.md). The kernel modules are loaded from their files, not
through the ``imgclust`` package, whose dependencies the build environment does not have.

The code is generated for the CPU of the machine that builds (as numba's JIT does); set
``IMGCLUST_TARGET_CPU`` (an LLVM CPU name such as ``x86-64-v2``, or ``generic``) to build
for other machines.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SRC = Path(__file__).resolve().parent / "src" / "imgclust"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _numba_type(spec: str, native):
    from numba import from_dtype, types

    dtype, ndim = native.parse_type(spec)
    scalar = from_dtype(dtype)
    return scalar if ndim == 0 else types.Array(scalar, ndim, "C")


def native_compiler():
    """numba's ahead-of-time compiler, loaded with every loop of ``imgclust._native.LOOPS``."""
    # numba's JIT compiles the helpers the loops call; keep its cache out of the source tree.
    os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="imgclust-build-numba-"))
    from numba.pycc import CC

    _release_the_gil()
    native = _load("imgclust._native", SRC / "_native.py")
    cc = CC("_native_loops", source_module=native)
    cc.target_cpu = os.environ.get("IMGCLUST_TARGET_CPU", "host")
    kernels = {}
    for name, (module, function, variants) in native.LOOPS.items():
        if module not in kernels:
            relative = Path(*module.split(".")[1:]).with_suffix(".py")
            kernels[module] = _load(f"_imgclust_build_{module.replace('.', '_')}", SRC / relative)
        source = getattr(kernels[module], function).py_func
        for index, variant in enumerate(variants):
            signature = tuple(_numba_type(spec, native) for spec in variant)
            cc.export(native.variant_name(name, index), signature)(source)
    return cc


def _release_the_gil() -> None:
    """Have the compiled loops release the GIL while they run, as ``nogil=True`` JIT ones do.

    numba.pycc has no option for it: its module compiler builds each function's Python
    wrapper from a fresh ``Flags()``, so the flag is set by subclassing that name. If a numba
    version compiles differently, the loops simply keep the GIL (the same results, less
    overlap with other threads).
    """
    from numba.pycc import compiler

    class ReleaseGilFlags(compiler.Flags):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    compiler.Flags = ReleaseGilFlags


class BuildNative(build_ext):
    """``build_ext`` that has numba's compiler build ``imgclust._native_loops``."""

    def build_extension(self, ext: Extension) -> None:
        if ext.name != "imgclust._native_loops":
            super().build_extension(ext)
            return
        cc = native_compiler()
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        cc.output_dir, cc.output_file = str(target.parent), target.name
        cc.compile()


setup(
    # optional: without a C compiler the package still installs and runs the JIT loops
    ext_modules=[Extension("imgclust._native_loops", sources=[], optional=True)],
    cmdclass={"build_ext": BuildNative},
)
