"""The type stub (cuframes/_cuframes.pyi) and py.typed agree with the compiled module."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import cuframes
from cuframes import _cuframes
from helpers import pybind_params

PKG = Path(cuframes.__file__).parent
STUB = PKG / "_cuframes.pyi"
HERE = Path(__file__).resolve().parent

# Dunders that are part of the API (the rest is pybind11's machinery).
API_DUNDERS = {"__init__", "__enter__", "__exit__", "__dlpack__", "__dlpack_device__",
               "__iter__", "__next__", "__len__"}


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text())


def stub_params(fn: ast.FunctionDef) -> list[tuple[str, Optional[str], bool]]:
    a = fn.args
    out: list[tuple[str, Optional[str], bool]] = []
    pos = a.posonlyargs + a.args
    defaults: list[Optional[ast.expr]] = [None] * (len(pos) - len(a.defaults)) + list(a.defaults)
    for arg, d in zip(pos, defaults):
        if arg.arg != "self":
            out.append((arg.arg, None if d is None else ast.unparse(d), False))
    for arg, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((arg.arg, None if d is None else ast.unparse(d), True))
    return out


def normalize(default: Optional[str]) -> Optional[str]:
    """Stub defaults ("SubscriberMode.NEWEST_ONLY", "b''") and pybind11's reprs
    ("<SubscriberMode.NEWEST_ONLY: 0>", "b''") to one spelling."""
    if default is None:
        return None
    d = default.strip()
    if d.startswith("<") and ":" in d:
        d = d[1:].split(":")[0]
    return d.replace('"', "'")


def api_members(obj: Any) -> dict[str, Any]:
    return {n: v for n, v in vars(obj).items()
            if (not n.startswith("__") or n in API_DUNDERS) and not n.startswith("_pybind11")}


def runtime_params(fn: Any) -> list[tuple[str, Optional[str], bool]]:
    """A bound method's parameters as pybind_params gives them: from pybind11's signature line,
    or, for the methods bound as plain CPython methods (python/src/raw_method.h), from their text
    signature (inspect)."""
    if type(fn).__name__ != "method_descriptor":
        return pybind_params(fn.__doc__)
    params = list(inspect.signature(fn).parameters.values())[1:]  # self
    return [(p.name, None if p.default is p.empty else repr(p.default),
             p.kind == p.KEYWORD_ONLY) for p in params]


def test_py_typed_and_stub_shipped() -> None:
    assert (PKG / "py.typed").exists()
    assert STUB.exists()


def test_stub_matches_module() -> None:
    tree = stub_tree()
    stub_names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    stub_names |= {t.id for n in tree.body if isinstance(n, ast.Assign)
                   for t in n.targets if isinstance(t, ast.Name)}
    runtime = {n for n in vars(_cuframes) if not n.startswith("__")}
    assert runtime - stub_names == set(), "in the module, missing from the stub"
    assert stub_names - runtime - {"_Stream", "_Source"} == set(), "in the stub, not in the module"

    checked = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            fn = getattr(_cuframes, node.name)
            assert [(n, normalize(d), k) for n, d, k in pybind_params(fn.__doc__)] == \
                   [(n, normalize(d), k) for n, d, k in stub_params(node)], node.name
            checked += 1
        elif isinstance(node, ast.ClassDef):
            cls = getattr(_cuframes, node.name)
            if issubclass(cls, BaseException) or not hasattr(cls, "_pybind11_conduit_v1_") and \
                    not type(cls).__name__ == "pybind11_type":
                continue  # exceptions and IntEnums: compared below
            members = {n.name: n for n in node.body if isinstance(n, ast.FunctionDef)}
            runtime_members = api_members(cls)
            if "__init__" not in members and "__init__" in runtime_members:
                del runtime_members["__init__"]  # pybind11's "No constructor defined"
                try:
                    cls()
                except TypeError:
                    pass
                else:
                    raise AssertionError(f"{node.name} can be constructed but has no stub __init__")
            assert set(runtime_members) - set(members) == set(), f"{node.name}: missing in stub"
            assert set(members) - set(runtime_members) == set(), f"{node.name}: not at runtime"
            for name, fn_node in members.items():
                rt = runtime_members[name]
                is_prop = any(isinstance(d, ast.Name) and d.id == "property" or
                              isinstance(d, ast.Attribute) and d.attr == "setter"
                              for d in fn_node.decorator_list)
                assert isinstance(rt, property) == is_prop, f"{node.name}.{name}"
                if is_prop:
                    has_setter = any(isinstance(n, ast.FunctionDef) and n.name == name and
                                     any(isinstance(d, ast.Attribute) and d.attr == "setter"
                                         for d in n.decorator_list) for n in node.body)
                    assert (rt.fset is not None) == has_setter, f"{node.name}.{name} setter"
                    continue
                got = [(n, normalize(d), k) for n, d, k in runtime_params(rt)]
                want = [(n, normalize(d), k) for n, d, k in stub_params(fn_node)]
                if name == "__exit__":
                    assert len(got) == len(want) == 3
                    continue
                assert got == want, f"{node.name}.{name}"
                checked += 1
    assert checked > 40


def test_enums_and_exceptions_in_stub() -> None:
    tree = stub_tree()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        cls = getattr(_cuframes, node.name)
        bases = [ast.unparse(b) for b in node.bases]
        if "enum.IntEnum" in bases:
            members = {t.id: ast.literal_eval(n.value) for n in node.body
                       if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
            assert members == {m.name: m.value for m in cls}, node.name
        elif issubclass(cls, BaseException):
            assert [b.__name__ for b in cls.__bases__] == [b.split(".")[-1] for b in bases], node.name


def test_public_package_signatures() -> None:
    """cuframes.subscribe mirrors _SubscriberBase.__init__; __all__ is what the stub exports."""
    sub = inspect.signature(cuframes.subscribe)
    base = pybind_params(_cuframes._SubscriberBase.__init__.__doc__ or "")
    assert [(p.name, p.kind == p.KEYWORD_ONLY) for p in sub.parameters.values()] == \
           [(n, k) for n, _, k in base]
    pre = inspect.signature(cuframes.preprocess)
    base = pybind_params(_cuframes._BatchBase.__init__.__doc__ or "")
    assert [(p.name, p.kind == p.KEYWORD_ONLY) for p in pre.parameters.values()] == \
           [(n, k) for n, _, k in base]


def test_mypy_stubtest() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PKG.parent)] + sys.path)
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "cuframes", "--allowlist",
         str(HERE / "stubtest_allowlist.txt")],
        capture_output=True, text=True, env=env, timeout=600, cwd=str(HERE))
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_on_package() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PKG.parent)
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                        "-p", "cuframes"],
                       capture_output=True, text=True, env=env, timeout=600, cwd=str(HERE))
    assert r.returncode == 0, r.stdout + r.stderr
