"""Run pytest against a sanitizer build of ``simplepose._C`` (AddressSanitizer + UBSan).

Any other build of the extension loads the same way (tests/test_static_runtime.py runs the
binding's tests against one linked with a static C++ runtime).

The editable install's import hook would otherwise load the regular ``simplepose/_C*.so``
(it wins over ``PYTHONPATH``), so the sanitizer build is loaded by path and put in
``sys.modules`` before the tests import it. From the repository root::

    cmake -S . -B build-asan -DSIMPLEPOSE_BUILD_PYTHON=ON -DSIMPLEPOSE_SANITIZE=ON \\
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$PWD/build-asan/out \\
        -Dpybind11_DIR=$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')
    cmake --build build-asan --target _C -j2
    LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)" \\
        ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \\
        python csrc/tests/asan_pytest.py build-asan/out/_C.*.so tests/test_grouping_robustness.py -q

(``detect_leaks=0``: CPython itself does not free everything at exit.)
"""

from __future__ import annotations

import importlib.util
import sys


def main(argv: list[str]) -> int:
    """argv: the sanitizer-built extension's path, then pytest arguments."""
    spec = importlib.util.spec_from_file_location("simplepose._C", argv[0])
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load an extension from {argv[0]!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import simplepose

    sys.modules["simplepose._C"] = module
    simplepose._C = module  # type: ignore[attr-defined]
    import pytest

    sys.stderr.write(f"simplepose._C loaded from {module.__file__}\n")
    return int(pytest.main(argv[1:]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
