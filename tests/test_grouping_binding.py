"""``simplepose/_C.pyi`` matches ``csrc/bindings.cpp``: same names, same parameters.

The binding's side is read from what pybind11 generates: the module's public attributes,
each function's signature line in its docstring, and the properties of the bound classes.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import simplepose

_C = pytest.importorskip("simplepose._C")

STUB = Path(simplepose.__file__).parent / "_C.pyi"


def _stub() -> dict[str, ast.AST]:
    tree = ast.parse(STUB.read_text())
    out: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def _binding_params(fn) -> list[str]:
    # pybind11 docstrings start with "name(arg: type, ...) -> type".
    first = fn.__doc__.splitlines()[0]
    match = re.match(rf"{fn.__name__}\((.*)\) ->", first)
    assert match, first
    return [p.split(":")[0].strip() for p in match.group(1).split(",") if p.strip()]


def _stub_params(node: ast.FunctionDef) -> list[str]:
    return [a.arg for a in node.args.args]


def test_same_public_names():
    binding = {name for name in dir(_C) if not name.startswith("_")}
    assert binding == set(_stub())


@pytest.mark.parametrize("name", ["find_peaks", "score_parts", "assemble", "decode"])
def test_function_parameters_match(name):
    node = _stub()[name]
    assert isinstance(node, ast.FunctionDef)
    assert _binding_params(getattr(_C, name)) == _stub_params(node)


def test_decode_params_fields_match():
    node = _stub()["DecodeParams"]
    assert isinstance(node, ast.ClassDef)
    stub_fields = {
        n.target.id
        for n in node.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    stub_methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
    bound = {
        name
        for name, value in vars(_C.DecodeParams).items()
        if isinstance(value, property) and not name.startswith("_")
    }
    assert stub_fields == bound
    methods = {
        name
        for name in dir(_C.DecodeParams)
        if not name.startswith("_")
        and name not in bound
        and callable(getattr(_C.DecodeParams, name))
    }
    assert stub_methods - {"__init__"} == methods
    assert _binding_params(_C.DecodeParams.validate) == ["self"]


def test_person_score_members_match():
    node = _stub()["PersonScore"]
    assert isinstance(node, ast.ClassDef)
    stub_members = {
        n.target.id
        for n in node.body
        if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    }
    assert stub_members == set(_C.PersonScore.__members__)
