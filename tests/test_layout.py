"""The package's layout rules, read from the source with ``ast`` (nothing is imported):

* no function of the library takes more than :data:`MAX_PARAMETERS` parameters (``self`` and
  ``cls`` of a method not counted; ``*args`` and ``**kwargs`` count one each), and no function
  body runs past :data:`MAX_BODY_LINES` lines (from its first statement after the docstring to
  its last line, nested functions included);
* only ``xigsnr_naslib/cli/`` imports ``argparse``: the library takes plain parameters or
  settings dataclasses, never an argparse namespace;
* the package's top holds the layer folders and only the modules :data:`TOP_MODULES` (what
  every layer shares: the registry and the error classes; and the compatibility names);
* the command line catches only the project's own errors (``except XiGSNRError``), never
  ``ValueError``, ``KeyError``, ``TypeError`` or ``OSError`` around a whole command.

:data:`KNOWN_OVERSIZE` lists the functions that break the first rule today; an entry that no
longer breaks it fails too, so the list only shrinks.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xigsnr_naslib"

MAX_PARAMETERS = 8
MAX_BODY_LINES = 60
#: modules allowed at the top of the package: the package itself, what every layer shares
#: (registries, error classes) and the compatibility names
TOP_MODULES = {"__init__.py", "registry.py", "errors.py", "naslib.py", "naslib_plugin.py"}
#: the only folder whose modules may import argparse
CLI = "cli"

#: (module path relative to the package, function's dotted name) -> what is over today
#: ("parameters" or "lines"), each with a comment saying why. Empty now: the offenders of the
#: layer move (build_leaderboard, _markdown, _from_frame, run_processes, run_zero_shot,
#: run_search, run_naslib_zero_cost, run_config, run_naslib_script, xi_gsnr,
#: _first_entry_jacobians_batched) were split into steps or given settings dataclasses.
#: An entry, e.g. ``("passes/requests.py", "_first_entry_jacobians_batched"): "lines",  # why``,
#: lets that function stay over that one limit; one that is no longer over fails the test.
KNOWN_OVERSIZE: dict[tuple[str, str], str] = {}


def _parameters(node: ast.FunctionDef | ast.AsyncFunctionDef, in_class: bool) -> int:
    args = node.args
    named = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if in_class and named and named[0].arg in ("self", "cls"):
        named = named[1:]
    return len(named) + (args.vararg is not None) + (args.kwarg is not None)


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    first = body[0]
    if (len(body) > 1 and isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        first = body[1]  # the docstring does not count
    return node.end_lineno - first.lineno + 1


def _statements(node: ast.AST):
    """The statements directly under ``node`` (bodies, else and finally blocks, handlers,
    match cases): functions and imports are statements, so nothing else needs walking."""
    for field in ("body", "orelse", "finalbody", "handlers", "cases"):
        for child in getattr(node, field, ()):
            if isinstance(child, (ast.ExceptHandler, ast.match_case)):
                yield from _statements(child)
            elif isinstance(child, ast.stmt):
                yield child


def _functions(node: ast.AST, prefix: str = "", in_class: bool = False):
    """(dotted name, node, defined in a class body) of every function, nested ones included."""
    for child in _statements(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + child.name, child, in_class
            yield from _functions(child, f"{prefix}{child.name}.", False)
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.", True)
        else:
            yield from _functions(child, prefix, in_class)


def _all_statements(node: ast.AST):
    for child in _statements(node):
        yield child
        yield from _all_statements(child)


def oversize(tree: ast.Module) -> list[tuple[str, int, str, str]]:
    """(dotted name, line, kind, what is over) of each function of ``tree`` over a limit."""
    found = []
    for name, node, in_class in _functions(tree):
        n_params, n_lines = _parameters(node, in_class), _body_lines(node)
        if n_params > MAX_PARAMETERS:
            found.append((name, node.lineno, "parameters", f"{n_params} parameters (at most {MAX_PARAMETERS})"))
        if n_lines > MAX_BODY_LINES:
            found.append((name, node.lineno, "lines", f"a body of {n_lines} lines (at most {MAX_BODY_LINES})"))
    return found


def imports_argparse(tree: ast.Module) -> list[int]:
    """Lines of ``tree`` that import argparse (anywhere, function bodies included)."""
    lines = []
    for node in _all_statements(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "argparse":
            lines.append(node.lineno)
    return lines


def _modules() -> list[Path]:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 40 and PACKAGE / "analysis" / "leaderboard.py" in modules, "the package was not found"
    return modules


def _where(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    """Every module of the package, parsed once (about 0.2 s)."""
    return {_where(path): ast.parse(path.read_text(encoding="utf-8"), filename=str(path)) for path in _modules()}


def test_no_function_takes_too_many_parameters_or_runs_too_long(trees):
    new, seen = [], set()
    for where, tree in trees.items():
        for name, line, kind, what in oversize(tree):
            seen.add((where, name, kind))
            if KNOWN_OVERSIZE.get((where, name)) != kind:
                new.append(f"xigsnr_naslib/{where}:{line}: {name}: {what}")
    assert not new, ("split these functions into steps, or gather their options in a frozen settings "
                     "dataclass:\n" + "\n".join(new))
    stale = [f"{where}::{name} ({kind})" for (where, name), kind in KNOWN_OVERSIZE.items()
             if (where, name, kind) not in seen]
    assert not stale, "within the limits now: remove from KNOWN_OVERSIZE: " + ", ".join(stale)


def test_only_the_command_line_imports_argparse(trees):
    found = [f"xigsnr_naslib/{where}:{line}" for where, tree in trees.items()
             if not where.startswith(f"{CLI}/") for line in imports_argparse(tree)]
    assert not found, "argparse is imported outside xigsnr_naslib/cli/ at " + ", ".join(found)


def test_only_the_compatibility_modules_sit_at_the_package_top():
    top = {path.name for path in PACKAGE.glob("*.py")}
    assert TOP_MODULES <= top, f"missing at the top: {sorted(TOP_MODULES - top)}"
    assert top == TOP_MODULES, (f"modules at the package top other than {sorted(TOP_MODULES)}: "
                                f"{sorted(top - TOP_MODULES)}; move them into a layer folder")


def test_the_checks_catch_what_they_are_for():
    """The detectors on small sources, so that a broken detector cannot pass silently."""
    params = ", ".join(f"p{i}" for i in range(MAX_PARAMETERS))
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_BODY_LINES))
    source = (f"def fits({params}):\n    '''a docstring'''\n{body}\n\n"
              f"def wide({params}, *rest):\n    pass\n\n"
              f"def long():\n{body}\n    return x0\n\n"
              f"class C:\n    def method(self, {params}):\n        pass\n\n"
              f"    def wide_method(self, {params}, extra=1):\n        pass\n\n"
              f"def outer():\n    def inner({params}, *, k):\n        pass\n\n"
              f"if True:\n    try:\n        pass\n    except ValueError:\n        def in_handler({params}, **k):\n"
              f"            pass\n")
    assert [(name, kind) for name, _, kind, _ in oversize(ast.parse(source))] == [
        ("wide", "parameters"), ("long", "lines"), ("C.wide_method", "parameters"), ("outer.inner", "parameters"),
        ("in_handler", "parameters")]
    source = "import os, argparse\ndef f():\n    try:\n        from argparse import Namespace\n    finally:\n        pass\n"
    assert imports_argparse(ast.parse(source)) == [1, 4]
    assert imports_argparse(ast.parse("'''argparse in a docstring'''\nimport argparsex\n")) == []


def test_the_command_line_catches_only_the_projects_errors():
    """A bug must show its traceback: ``cli/app.py``'s ``main`` catches the project's error
    classes (and Ctrl-C) only; a handler that catches a builtin error class around a whole
    command would turn a bug into a one-line usage error."""
    tree = ast.parse((PACKAGE / CLI / "app.py").read_text())
    main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
    caught = set()
    for node in ast.walk(main):
        if isinstance(node, ast.ExceptHandler) and node.type is not None:
            types = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            caught |= {t.id if isinstance(t, ast.Name) else ast.unparse(t) for t in types}
    assert caught == {"XiGSNRError", "KeyboardInterrupt"}, f"main() catches {sorted(caught)}"
