"""Build script: setuptools drives CMake for the C++ extension ``simplepose._C``.

Release by default; ``DEBUG=1`` builds with debug info; ``CMAKE_ARGS`` is passed through
(e.g. ``CMAKE_ARGS="-DSIMPLEPOSE_SANITIZE=ON"`` for AddressSanitizer/UBSan).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    """An extension built by CMake from ``source_dir`` (no sources listed for setuptools)."""

    def __init__(self, name: str, source_dir: Path = ROOT) -> None:
        super().__init__(name, sources=[])
        self.source_dir = source_dir


class CMakeBuild(build_ext):
    """Configure and build each ``CMakeExtension`` with CMake, in a per-extension build dir."""

    def build_extension(self, ext: Extension) -> None:
        if not isinstance(ext, CMakeExtension):
            super().build_extension(ext)
            return
        import pybind11

        ext_path = Path(self.get_ext_fullpath(ext.name)).resolve()
        debug = int(os.environ.get("DEBUG", "0")) or self.debug
        config = "Debug" if debug else "Release"
        cmake_args = [
            f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={ext_path.parent}{os.sep}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DCMAKE_BUILD_TYPE={config}",
            "-DSIMPLEPOSE_BUILD_PYTHON=ON",
        ]
        if "CMAKE_ARGS" in os.environ:
            cmake_args += [arg for arg in os.environ["CMAKE_ARGS"].split(" ") if arg]
        build_temp = Path(self.build_temp) / ext.name
        build_temp.mkdir(parents=True, exist_ok=True)
        jobs = f"-j{os.cpu_count() or 1}"
        subprocess.run(["cmake", str(ext.source_dir), *cmake_args], cwd=build_temp, check=True)
        subprocess.run(
            ["cmake", "--build", ".", "--config", config, "--target", "_C", jobs],
            cwd=build_temp,
            check=True,
        )


setup(
    ext_modules=[CMakeExtension("simplepose._C")],
    cmdclass={"build_ext": CMakeBuild},
)
