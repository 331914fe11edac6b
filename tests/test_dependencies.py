"""grader depends on dlhw, never the other way round: the student kit ships dlhw without grader.

So no module under dlhw/ imports grader (at the top or inside a function, where an import
only fails when a student reaches it), the kit's ``python -m dlhw check`` runs where grader
cannot be imported, and the instructor commands come from grader/cli.py.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / "notebooks" / "_kit"


def grader_imports(source: str) -> list[tuple[int, str]]:
    """(line, statement) of every import of grader in ``source``: ``import grader...``,
    ``from grader... import``, and importlib.import_module / __import__ of a literal name."""
    def is_grader(name) -> bool:
        return isinstance(name, str) and (name == "grader" or name.startswith("grader."))

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if is_grader(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and is_grader(node.module):
            found.append((node.lineno, f"from {node.module} import ..."))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and is_grader(node.args[0].value):
                found.append((node.lineno, f"{name}({node.args[0].value!r})"))
    return found


def test_the_finder_sees_every_kind_of_import():
    source = textwrap.dedent("""
        import os, grader.course
        from grader import kit
        def later():
            from grader.build import build
            import importlib
            importlib.import_module("grader.release")
        def fine():
            import graders, dlhw.grader_notes
            from dlhw import grading
    """)
    assert sorted(line for line, _ in grader_imports(source)) == [2, 3, 5, 7]


def test_no_module_of_dlhw_imports_grader():
    offenders = []
    for path in sorted((REPO / "dlhw").rglob("*.py")):
        offenders += [f"{path.relative_to(REPO)}:{line}: {stmt}" for line, stmt in grader_imports(path.read_text())]
    assert not offenders, "dlhw must not import grader (the student kit has no grader):\n" + "\n".join(offenders)


def test_the_dlhw_scripts_are_the_instructors_here_and_the_students_in_the_kit():
    main = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    kit = tomllib.loads((KIT / "pyproject.toml").read_text())["project"]["scripts"]
    assert main == {"dlhw": "grader.cli:main"} and kit == {"dlhw": "dlhw.cli:main"}


def test_instructor_commands_are_grader_clis_and_the_kit_points_to_them(capsys):
    import argparse

    from dlhw.cli import INSTRUCTOR_COMMANDS, main as kit_main
    from grader.cli import parser
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == {*INSTRUCTOR_COMMANDS, "check"}
    for command in INSTRUCTOR_COMMANDS:
        with pytest.raises(SystemExit, match=f"`{command}` is an instructor command.*python -m grader {command}"):
            kit_main([command])
    # the README's instructor lines still parse, with their flags
    args = parser().parse_args(["autograde", "02_mlp_backprop", "--submitted", "s", "--results", "r",
                                "--workers", "2", "--no-sandbox", "--scheduler", "tcp://h:8786"])
    assert (args.workers, args.no_sandbox, args.scheduler, args.func.__module__) == \
        (2, True, "tcp://h:8786", "grader.cli")
    assert parser().parse_args(["check", "02_mlp_backprop"]).func.__module__ == "dlhw.cli"


@pytest.mark.slow
def test_the_kits_python_m_dlhw_check_runs_without_grader(tmp_path):
    """The generated kit's ``python -m dlhw check`` on a one-test notebook, grader unimportable."""
    assert (KIT / "dlhw" / "__main__.py").is_file() and (KIT / "dlhw" / "cli.py").is_file()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 6 * 7"),
                nbformat.v4.new_code_cell("assert x == 42", metadata={"nbgrader": {
                    "grade": True, "grade_id": "probe_test", "points": 1, "solution": False}})]
    nbformat.write(nb, tmp_path / "probe.ipynb")
    # sys.modules["grader"] = None makes every `import grader...` raise ImportError
    run = ("import runpy, sys; sys.modules['grader'] = None; import dlhw; "
           f"assert dlhw.__file__.startswith({str(KIT)!r}), dlhw.__file__; "
           "sys.argv = ['dlhw', 'check', 'probe']; runpy.run_module('dlhw', run_name='__main__', alter_sys=True)")
    env = dict(os.environ, PYTHONPATH=str(KIT))
    out = subprocess.run([sys.executable, "-c", run], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0 and "visible tests: 1 / 1 points" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([sys.executable, "-c", run.replace("'check', 'probe'", "'build'")], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "`build` is an instructor command" in out.stderr, out.stdout + out.stderr
