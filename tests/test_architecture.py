"""The package's written rules, checked on its source: unit sizes, parameter counts and what
``import bvn_plan`` loads (see the package docstring)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bvn_plan"
MAX_FUNCTION_LINES = 100
MAX_CLASS_LINES = 300
MAX_PARAMETERS = 8
#: Modules whose import `import bvn_plan` must not trigger (rendering, NIfTI, command line).
HEAVY_MODULES = ("pyvista", "vtkmodules.vtkRenderingCore", "nibabel", "click", "matplotlib", "dask", "rich")


def _units():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                yield path.relative_to(PACKAGE.parent), node


def _is_click_command(node) -> bool:
    return any("command" in ast.unparse(d) or "group" in ast.unparse(d) for d in node.decorator_list)


def _parameter_count(node) -> int:
    a = node.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return len([n for n in names if n not in ("self", "cls")])


def test_no_unit_is_too_long():
    long_units = []
    for path, node in _units():
        lines = node.end_lineno - node.lineno + 1
        limit = MAX_CLASS_LINES if isinstance(node, ast.ClassDef) else MAX_FUNCTION_LINES
        if lines > limit and not _is_click_command(node):
            long_units.append(f"{path}:{node.lineno} {node.name} ({lines} lines > {limit})")
    assert not long_units, "\n".join(long_units)


def test_no_function_takes_too_many_parameters():
    crowded = [f"{path}:{node.lineno} {node.name} ({_parameter_count(node)} parameters)"
               for path, node in _units()
               if not isinstance(node, ast.ClassDef) and not _is_click_command(node)
               and _parameter_count(node) > MAX_PARAMETERS]
    assert not crowded, "\n".join(crowded)


def test_import_bvn_plan_loads_no_rendering_nifti_or_cli():
    code = ("import sys, bvn_plan; "
            f"print(' '.join(m for m in {HEAVY_MODULES!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_the_limits_would_catch_a_breach():
    source = "def f(a, b, c, d, e, f, g, h, *rest):\n" + "    x = 1\n" * 101
    node = ast.parse(source).body[0]
    assert _parameter_count(node) == 9 and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
