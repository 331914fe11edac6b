"""Graded test cells, generated from their metadata: what a test cell says and what it runs.

A solution notebook's graded test cell is written by ``dlhw build`` from its metadata, never by
hand::

    "metadata": {
      "nbgrader": {"grade": true, "solution": false, "locked": true, "points": 4,
                   "grade_id": "test_numerical_gradient_restores_x", "schema_version": 3},
      "dlhw": {"test": {"check": "numerical_gradient.restores_x",
                        "args": "numerical_gradient",
                        "title": "numerical_gradient puts x back"}}
    }

becomes (the points come from nbgrader's own ``points``, the one place they are written)::

    # Graded test (4 points): numerical_gradient puts x back
    check("numerical_gradient.restores_x", numerical_gradient)
    ### BEGIN HIDDEN TESTS
    check("numerical_gradient.restores_x", numerical_gradient, hidden=True)
    ### END HIDDEN TESTS

The same metadata tells the grader which checks the cell runs (``graded_calls``): the assembler
reads it from the SOURCE notebook only (a student can edit a submitted copy's metadata as
easily as its code).
"""
from __future__ import annotations

import re
from typing import List, Tuple

import nbformat

__all__ = ["GradedCellError", "graded_spec", "graded_source", "graded_calls", "graded_cell"]

_CHECK_NAME = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*$")


class GradedCellError(ValueError):
    """A graded test cell whose ``dlhw.test`` metadata is missing or malformed."""


def _where(cell) -> str:
    gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"test cell {gid}" if gid else "a graded test cell"


def graded_spec(cell) -> dict:
    """The cell's ``{"check", "args", "title", "points"}``; GradedCellError says what is missing."""
    meta = cell.get("metadata", {})
    spec = meta.get("dlhw", {}).get("test") if isinstance(meta.get("dlhw"), dict) else None
    if not isinstance(spec, dict):
        raise GradedCellError(f"{_where(cell)} has no \"dlhw\": {{\"test\": {{\"check\": ..., \"args\": ..., "
                            "\"title\": ...}} in its metadata: its code is generated from it by `dlhw build`")
    name, args, title = spec.get("check"), spec.get("args"), spec.get("title", spec.get("check"))
    points = meta.get("nbgrader", {}).get("points")
    if not isinstance(name, str) or not _CHECK_NAME.match(name):
        raise GradedCellError(f"{_where(cell)}: dlhw.test.check must be a check's dotted name; got {name!r}")
    if not isinstance(args, str) or not args.strip():
        raise GradedCellError(f"{_where(cell)}: dlhw.test.args must be the check's arguments as code "
                            f"(e.g. \"affine_forward, affine_backward\"); got {args!r}")
    if not isinstance(title, str) or "\n" in title:
        raise GradedCellError(f"{_where(cell)}: dlhw.test.title must be one line of text; got {title!r}")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0:
        raise GradedCellError(f"{_where(cell)}: nbgrader.points must be a positive number; got {points!r}")
    return {"check": name, "args": args.strip(), "title": title, "points": points}


def graded_source(cell) -> str:
    """The code of a graded test cell: its check run visibly, then hidden (fresh inputs)."""
    s = graded_spec(cell)
    return (f"# Graded test ({s['points']:g} points): {s['title']}\n"
            f'check("{s["check"]}", {s["args"]})\n'
            "### BEGIN HIDDEN TESTS\n"
            f'check("{s["check"]}", {s["args"]}, hidden=True)\n'
            "### END HIDDEN TESTS")


def graded_calls(cell) -> List[Tuple[str, bool]]:
    """The ``(check name, hidden)`` calls that ``graded_source(cell)`` makes, in order: what the
    judge serves to that cell at grading time."""
    name = graded_spec(cell)["check"]
    return [(name, False), (name, True)]


def graded_cell(check: str, points: float, args: str, title: str = "", grade_id: str = ""):
    """A new graded test cell running the check ``check`` on ``args`` visibly and hidden."""
    cell = nbformat.v4.new_code_cell("")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "points": points,
                                 "grade_id": grade_id or "test_" + check.replace(".", "_"), "schema_version": 3}
    cell.metadata["dlhw"] = {"test": {"check": check, "args": args, "title": title or check}}
    cell.source = graded_source(cell)
    return cell
