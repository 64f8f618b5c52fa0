"""``simplepose._C`` stays correct when it carries its own static C++ runtime.

A user's toolchain, not simplepose, decides whether the extension links libstdc++ statically
(``LDFLAGS="-static-libstdc++ -static-libgcc"``, or a compiler whose runtime is not the one
torch uses), and torch loads its C++ runtime into the process globally. When the extension
exported its copy of the runtime, the dynamic linker bound part of it to torch's copy:
``shape_of()``'s iostream code cut every shape message after "(" (a SIGSEGV with runtimes of
two GCC versions). This builds the extension once that way, in a temporary folder (the
in-place module is left alone), checks that it exports none of the static libraries' symbols,
and runs the binding's tests against it in a subprocess; their messages are matched whole.

The build takes about half a minute on 2 cores. Without a C++ compiler, CMake, pybind11 or a
static libstdc++ it skips, except under CI (``CI=true``), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, _in_ci

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="a static libstdc++ is a Linux (ELF) setup"
)

# Run against the static-runtime build: the robustness tests (every error message, matched
# whole), the golden-vector tests and the stub test of the bindings.
BINDING_TESTS = [
    "tests/test_grouping_robustness.py",
    "tests/test_grouping.py",
    "tests/test_grouping_binding.py",
]
STATIC_LDFLAGS = "-static-libstdc++ -static-libgcc"
# Symbol families the static runtime and the core define; none may be exported.
PRIVATE_PREFIXES = (
    "_ZNSt6locale",  # std::locale (the facet ids that clashed)
    "_ZNSt8ios_base",  # std::ios_base
    "_ZNSo",  # std::ostream
    "__cxa_",  # the C++ ABI runtime (libsupc++)
    "_Unwind_",  # the unwinder (libgcc_eh)
    "_ZN10simplepose",  # the grouping core's functions
)


def _missing(what: str) -> None:
    message = f"cannot build the static-runtime extension: {what}"
    if _in_ci():
        pytest.fail(message + " (required under CI)")
    pytest.skip(message)


def _tool(name: str) -> str:
    # The venv's own bin first: pip's cmake lands there (the test extra installs it).
    path = shutil.which(
        name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    )
    if path is None:
        _missing(f"{name} not found")
    return path


@pytest.fixture(scope="module")
def static_extension(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of ``_C`` built with ``LDFLAGS="-static-libstdc++ -static-libgcc"`` (once)."""
    cmake = _tool("cmake")
    # The compiler CMake picks: $CXX (possibly with a launcher or flags), else c++ or g++.
    cxx = os.environ.get("CXX", "").split() or [shutil.which("c++") or shutil.which("g++") or ""]
    if not cxx[0] or shutil.which(cxx[0]) is None:
        _missing(f"no C++ compiler ({cxx[0] or 'c++, g++'} not found; $CXX names one)")
    libstdcxx = subprocess.run(
        [*cxx, "-print-file-name=libstdc++.a"], capture_output=True, text=True
    ).stdout.strip()
    if not os.path.isabs(libstdcxx):
        _missing(f"{' '.join(cxx)} has no static libstdc++ (libstdc++.a)")
    try:
        import pybind11
    except ImportError:
        _missing("pybind11 is not installed (pip install -e '.[test]')")
    build = tmp_path_factory.mktemp("static_runtime")
    out = build / "out"
    env = {**os.environ, "LDFLAGS": STATIC_LDFLAGS}
    steps = [
        [
            cmake,
            "-S",
            str(REPO_ROOT),
            "-B",
            str(build),
            "-DSIMPLEPOSE_BUILD_PYTHON=ON",
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
        ],
        [cmake, "--build", str(build), "--target", "_C", f"-j{os.cpu_count() or 1}"],
    ]
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{' '.join(step)} failed:\n{done.stdout}\n{done.stderr}"
    (module,) = out.glob("_C*.so")
    return module


def _dynamic(module: Path, *args: str) -> str:
    done = subprocess.run(
        [_tool(args[0]), *args[1:], str(module)], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_the_build_carries_its_own_runtime_and_exports_none_of_it(static_extension):
    needed = _dynamic(static_extension, "readelf", "-d")
    assert "libc.so" in needed and "libstdc++" not in needed and "libgcc_s" not in needed
    symbols = [
        line.split()[-1]
        for line in _dynamic(static_extension, "nm", "-D", "--defined-only").splitlines()
    ]
    assert "PyInit__C" in symbols
    exported = [s for s in symbols if s.startswith(PRIVATE_PREFIXES)]
    assert not exported, f"{len(exported)} private symbols exported, e.g. {exported[:5]}"


def test_binding_tests_pass_against_the_static_runtime_build(static_extension):
    # csrc/tests/asan_pytest.py puts the given build in sys.modules before the tests import
    # it; the tests' conftest imports torch, whose C++ runtime is the other one in the process.
    done = subprocess.run(
        [
            sys.executable,
            "csrc/tests/asan_pytest.py",
            str(static_extension),
            *BINDING_TESTS,
            "-q",
            "--tb=line",
            "-p",
            "no:cacheprovider",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert done.returncode >= 0, f"killed by signal {-done.returncode}:\n{report}"
    assert done.returncode == 0, report
    assert f"simplepose._C loaded from {static_extension}" in done.stderr, report
